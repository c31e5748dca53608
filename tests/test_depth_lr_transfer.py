"""Learning-rate transfer across depth (`depth_lr_transfer`, configs/completep2025.py): the
vmapped runs are the runs trained one by one, the best learning rate is the argmin of the seed
means, a rerun reads every row back, and bad configs are refused before anything runs."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import jwinit
from jwinit.experiments import depth_lr_transfer as dlt
from jwinit.experiments._decoder import programs, rules
from jwinit.experiments.depth_coord_check import markov_tokens


def _tiny(**kw):
    return ml_collections.ConfigDict({
        **dlt.DEFAULTS, "depths": (1, 3), "dim": 8, "heads": 2, "mlp_dim": 16, "vocab": 16,
        "length": 6, "batch_size": 4, "steps": 12, "tail": 4, "learning_rates": (-8, -7, -6),
        "seeds": 2, **kw})


def test_the_vmapped_runs_are_the_runs_trained_one_by_one():
    """Every (parametrization, learning rate, seed) run of one depth, computed vmapped in one
    program, has the loss curve of the same run trained alone (float32 tolerance: vmapping
    batches the matmuls)."""
    from flax import linen as nn

    from jwinit.models import Decoder
    from jwinit.recipes import depth_multipliers, depth_optimizer

    config = _tiny()
    rows = dlt._depth_runs(config, 3)
    assert len(rows) == 2 * 3 * 2
    row = next(r for r in rows if r["parametrization"] == "completep" and r["lr_exponent"] == -6
               and r["seed"] == 1)
    _, step = programs(16, 8, 2, 16, 3)
    data = markov_tokens(16, 7, 12 * 4, seed=1001).reshape(12, 4, -1)
    model = Decoder(vocab_size=16, dim=8, layers=3, heads=2, mlp_dim=16)
    w = nn.unbox(jwinit.init_params(model, jax.random.fold_in(jax.random.key(0), 1),
                                    jnp.asarray(markov_tokens(16, 7, 48, seed=1)
                                                .reshape(12, 4, -1)[0]), rules()))["params"]
    tx = depth_optimizer("completep", 2.0**-6, 3, base_layers=2)
    with jax.numpy_dtype_promotion("standard"):
        st = tx.init(w)
    b = jnp.float32(depth_multipliers("completep", 3, base_layers=2).branch)
    losses = []
    for t in range(12):
        w, st, v = step(w, st, jnp.asarray(data[t]), b)
        losses.append(float(v))
    np.testing.assert_allclose(row["loss_every_10"], losses[::10], rtol=2e-5)
    assert row["final_loss"] == pytest.approx(np.mean(losses[-4:]), rel=2e-5)


def test_a_run_writes_the_argmin_and_a_rerun_reads_every_row_back(tmp_path):
    config = _tiny()
    out = dlt.run(config, tmp_path)
    assert out["runs"] == 2 * 2 * 3 * 2
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    summary = dlt._summary(rows, config)
    for s in summary:
        means = {e: np.mean([r["final_loss"] for r in rows if r["parametrization"] ==
                             s["parametrization"] and r["depth"] == s["depth"]
                             and r["lr_exponent"] == e]) for e in (-8, -7, -6)}
        assert s["best_lr_exponent"] == min(means, key=means.get)
        assert s["best_lr"] == 2.0 ** s["best_lr_exponent"]
        assert s["best_loss"] == pytest.approx(means[s["best_lr_exponent"]], rel=1e-12)
    before = (tmp_path / "results.jsonl").read_bytes()
    again = dlt.run(config, tmp_path)  # every depth is read back: nothing is trained again
    assert again["runs"] == out["runs"]
    assert (tmp_path / "results.jsonl").read_bytes() == before
    # a changed setup (here the tail the loss is averaged over) is not read back: computed again
    dlt.run(_tiny(tail=2), tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * out["runs"] and {r["tail"] for r in rows} == {2, 4}
    assert (tmp_path / "plots" / "depth_lr_transfer.png").stat().st_size > 0
    assert "Reproduced: " in (tmp_path / "report.md").read_text()


@pytest.mark.smoke  # the full run checks these claims at full size (tests/test_full_configs.py)
def test_completep2025_smoke_reproduces(tmp_path):
    from jwinit import cli

    workdir = tmp_path / "cp"
    assert cli.main(["run", "--config=completep2025:smoke", f"--workdir={workdir}"]) == 0
    assert "**Reproduced: 3 of 3 checks.**" in (workdir / "report.md").read_text()


@pytest.mark.parametrize("override, words", [
    ({"learning_rates": (-8, -6, -4)}, ["`config.learning_rates`", "consecutive"]),
    ({"learning_rates": (-8, -7)}, ["`config.learning_rates`", "at least 3"]),
    ({"tail": 50}, ["`config.tail` (50)", "`config.steps` (12)"]),
    ({"parametrizations": ("sp", "mup")}, ["`config.parametrizations`", "'completep'"]),
    ({"depths": (2, 2)}, ["at least 2 different depths"]),
    ({"dim": 9}, ["`config.dim` (9)", "`config.heads` (2)"]),
])
def test_bad_configs_are_refused_before_anything_runs(override, words):
    with pytest.raises(ValueError) as e:
        dlt.validate(_tiny(**override))
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_the_loss_checks_compare_the_deepest_with_the_shallowest():
    """SP passes when its loss at the largest rate rises >= 1.1x from the shallowest to the
    deepest; the depth parametrization when its does not rise above 1.02x and its best rate
    moves at most one grid step, inside the grid."""
    config = _tiny()

    def row(p, d, best, top):
        return {"parametrization": p, "depth": d, "best_lr": 2.0**best, "best_lr_exponent": best,
                "best_loss": 1.0, "loss_at_largest_lr": top, "losses_by_exponent": ""}

    good = [row("sp", 1, -7, 2.0), row("sp", 3, -7, 2.4), row("completep", 1, -7, 2.0),
            row("completep", 3, -7, 2.01)]
    checks = dlt._checks(good, config)
    assert [c["passed"] for c in checks] == [True, True, True]
    assert "SP's best, for comparison: L=1: 2^-7, L=3: 2^-7" in checks[0]["measured"]
    bad = [row("sp", 1, -7, 2.0), row("sp", 3, -7, 2.1), row("completep", 1, -7, 2.0),
           row("completep", 3, -6, 2.2)]
    assert [c["passed"] for c in dlt._checks(bad, config)] == [False, False, False]
    assert math.isinf(dlt._mean_loss([{"parametrization": "sp", "depth": 1, "lr_exponent": -6,
                                       "final_loss": math.inf}], "sp", 1, -6))
