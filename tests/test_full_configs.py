"""Every shipped config at FULL size reproduces its paper: every check of its report passes.

These are the runs users make (`jwinit run --config=<name>`); the `:smoke` variants elsewhere are
for speed only. Each config's wall time is recorded in its report and printed at the end of the
test session (see conftest.py).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from jwinit.experiments.runner import run_cli, shipped_configs

FULL = sorted(shipped_configs())
pytestmark = pytest.mark.full  # `-m "not full"`: the fast loop (CONTRIBUTING.md)


@pytest.mark.parametrize("name", FULL)
def test_full_config_reproduces_its_paper(name, tmp_path, capsys, request):
    workdir = tmp_path / name
    assert run_cli([f"--config={name}", f"--workdir={workdir}"]) == 0, capsys.readouterr().err
    report = (workdir / "report.md").read_text()
    passed, total = map(int, re.search(r"Reproduced: (\d+) of (\d+) checks", report).groups())
    assert total >= 2 and passed == total, report[:3000]
    assert "| FAIL |" not in report
    seconds = float(re.search(r"This run: ([\d.]+) s wall time", report).group(1))
    if getattr(request.config, "cache", None) is not None:
        request.config.cache.set(f"jwinit/wall_time/{name}", [seconds, time.time()])
    stamp = json.loads((workdir / "config.json").read_text())
    assert stamp.get("experiment"), stamp
