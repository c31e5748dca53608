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

#: Wall seconds of each full config in CI (one core each, 8 virtual devices, two configs at a time
#: on a 2-core AMD EPYC: the fresh-clone CI of 2026-12-05, `--durations`), to split them into two
#: halves of about equal time, one per worker class
#: below; a config not listed counts 300 s.
SECONDS = {"completep2025": 186, "fixup2019": 146, "tfixup2020": 131, "pennington2017": 121,
           "xiao2020": 113, "irnn2015": 109, "sutskever2013": 88, "lsuv2016": 82,
           "audit_demo": 81, "schoenholz2017_trainability": 81, "mup_coordcheck": 79,
           "ntk_trainability": 78, "depth_coordcheck": 77, "gradinit2021": 75,
           "schoenholz2017": 71, "glorot2010_training": 65, "he2015_training": 62,
           "pretraining": 61, "saxe2013": 30, "he2015": 28, "glorot2010": 15, "symmetry": 10}


def _halves(names: list[str]) -> tuple[list[str], list[str]]:
    """Longest first, each to the half with less time so far."""
    halves: tuple[list[str], list[str]] = ([], [])
    load = [0, 0]
    for name in sorted(names, key=lambda n: (-SECONDS.get(n, 300), n)):
        i = 0 if load[0] <= load[1] else 1
        halves[i].append(name)
        load[i] += SECONDS.get(name, 300)
    return halves


FIRST, SECOND = _halves(FULL)


def _reproduces(name, tmp_path, capsys, request):
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


# Two classes, two xdist scopes (`--dist=loadscope`): each half runs on its own worker, its
# configs one after the other, while the other worker runs the other half.
class TestFullConfigsFirstHalf:
    @pytest.mark.parametrize("name", FIRST)
    def test_full_config_reproduces_its_paper(self, name, tmp_path, capsys, request):
        _reproduces(name, tmp_path, capsys, request)


class TestFullConfigsSecondHalf:
    @pytest.mark.parametrize("name", SECOND)
    def test_full_config_reproduces_its_paper(self, name, tmp_path, capsys, request):
        _reproduces(name, tmp_path, capsys, request)


def test_every_config_is_in_one_half():
    assert sorted(FIRST + SECOND) == FULL and not set(FIRST) & set(SECOND)
    load = [sum(SECONDS.get(n, 300) for n in h) for h in (FIRST, SECOND)]
    assert abs(load[0] - load[1]) <= max(SECONDS.get(n, 300) for n in FULL)
