"""Project-level checks: the README table and test command, the public API, the CLI."""

import json
import math
import pathlib
import re

import numpy as np
import pytest

import jwinit
from jwinit import cli, registry

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_table_is_the_registry():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- initializers:start -->\n(.*?)<!-- initializers:end -->", text, re.S)
    assert block, "README.md lacks the initializer table markers"
    assert block.group(1).strip() == registry.markdown_table().strip(), (
        "README table is stale: regenerate with `jwinit list --markdown`")


def test_readme_test_command_is_ci_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    cmd = 'python -m pytest -n 2 -m "not smoke"'
    assert f"\n{cmd}\n" in readme and f"{cmd}\n" in ci
    assert f"{cmd}  " in readme.split("## Start here")[1].split("```")[1]
    lines = [line for line in ci.splitlines() if "pytest" in line and not line.startswith("#")]
    assert lines == [cmd], lines
    assert "python -m ruff check ." in ci


def test_all_is_exact():
    for name in jwinit.__all__:
        assert hasattr(jwinit, name), name
    public = {n for n in dir(jwinit) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(jwinit, n)).__name__ == "module"}
    assert public - modules - {"annotations"} <= set(jwinit.__all__) | {"__version__"}


def test_cli_describe_and_list(capsys):
    assert cli.main(["describe", "he_normal", "3", "3", "64", "128"]) == 0
    out = capsys.readouterr().out
    assert "fan_in=576" in out and "fan_out=1152" in out
    assert cli.main(["list", "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == registry.markdown_table().strip()
    assert cli.main(["describe", "no_such", "3", "3"]) == 2
    assert "unknown initializer 'no_such'" in capsys.readouterr().err


def test_parse_kwargs():
    assert cli.parse_kwargs(["a=1", "b=fan_in", "c=(1, 2)", "d=True"]) == {
        "a": 1, "b": "fan_in", "c": (1, 2), "d": True}
    with pytest.raises(ValueError, match="name=value"):
        cli.parse_kwargs(["novalue"])


def test_cli_probe_gives_the_verdicts(capsys):
    args = ["probe", "he_normal+relu", "normal(stddev=0.05)+relu", "(4.0, 0.0)+relu",
            "--depth", "24", "--width", "128", "--batch_size", "64", "--seeds", "2"]
    assert cli.main([*args, "--json"]) == 0
    rows = {(r["scheme"], r["activation"]): r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == 3
    he = next(r for (s, a), r in rows.items() if s == "he_normal")
    small = next(r for (s, a), r in rows.items() if "0.05" in s)
    big = next(r for (s, a), r in rows.items() if "4" in s)
    assert he["verdict"] == "preserved" and he["agrees_with_theory"]
    # Var(W) = 0.0025 with fan_in 128: E[h^2] falls by 128 * 0.0025 / 2 = 0.16 per layer;
    # sigma_w2 = 4 doubles it
    assert small["verdict"] == "vanishing"
    assert small["theory_forward"] == pytest.approx(23 * math.log(0.16), rel=1e-3)
    assert small["log_forward"] == pytest.approx(23 * math.log(0.16), abs=small["tolerance"])
    assert big["verdict"] == "exploding"
    assert big["theory_forward"] == pytest.approx(23 * math.log(2.0), rel=1e-3)
    assert cli.main(args[:2] + args[4:]) == 0
    out = capsys.readouterr().out
    assert "preserved" in out and "probes in" in out
    assert cli.main(["probe", "he_normal+relu", "--depth", "0"]) == 2
    assert "depth" in capsys.readouterr().err
    assert cli.main(["probe", "he_norml+relu"]) == 2
    assert "he_norml" in capsys.readouterr().err
    assert cli.main(["probe", "he_normal+relu", "--bias", "(1.0, 2.0)"]) == 2
    assert "--bias" in capsys.readouterr().err


def _private_imports(path: pathlib.Path, package: list[str]) -> list[str]:
    """The jwinit names `path` imports whose first private ('_x') part lies in a package that
    does not hold `path` (jwinit._checks may be used anywhere under jwinit/;
    jwinit.probe._program only under jwinit/probe/)."""
    import ast

    crossing = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = (package[:len(package) - node.level + 1] if node.level else [])
            full = base + (node.module.split(".") if node.module else [])
            names = [full + [a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for name in names:
            if name[0] != "jwinit":
                continue
            for i, part in enumerate(name):
                if part.startswith("_") and not part.startswith("__"):
                    if package[:i] != name[:i]:
                        crossing.append(".".join(name))
                    break
    return crossing


def test_no_private_import_crosses_a_package():
    """A module uses another package's private names only inside that package, and nothing
    outside jwinit/ but the tests touches them (CONTRIBUTING, 'Private means private')."""
    found = {}
    for folder in ("jwinit", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            package = parts[:-1]
            if folder != "jwinit":
                package = []  # outside the package: no private name at all
            bad = _private_imports(path, package)
            if bad:
                found[str(path.relative_to(ROOT))] = bad
    assert found == {}
    # the check itself finds a crossing
    probe = ROOT / "jwinit" / "sweep.py"
    assert _private_imports(probe, ["jwinit"]) == []
    assert _private_imports(ROOT / "jwinit" / "probe" / "_sweep.py", ["jwinit"]) != []


def test_old_argument_names_still_work_with_a_deprecation_warning():
    """One name per quantity: seeds, batch_size, blocks, branch_layers. The old keywords give
    the same result for one release, with a warning naming the new one."""
    import jax

    kw = dict(depth=3, width=16)
    new = jwinit.probe_mlp(jax.random.key(0), jwinit.he_normal(), "relu", batch_size=8, seeds=2,
                           **kw)
    with pytest.warns(DeprecationWarning, match=r"`probe_mlp\(num_seeds=...\)`.*`seeds=...`"):
        old = jwinit.probe_mlp(jax.random.key(0), jwinit.he_normal(), "relu", batch=8,
                               num_seeds=2, **kw)
    np.testing.assert_array_equal(old.forward, new.forward)
    assert new.batch_size == 8 and new.num_seeds == 2
    with pytest.raises(TypeError, match="both `num_seeds`"):
        jwinit.probe_mlp(0, jwinit.he_normal(), "relu", batch_size=8, seeds=2, num_seeds=2, **kw)
    with pytest.warns(DeprecationWarning, match="layers_per_branch"):
        assert jwinit.fixup_scale(16, layers_per_branch=2) == jwinit.fixup_scale(16, 2) == 0.25
    with pytest.warns(DeprecationWarning, match="num_blocks"):
        assert jwinit.fixup_rules(num_blocks=4, branch_layers=2).keys() == \
            jwinit.fixup_rules(4, 2).keys()
    with pytest.warns(DeprecationWarning, match="batch"):
        rows = jwinit.sweep.sweep(pairs=[("he_normal", "relu")], depths=[3], widths=[8],
                                  seeds=1, batch=4)
    assert rows[0]["batch_size"] == 4
