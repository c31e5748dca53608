"""README's Python examples run as written, and the values their comments state are the values."""

import pathlib
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jwinit

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for width in (64, 64):
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(10)(x)


class NNXMLP(nnx.Module):
    def __init__(self, rngs):
        self.a = nnx.Linear(32, 64, rngs=rngs)
        self.b = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x):
        return self.b(jax.nn.relu(self.a(x)))


def run_readme() -> dict:
    """Run every README block in order in one namespace, with the names the text leaves to the
    reader (a key, grids, a model and a batch) defined first."""
    x_batch = jax.random.normal(jax.random.key(5), (256, 32))
    model = MLP()
    ns = {
        "key": jax.random.key(0),
        "sw": jnp.linspace(0.5, 4.0, 8),
        "sb": jnp.linspace(0.0, 0.3, 4),
        "model": model,
        "x_batch": x_batch,
        "variables": model.init(jax.random.key(1), x_batch),
        "nnx_model": NNXMLP(nnx.Rngs(2)),
        "nn": nn,
    }
    blocks = python_blocks()
    assert len(blocks) >= 6
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), ns)
        except Exception as e:  # pragma: no cover - the message names the failing block
            raise AssertionError(f"README python block {i} fails: {e!r}\n{block}") from e
    return ns


def test_readme_examples_run_and_state_true_values():
    ns = run_readme()
    # Quickstart
    assert ns["params"]["params"]["kernel"].shape == (784, 128)
    assert ns["linear"].kernel[...].shape == (784, 128)
    assert ns["w"].shape == (4096, 4096)  # the sharding block ran last with this name
    assert ns["q"].shape == (512, 8, 64)
    assert jwinit.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert float(jwinit.gain("tanh")) == pytest.approx(1.5925, abs=1e-4)
    text = str(jwinit.describe(jwinit.he_normal(), (3, 3, 64, 128)))
    assert "fan_in=576" in text and "fan_out=1152" in text and "0.00347222" in text

    # Theory
    from jwinit import theory

    assert float(theory.chi1("relu", 2.0, 0.0)) == pytest.approx(1.0, abs=1e-6)
    assert float(theory.critical_sigma_w2("tanh", 0.05)) == pytest.approx(1.761, abs=1e-3)
    assert ns["pd"].chi1.shape == (8, 4)
    p = theory.predict(jwinit.he_normal(), "relu", depth=10)
    np.testing.assert_allclose(np.asarray(p.forward), 2.0, rtol=1e-5)  # the docstring's claim

    # The probe, and real models
    assert ns["r"].forward.shape == (4, 64)
    assert ns["r"].verdict() == "preserved"
    assert len(ns["rows"]) == 2 * 3 * 2 * 8  # depths x schemes x activations x seeds
    # after LSUV every Dense output has variance 1 on the batch (within its default 5%)
    _, state = ns["model"].apply(ns["variables"], ns["x_batch"], capture_intermediates=True)
    for name in ("Dense_0", "Dense_1", "Dense_2"):
        out = state["intermediates"][name]["__call__"][0]
        assert abs(float(jnp.var(out)) - 1.0) <= 0.05, (name, float(jnp.var(out)))
