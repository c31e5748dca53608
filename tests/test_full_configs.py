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
#: on a 2-core AMD EPYC: the fresh-clone CI of 2026-12-05, `--durations`; completep2025 measured
#: alone on one core), to split them into two halves of about equal time, one per worker class
#: below; a config not listed counts 300 s.
SECONDS = {"irnn2015": 149, "fixup2019": 136, "tfixup2020": 127, "xiao2020": 118,
           "pennington2017": 115, "sutskever2013": 98, "lsuv2016": 87, "audit_demo": 87,
           "depth_coordcheck": 86, "ntk_trainability": 84, "schoenholz2017_trainability": 82,
           "glorot2010_training": 80, "gradinit2021": 77, "he2015_training": 74,
           "mup_coordcheck": 69, "schoenholz2017": 66, "pretraining": 64, "saxe2013": 27,
           "he2015": 26, "symmetry": 15, "glorot2010": 10, "completep2025": 182}


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
