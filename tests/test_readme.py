"""README's examples run as written, each block on its own, and the values it states are the values.

Every ```python block is executed in a fresh namespace (nothing is defined for it: a block that
uses a name it does not define fails), and every ```bash line that runs `jwinit` is checked against
the CLI's own parser.
"""

import functools
import pathlib
import re
import shlex

import jax.numpy as jnp
import numpy as np
import pytest

import jwinit

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


@functools.cache  # each block runs once per session: its namespace is read, never changed
def run_block(i: int) -> dict:
    block = blocks("python")[i]
    ns: dict = {"__name__": f"readme_block_{i}"}
    try:
        exec(compile(block, f"README.md python block {i}", "exec"), ns)
    except Exception as e:  # pragma: no cover - the message names the failing block
        raise AssertionError(f"README python block {i} fails: {e!r}\n{block}") from e
    return ns


def block_using(name: str) -> int:
    found = [i for i, b in enumerate(blocks("python")) if name in b]
    assert found, f"no README python block mentions {name!r}"
    return found[0]


def test_every_python_block_runs_on_its_own():
    assert len(blocks("python")) >= 6
    for i in range(len(blocks("python"))):
        run_block(i)


def test_quickstart_states_true_values():
    ns = run_block(block_using("nn.Dense(128"))
    assert ns["params"]["params"]["kernel"].shape == (784, 128)
    assert ns["linear"].kernel[...].shape == (784, 128)
    assert ns["w"].shape == (256, 784)
    assert ns["q"].shape == (512, 8, 64)
    assert jwinit.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert float(jwinit.gain("tanh")) == pytest.approx(1.5925, abs=1e-4)
    text = str(jwinit.describe(jwinit.he_normal(), (3, 3, 64, 128)))
    assert "fan_in=576" in text and "fan_out=1152" in text and "0.00347222" in text


def test_sharding_block_gives_the_unsharded_values():
    ns = run_block(block_using("make_mesh"))
    ref = jwinit.he_normal()(ns["key"], (4096, 4096))
    assert len(ns["w"].sharding.device_set) == 8
    np.testing.assert_array_equal(np.asarray(ns["w"]), np.asarray(ref))
    np.testing.assert_array_equal(np.asarray(ns["w2"]), np.asarray(ref))


def test_theory_block_states_true_values():
    from jwinit import theory

    ns = run_block(block_using("theory.fixed_point"))
    assert float(theory.chi1("relu", 2.0, 0.0)) == pytest.approx(1.0, abs=1e-6)
    assert float(theory.critical_sigma_w2("tanh", 0.05)) == pytest.approx(1.761, abs=1e-3)
    assert ns["pd"].chi1.shape == (8, 4)
    p = theory.predict(jwinit.he_normal(), "relu", depth=10)
    np.testing.assert_allclose(np.asarray(p.forward), 2.0, rtol=1e-5)  # the docstring's claim


def test_probe_block_states_true_values():
    ns = run_block(block_using("probe_mlp"))
    assert ns["r"].forward.shape == (4, 64)
    assert ns["r"].verdict() == "preserved"
    assert (ns["a"].agrees_with_theory, ns["a"].phase) == (True, "critical")
    assert len(ns["rows"]) == 2 * 3 * 2 * 8  # depths x schemes x activations x seeds


def test_model_block_leaves_unit_variance_after_lsuv():
    ns = run_block(block_using("jwinit.lsuv"))
    # after LSUV every Dense output has variance 1 on the batch (within its default 5%)
    _, state = ns["model"].apply(ns["variables"], ns["x_batch"], capture_intermediates=True)
    for name in ("Dense_0", "Dense_1", "Dense_2"):
        out = state["intermediates"][name]["__call__"][0]
        assert abs(float(jnp.var(out)) - 1.0) <= 0.05, (name, float(jnp.var(out)))
    h = ns["x_batch"]
    for layer in ns["nnx_model"].layers:  # the nnx model, changed in place, likewise
        h = layer(h)
        if hasattr(layer, "kernel"):
            assert abs(float(jnp.var(h)) - 1.0) <= 0.05


def test_every_jwinit_command_in_the_readme_parses():
    from jwinit.experiments.runner import load_config, shipped_configs

    commands = [line.split("#")[0].strip() for b in blocks("bash") for line in b.splitlines()
                if line.strip().startswith("jwinit")]
    runs = [c for c in commands if c.startswith("jwinit run")]
    assert runs and runs[0] == "jwinit run --config=he2015"
    for command in runs:
        spec = next(a for a in shlex.split(command) if a.startswith("--config="))[9:]
        if spec.startswith("path/"):
            continue
        assert spec.split(":")[0] in shipped_configs(), command
        load_config(spec)


def test_config_example_is_a_valid_config(tmp_path):
    """README's own config file loads by path, takes its report texts from its docstring, and
    passes the training kind's validation (and its :smoke variant too)."""
    from jwinit.experiments.runner import load_config, validate

    path = tmp_path / "he_vs_glorot.py"
    path.write_text(blocks("python")[block_using("def get_config")])
    for spec in (str(path), f"{path}:smoke"):
        c, _ = load_config(spec)
        validate(c)
        assert c.title == "He vs Glorot at depth 30" and c.paper == "He et al. 2015, Sec. 2.2."
    assert c.width == 64 and c.depth == 30 and c.eval_every == 50  # smoke, over the defaults
