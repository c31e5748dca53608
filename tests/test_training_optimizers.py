"""The training experiment's optimizers: Sutskever et al. (2013)'s momentum schedule written out
step by step, several optimizers per config (`config.optimizers`), and the loss-ratio claim."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import jwinit
from jwinit.experiments.training import DEFAULTS as TRAINING_DEFAULTS
from jwinit.experiments.training import (
    _claims,
    networks,
    optimizer_of,
    optimizer_variants,
    sutskever_momentum,
    validate,
)
from jwinit.train import TrainResult


def test_the_momentum_schedule_is_the_papers_formula():
    """mu_t = min(1 - 2^(-1 - log2(floor(t / T) + 1)), mu_max), Sutskever et al. 2013, Sec. 3."""
    mu = sutskever_momentum(0.99, period=250)
    for t in (0, 1, 249, 250, 499, 500, 750, 1000, 2249, 12249, 12250, 10**6):
        k = math.floor(t / 250) + 1
        expect = min(1 - 2.0 ** (-1 - math.log2(k)), 0.99)
        assert float(mu(t)) == pytest.approx(expect, abs=1e-7), t
    assert [round(float(mu(t)), 4) for t in (0, 250, 500, 750, 1000)] == [
        0.5, 0.75, 0.8333, 0.875, 0.9]
    assert float(mu(12250)) == pytest.approx(0.99, abs=1e-7)  # 1 - 1/(2*50): reached at k = 50


@pytest.mark.parametrize("nesterov", [False, True])
def test_scheduled_momentum_is_the_hand_written_update(nesterov):
    """optimizer_of with momentum_schedule='sutskever2013' steps exactly as v = mu_t v + g,
    theta -= lr v (Nesterov: theta -= lr (g + mu_t v)) with mu_t from the schedule, on a
    quadratic with a fixed curvature, for 40 steps through several of the schedule's steps."""
    config = ml_collections.ConfigDict({**TRAINING_DEFAULTS, "optimizer": "momentum",
                                        "momentum": 0.9, "nesterov": nesterov,
                                        "momentum_schedule": "sutskever2013",
                                        "momentum_period": 5})
    a = jnp.array([3.0, 0.5, 0.1])
    grad = lambda th: a * th  # noqa: E731
    lr = 0.05
    opt = optimizer_of(config)(lr)
    theta = jnp.array([1.0, -2.0, 0.5])
    state = opt.init(theta)
    ref_theta, v = np.array(theta, np.float64), np.zeros(3)
    mu = sutskever_momentum(0.9, 5)
    for t in range(40):
        updates, state = opt.update(grad(theta), state, theta)
        theta = theta + updates
        g = np.asarray(a, np.float64) * ref_theta
        m = float(mu(t))
        v = m * v + g
        ref_theta = ref_theta - lr * ((g + m * v) if nesterov else v)
    np.testing.assert_allclose(np.asarray(theta), ref_theta, rtol=2e-5, atol=1e-6)


def _config(**kw):
    return ml_collections.ConfigDict({**TRAINING_DEFAULTS, "depth": 2, "width": 8,
                                      "inits": (("he", "he_normal"),), "seeds": 1, **kw})


def test_each_optimizer_makes_its_own_networks():
    optimizers = (("fast", {"optimizer": "momentum", "momentum": 0.99}),
                  ("plain", {"optimizer": "sgd"}))
    config = _config(activations=("relu", "tanh"), optimizers=optimizers)
    nets = networks(config)
    assert [n.name for n in nets] == ["relu, fast", "relu, plain", "tanh, fast", "tanh, plain"]
    assert [n.optimizer for n in nets] == ["fast", "plain", "fast", "plain"]
    assert [n.name for n in networks(_config())] == ["relu"]
    assert optimizer_variants(_config()) == [(None, {})]
    # the variant's fields replace the config's: sgd without momentum has no momentum buffer
    variants = dict(optimizer_variants(config))
    params = {"w": jnp.ones(3)}
    plain = optimizer_of(config, 0, variants["plain"])(0.1).init(params)
    fast = optimizer_of(config, 0, variants["fast"])(0.1).init(params)
    assert len(jax.tree.leaves(plain)) == 0 and len(jax.tree.leaves(fast)) == 1


def test_an_optimizers_run_trains_each_network_with_its_optimizer(tmp_path):
    """A whole run: SGD with momentum 0.9 against plain SGD on the same init and seeds. On the
    first step from the same start they take the same step (the momentum buffer is empty), so
    only a trained difference separates them; with momentum the loss falls further."""
    from jwinit.experiments.training import run

    config = _config(data="digits", activations=("relu",), learning_rates=(0.01,), steps=60,
                     eval_every=30, batch_size=32, target_loss=0.5, seeds=2,
                     optimizers=(("momentum", {"optimizer": "momentum", "momentum": 0.9}),
                                 ("sgd", {"optimizer": "sgd"})))
    validate(config)
    out = run(config, tmp_path)
    assert out["runs"] == 4
    rows = [r for r in map(__import__("json").loads,
                           (tmp_path / "results.jsonl").read_text().splitlines())]
    final = {(r["network"], r["seed"]): r["train_loss"] for r in rows if r["step"] == 60}
    start = {(r["network"], r["seed"]): r["train_loss"] for r in rows if r["step"] == 0}
    for seed in (0, 1):
        assert start[("relu, momentum", seed)] == start[("relu, sgd", seed)]
        assert final[("relu, momentum", seed)] < final[("relu, sgd", seed)]
    report = (tmp_path / "report.md").read_text()
    assert "optimizers 'momentum': momentum (0.9); 'sgd': sgd" in report


@pytest.mark.parametrize("override, error, words", [
    ({"optimizers": (("x", {"momentum_schedul": "sutskever2013"}),)}, ValueError,
     ["`config.optimizers` entry 'x'", "unknown field(s) ['momentum_schedul']", "'nesterov'"]),
    ({"optimizers": (("x", {"optimizer": "momentum", "momentum_schedule": "linear"}),)},
     ValueError, ["config.optimizers['x'].momentum_schedule", "linear", "sutskever2013"]),
    ({"optimizers": (("x", {"optimizer": "momentum", "momentum": 1.0}),)}, ValueError,
     ["config.optimizers['x'].momentum"]),
    ({"momentum_schedule": "sutskever2013", "momentum_period": 0}, ValueError,
     ["`config.momentum_period`", "0"]),
    ({"nesterov": "yes"}, TypeError, ["`config.nesterov`", "'yes'"]),
    ({"optimizers": (("x", {}), ("x", {}))}, ValueError, ["repeated display names"]),
    ({"optimizers": ("x",)}, TypeError, ["('display name', {field: value})", "'x'"]),
    ({"width": (8, 8, 8)}, ValueError, ["`config.width`", "`depth` (2)", "(8, 8, 8)"]),
    ({"optimizers": (("x", {}),), "inits": (("g", "gradinit:he_normal"),)}, ValueError,
     ["`config.optimizers` cannot be combined with 'gradinit:' inits"]),
])
def test_bad_optimizer_fields_are_named(override, error, words):
    config = _config(data="digits", **override)
    with pytest.raises(error) as e:
        validate(config)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def _result(finals: dict[tuple[str, float], list[float]], diverged=()) -> TrainResult:
    runs = [(i, lr, s) for (i, lr), v in finals.items() for s in range(len(v))]
    loss = np.array([[1.0, finals[(i, lr)][s]] for i, lr, s in runs])
    dstep = np.array([5 if (i, lr) in diverged else -1 for i, lr, _ in runs])
    loss[dstep >= 0, 1] = np.nan
    return TrainResult(runs=runs, eval_steps=np.array([0, 10]), train_loss=loss,
                       train_accuracy=np.full_like(loss, np.nan), test_loss=loss.copy(),
                       test_accuracy=np.full_like(loss, np.nan), diverged_step=dstep,
                       signal=None, signal_layers=[], params={}, rest={}, task="regression")


def test_the_loss_ratio_claim_compares_lowest_medians_over_learning_rates():
    at_init = {"output_rms": 1.0, "probe_regime": "-", "xi_c": math.nan}
    results = {"net a": _result({("x", 0.1): [0.02, 0.04, 0.03], ("x", 1.0): [0.5, 0.5, 0.5]}),
               "net b": _result({("x", 0.1): [0.4, 0.3, 0.2], ("x", 1.0): [0.01, 0.01, 0.01]},
                                diverged={("x", 1.0)})}
    summary = _claims.summarize(results, {(n, "x"): at_init for n in results}, target=0.1)
    config = ml_collections.ConfigDict({"target_loss": 0.1})
    data = jwinit.data.digits(target="inputs")
    lags = _claims.check_claim(("loss_ratio", "T1", "x", "net a", "x", "net b", 5.0, math.inf),
                               results, summary, config, data)
    # b's lr 1.0 diverged in every run: only lr 0.1 counts, median 0.3; a's best median 0.03
    assert lags["passed"] and "0.3 (lr 0.1) / 0.03 (lr 0.1) = 10" in lags["measured"]
    assert "lags at least 5x behind" in lags["claim"]
    close = _claims.check_claim(("loss_ratio", "T1", "x", "net a", "x", "net b", 0.5, 2.0),
                                results, summary, config, data)
    assert not close["passed"] and "within a factor 2 of" in close["claim"]
    gone = {"net a": results["net a"],
            "net b": _result({("x", 0.1): [0.4, 0.3, 0.2]}, diverged={("x", 0.1)})}
    summary = _claims.summarize(gone, {(n, "x"): at_init for n in gone}, target=0.1)
    check = _claims.check_claim(("loss_ratio", "T1", "x", "net a", "x", "net b", 5.0, math.inf),
                                gone, summary, config, data)
    assert not check["passed"] and "at every learning rate some run of x (net b)" in (
        check["measured"])
