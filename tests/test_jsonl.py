"""The resumable JSON-lines files behind sweeps and experiments."""

import json

import pytest

from jwinit.results import append_rows, read_rows


def test_append_and_read_round_trip(tmp_path):
    path = tmp_path / "sub" / "rows.jsonl"
    append_rows(path, [{"a": 1}, {"a": 2.5, "b": [1, None]}])
    append_rows(path, [])
    append_rows(path, [{"a": 3}])
    assert read_rows(path) == [{"a": 1}, {"a": 2.5, "b": [1, None]}, {"a": 3}]
    assert path.read_text().count("\n") == 3


def test_a_cut_short_last_line_is_ignored_then_replaced(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"a": 1}) + "\n" + '{"a": 2, "b": [0.12')
    assert read_rows(path) == [{"a": 1}]
    append_rows(path, [{"a": 2}])
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n'
    # a file holding only a partial line
    path.write_text('{"a"')
    assert read_rows(path) == []
    append_rows(path, [{"a": 5}])
    assert read_rows(path) == [{"a": 5}]


def test_a_damaged_complete_line_raises(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_rows(path)
