"""Benchmark of the one-program trainer against the way a user writes the same grid by hand.

Workloads, each the grid of a shipped training config on the shipped digits (every init, learning
rate and seed; an evaluation of train loss, test loss and test accuracy every `eval_every` steps):

* ``he2015``: configs/he2015_training.py -- a ReLU MLP of depth 30 and width 128, SGD with momentum
  0.9, 2 inits x 3 learning rates x 4 seeds = 24 runs of 1000 steps, batch 64 (compute-bound: about
  190 MFLOP per step in 90 small matmuls);
* ``glorot2010``: configs/glorot2010_training.py, tanh -- a MLP of depth 4 and width 256, plain SGD,
  2 inits x 4 learning rates x 3 seeds = 24 runs of 2000 steps, batch 16 (about 25 MFLOP per step:
  the per-step dispatch of a Python loop matters).

``--size smoke`` is the configs' smoke variants, ``--size tiny`` a test of the script itself.

Measured in one process, side by side, interleaved over ``--repeats`` rounds:

* jwinit: ``jwinit.train.train`` -- one compiled program for all runs (parameters stacked and
  vmapped, steps in a ``lax.scan``); wall time of the whole call, its compile time, and the compile
  time of the same program for 1 run and for the whole grid (it must not grow with the runs);
* the hand-written loop: a Python loop over inits, learning rates and seeds; for each learning rate
  an ``optax.sgd(lr, momentum=0.9)`` and its own ``jax.jit`` train step (as a user writes
  ``@jax.jit def step(params, opt_state, x, y)``), a jitted evaluation, mini-batches drawn with
  replacement, and the same number of steps and evaluations; wall time including its compiles.

Both do the same arithmetic (same model, batch, steps and evaluations); the ratio is loop time /
jwinit time (> 1: jwinit is faster).

Usage::

    python -m benchmarks.train_benchmark --size full --repeats 2 --out train_cpu.json
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jwinit
from configs import glorot2010_training, he2015_training
from jwinit.schemes import named_closure, parse_scheme

#: workload name -> its config module
WORKLOADS = {"he2015": he2015_training, "glorot2010": glorot2010_training}

__all__ = ["WORKLOADS", "grid", "run_jwinit", "run_loop", "compile_scaling", "run_benchmark",
           "main"]


def grid(workload: str, size: str) -> dict[str, Any]:
    """The benchmark grid of a workload: its config ('full' or 'smoke'), or a tiny one."""
    if workload not in WORKLOADS:
        raise ValueError(f"`workload` must be one of {sorted(WORKLOADS)}, got {workload!r}.")
    if size not in ("full", "smoke", "tiny"):
        raise ValueError(f"`size` must be 'full', 'smoke' or 'tiny', got {size!r}.")
    c = WORKLOADS[workload].get_config("smoke" if size == "smoke" else None)
    g = {"workload": workload, "depth": c.depth, "width": c.width,
         "activation": c.activations[0], "inits": {n: s for n, s in c.inits},
         "learning_rates": list(c.learning_rates), "steps": c.steps, "seeds": c.seeds,
         "batch_size": c.batch_size, "eval_every": c.eval_every,
         "momentum": c.momentum if c.optimizer == "momentum" else None}
    if size == "tiny":
        g.update(depth=3, width=16, learning_rates=g["learning_rates"][:2], steps=20, seeds=2,
                 eval_every=10)
    return g


def _initializer(text: str) -> Any:
    spec = parse_scheme(text)
    name, kwargs = (spec, {}) if isinstance(spec, str) else spec
    return named_closure(name, kwargs, "scheme")


def _optimizer(g: dict[str, Any]) -> Any:
    if g["momentum"] is None:
        return optax.sgd
    return functools.partial(optax.sgd, momentum=g["momentum"])


def _model(g: dict[str, Any], kernel_init: Any = None) -> jwinit.models.MLP:
    kw = {} if kernel_init is None else {"kernel_init": kernel_init}
    return jwinit.models.MLP(depth=g["depth"], width=g["width"], output_dim=10,
                             activation=g["activation"], **kw)


def run_jwinit(g: dict[str, Any], data: Any) -> dict[str, float]:
    """One `jwinit.train.train` call over the whole grid."""
    t0 = time.perf_counter()
    r = jwinit.train.train(
        _model(g), data, inits={n: _initializer(s) for n, s in g["inits"].items()},
        optimizer=_optimizer(g),
        learning_rates=g["learning_rates"], steps=g["steps"], seeds=g["seeds"],
        batch_size=g["batch_size"], eval_every=g["eval_every"])
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "compile_seconds": float(r.compile_seconds),
            "runs": len(r.runs), "chunk_traces": r.chunk_traces,
            "final_test_accuracy_median": float(np.median(r.test_accuracy[:, -1]))}


def run_loop(g: dict[str, Any], data: Any) -> dict[str, float]:
    """The hand-written baseline: a Python loop over runs, a jitted optax step per learning rate."""
    t0 = time.perf_counter()
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    n = x_train.shape[0]
    finals = []
    steps_run = 0
    for scheme in g["inits"].values():
        model = _model(g, _initializer(scheme))

        def loss_fn(params, x, y, model=model):
            logits = model.apply({"params": params}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        @jax.jit
        def evaluate(params, model=model, loss_fn=loss_fn):
            logits = model.apply({"params": params}, x_test)
            test_loss = optax.softmax_cross_entropy_with_integer_labels(logits, y_test).mean()
            accuracy = (logits.argmax(-1) == y_test).mean()
            return loss_fn(params, x_train, y_train), test_loss, accuracy

        for lr in g["learning_rates"]:
            tx = _optimizer(g)(lr)

            @jax.jit
            def step(params, opt_state, x, y, tx=tx, loss_fn=loss_fn):
                loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
                updates, opt_state = tx.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state, loss

            for seed in range(g["seeds"]):
                key = jax.random.key(seed)
                params = model.init(key, x_train[:1])["params"]
                opt_state = tx.init(params)
                rng = np.random.default_rng(seed)
                history = []
                for t in range(1, g["steps"] + 1):
                    idx = rng.integers(0, n, g["batch_size"])
                    params, opt_state, _ = step(params, opt_state, x_train[idx], y_train[idx])
                    steps_run += 1
                    if t % g["eval_every"] == 0:
                        history.append(evaluate(params))
                finals.append(float(history[-1][2]))
    return {"seconds": time.perf_counter() - t0, "runs": len(finals), "steps": steps_run,
            "final_test_accuracy_median": float(np.median(finals))}


def compile_scaling(g: dict[str, Any], data: Any) -> dict[str, float]:
    """Compile time of the trainer's program for 1 run and for the whole grid (two chunks each)."""
    out = {}
    for label, inits, lrs, seeds in (
            ("1 run", dict(list(g["inits"].items())[:1]), g["learning_rates"][:1], 1),
            ("grid", g["inits"], g["learning_rates"], g["seeds"])):
        r = jwinit.train.train(
            _model(g), data, inits={n: _initializer(s) for n, s in inits.items()},
            optimizer=_optimizer(g),
            learning_rates=lrs, steps=2 * g["eval_every"], seeds=seeds,
            batch_size=g["batch_size"], eval_every=g["eval_every"])
        out[label] = {"runs": len(r.runs), "compile_seconds": float(r.compile_seconds)}
    return out


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def run_benchmark(workload: str, size: str, repeats: int = 1) -> dict[str, Any]:
    """Interleaved rounds of jwinit and the loop; figures per round and the best of each."""
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1, got {repeats!r}.")
    g = grid(workload, size)
    data = jwinit.data.digits()
    rounds = []
    for _ in range(repeats):
        j = run_jwinit(g, data)
        lp = run_loop(g, data)
        rounds.append({"jwinit": j, "loop": lp})
    best_j = min(r["jwinit"]["seconds"] for r in rounds)
    best_l = min(r["loop"]["seconds"] for r in rounds)
    return {
        "size": size, "grid": {k: v for k, v in g.items() if k != "inits"} | {
            "inits": list(g["inits"].values())},
        "device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(), "load_before": os.getloadavg(),
        "rounds": rounds, "jwinit_seconds": best_j, "loop_seconds": best_l,
        "speedup": best_l / best_j, "compile_scaling": compile_scaling(g, data),
        "versions": _versions(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="all", choices=("all", *WORKLOADS))
    p.add_argument("--size", default="full", choices=("full", "smoke", "tiny"))
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    a = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    names = list(WORKLOADS) if a.workload == "all" else [a.workload]
    results = {}
    for name in names:
        res = run_benchmark(name, a.size, a.repeats)
        res["load_after"] = os.getloadavg()
        results[name] = res
        print(f"{name} ({res['grid']['steps']} steps, {res['rounds'][0]['jwinit']['runs']} runs):")
        for i, r in enumerate(res["rounds"]):
            print(f"  round {i}: jwinit {r['jwinit']['seconds']:.1f} s (compile "
                  f"{r['jwinit']['compile_seconds']:.1f} s), loop {r['loop']['seconds']:.1f} s")
        print(f"  speedup (best loop / best jwinit): {res['speedup']:.2f}x")
        for label, c in res["compile_scaling"].items():
            print(f"  compile, {label} ({c['runs']} runs): {c['compile_seconds']:.2f} s")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
