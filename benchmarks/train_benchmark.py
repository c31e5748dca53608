"""Benchmark of the trainer against the training loop a user writes by hand, for five model kinds.

Every kind trains on data that ships with jwinit, with SGD with momentum 0.9, batch 64 and an
evaluation (loss and accuracy on the training and the test set) every 50 steps:

* ``mlp``: `jwinit.models.MLP`, ReLU, depth 30, width 128, on the digits;
* ``cnn``: two 3x3 convolutions of 16 and 32 channels (ReLU) and a Dense head, on the digits as
  8x8 images;
* ``resnet``: `jwinit.models.ResNet`, stages (1, 1), 16 channels, on the digits as 8x8 images;
* ``transformer``: `jwinit.models.Transformer`, 2 Pre-LN blocks of width 32, 4 heads, MLP 64,
  on `jwinit.data.majority` (sequences of 12 tokens);
* ``rnn``: `jwinit.models.RNN`, tanh, width 64, on the digits as sequences of 8 rows.

Two cases per kind, timed in one process, interleaved over ``--repeats`` rounds, every figure the
whole call a user makes (data on the device, initialization, compiles, the steps, evaluations),
from cold: JAX's caches of compiled programs are emptied before every call (``jax.clear_caches``),
so that each side compiles everything it runs, as a first call in a fresh process does:

* **1 run** (He init, learning rate 0.05, seed 0): ``jwinit.train.train`` against `plain_loop`;
* **a grid of 12 runs** (He, LeCun and Glorot inits x learning rates 0.05 and 0.01 x 2 seeds): one
  ``train`` call against 12 plain runs done one after another (`plain_grid`: one compiled step per
  learning rate, reused by every init and seed; one compiled evaluation).

The plain loop is the one a competent user writes, printed by ``--show-loop``: one ``jax.jit``
step (``optax``, batch indices drawn on the device from a key, ``jax.value_and_grad``), a Python
loop over steps, a jitted evaluation every 50 steps. Its initialization is the model's own
``init`` under ``jax.jit``, then every kernel re-drawn with the run's initializer and every bias
zero, in one more jitted call.

The trainer evaluates in batches of 256 examples on CPU (`jwinit.train.EVAL_BATCH_CPU`); the
plain loop evaluates each set at once, as the loop a user writes does. ``--plain-eval-batch 256``
also times the plain loop evaluating in batches of 256 (``plain_1_batched``, ``plain_12_batched``),
to show what of the difference that accounts for. The progress line (`ProgressLine`, into a
buffer) runs in every trainer call; the seconds spent in it, as a share of the one-run call, are
``progress_share_1``.

Goals (issue "trainer speed"): 1 run <= 1.1x the plain loop's time; the grid <= 0.7x the 12 plain
runs'. ``--size tiny`` is a test of the script itself (few steps).

Usage::

    python -m benchmarks.train_benchmark --repeats 3 --out benchmarks/train_results_cpu.json
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import inspect
import io
import json
import os
import platform
import sys
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jwinit

__all__ = ["KINDS", "SIZES", "CNN", "workload", "plain_loop", "plain_grid", "run_trainer",
           "run_benchmark", "main"]

#: The model kinds, in the order of the table.
KINDS = ("mlp", "cnn", "resnet", "transformer", "rnn")
#: size -> (steps, eval_every)
SIZES = {"full": (400, 50), "tiny": (20, 10)}
#: The grid's inits and learning rates (x 2 seeds = 12 runs); the single run is the first of each.
INITS = {"he": jwinit.he_normal(), "lecun": jwinit.lecun_normal(),
         "glorot": jwinit.glorot_uniform()}
LEARNING_RATES = (0.05, 0.01)
SEEDS = 2
BATCH = 64
MOMENTUM = 0.9


class CNN(nn.Module):
    """Two 3x3 convolutions of 16 and 32 channels (ReLU, 'SAME') on 8x8 images, a Dense head."""

    output_dim: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], 8, 8, 1)
        x = nn.relu(nn.Conv(16, (3, 3))(x))
        x = nn.relu(nn.Conv(32, (3, 3))(x))
        return nn.Dense(self.output_dim)(x.reshape(x.shape[0], -1))


def workload(kind: str) -> tuple[nn.Module, jwinit.data.Dataset]:
    """The model and the shipped data of a kind."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}.")
    if kind == "transformer":
        data = jwinit.data.majority()
        return jwinit.models.Transformer(vocab_size=8, length=12, layers=2, dim=32, heads=4,
                                         mlp_dim=64, output_dim=data.output_dim), data
    data = jwinit.data.digits()
    if kind == "mlp":
        return jwinit.models.MLP(depth=30, width=128, output_dim=10, activation="relu"), data
    if kind == "cnn":
        return CNN(10), data
    if kind == "resnet":
        return jwinit.models.ResNet(stages=(1, 1), channels=16, output_dim=10,
                                    image_shape=(8, 8, 1)), data
    x_train, y_train, x_test, y_test = data
    seq = jwinit.data.Dataset(x_train.reshape(-1, 8, 8), y_train, x_test.reshape(-1, 8, 8), y_test)
    return jwinit.models.RNN(width=64, output_dim=10), seq


# ------------------------------------------------------------------------------------------------
# the plain loop (printed by --show-loop)


def plain_loop(model, data, kernel_init, learning_rate, seed, steps, eval_every, compiled=None,
               eval_batch=None):
    """One run the way a user writes it: returns the test accuracy at every evaluation and its
    compiled functions (`plain_grid` passes them to the next run: one step per learning rate,
    one initialization per initializer, one evaluation). `eval_batch`: the evaluation's forward
    passes take this many examples at a time (None: each set at once)."""
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    compiled = {} if compiled is None else compiled
    tx = optax.sgd(learning_rate, momentum=MOMENTUM)

    def loss_fn(params, x, y):
        logits = model.apply({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(params, opt_state, key):
        idx = jax.random.randint(key, (BATCH,), 0, x_train.shape[0])
        loss, grads = jax.value_and_grad(loss_fn)(params, x_train[idx], y_train[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def forward(params, x):
        if eval_batch is None or len(x) <= eval_batch:
            return model.apply({"params": params}, x)
        m = -(-len(x) // eval_batch)
        xs = jnp.concatenate([x, x[: m * eval_batch - len(x)]]).reshape(m, eval_batch, -1)
        out = jax.lax.map(lambda xb: model.apply({"params": params},
                                                 xb.reshape(-1, *x.shape[1:])), xs)
        return out.reshape(m * eval_batch, -1)[: len(x)]

    @jax.jit
    def evaluate(params):
        out_train = forward(params, x_train)
        out_test = forward(params, x_test)
        return (optax.softmax_cross_entropy_with_integer_labels(out_train, y_train).mean(),
                (out_train.argmax(-1) == y_train).mean(),
                optax.softmax_cross_entropy_with_integer_labels(out_test, y_test).mean(),
                (out_test.argmax(-1) == y_test).mean())

    @jax.jit
    def init(key):  # the model's own init, then every kernel re-drawn and every bias zero
        params = model.init(key, x_train[:1])["params"]

        def redraw(path, value):
            name = path[-1].key
            k = jax.random.fold_in(key, len(jax.tree_util.keystr(path)))
            return (kernel_init(k, value.shape, value.dtype) if name == "kernel"
                    else jnp.zeros_like(value) if name == "bias" else value)

        return jax.tree_util.tree_map_with_path(redraw, params)

    step = compiled.setdefault(("step", learning_rate), step)
    evaluate = compiled.setdefault(("evaluate", eval_batch), evaluate)
    init = compiled.setdefault(("init", kernel_init), init)
    params = init(jax.random.key(seed))
    opt_state = tx.init(params)
    key = jax.random.key(10_000 + seed)
    history = [evaluate(params)]
    for t in range(steps):
        params, opt_state, _ = step(params, opt_state, jax.random.fold_in(key, t))
        if (t + 1) % eval_every == 0:
            history.append(evaluate(params))
    return [float(h[3]) for h in history], compiled


def plain_grid(model, data, inits, learning_rates, seeds, steps, eval_every, eval_batch=None):
    """The grid as 12 plain runs one after another, sharing their compiled functions."""
    finals, compiled = [], {}
    for lr in learning_rates:
        for init in inits.values():
            for seed in range(seeds):
                history, compiled = plain_loop(model, data, init, lr, seed, steps, eval_every,
                                               compiled, eval_batch)
                finals.append(history[-1])
    return finals


# ------------------------------------------------------------------------------------------------
# the trainer


class _TimedProgress:
    """The progress line a terminal shows (`jwinit.train.ProgressLine`, here into a buffer),
    with the seconds spent in it: the line's whole cost to the run."""

    def __init__(self, runs: int) -> None:
        self.line = jwinit.train.ProgressLine(runs, io.StringIO())
        self.seconds = 0.0

    def __call__(self, done: int, total: int) -> None:
        t0 = time.perf_counter()
        self.line(done, total)
        self.seconds += time.perf_counter() - t0


def run_trainer(model, data, inits, learning_rates, seeds, steps, eval_every) -> dict[str, Any]:
    runs = len(inits) * len(learning_rates) * seeds
    progress = _TimedProgress(runs)
    r = jwinit.train.train(model, data, inits=inits,
                           optimizer=functools.partial(optax.sgd, momentum=MOMENTUM),
                           learning_rates=list(learning_rates), steps=steps, seeds=seeds,
                           batch_size=BATCH, eval_every=eval_every, progress=progress)
    return {"runs": len(r.runs), "compile_seconds": float(r.compile_seconds),
            "stepping": r.stepping, "batching": r.batching, "threads": r.threads,
            "chunk_traces": r.chunk_traces, "progress_seconds": progress.seconds,
            "progress_writes": progress.line.writes,
            "final_test_accuracy": [float(v) for v in r.test_accuracy[:, -1]]}


def _timed(fn, *args) -> tuple[float, Any]:
    """Seconds of one call from cold: JAX's caches of compiled programs are emptied first, so
    that every figure includes every compile (of the model's initialization, its step and its
    evaluation), as for a first call in a fresh process."""
    jax.clear_caches()
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def run_benchmark(kind: str, size: str = "full", repeats: int = 1,
                  plain_eval_batch: int | None = None) -> dict[str, Any]:
    """Interleaved rounds of the four measurements of one kind; the best round of each. With
    `plain_eval_batch`, the plain loop also runs with its evaluation in batches of that many
    examples (as the trainer evaluates on CPU), 'plain_1_batched' and 'plain_12_batched'."""
    if size not in SIZES:
        raise ValueError(f"`size` must be one of {sorted(SIZES)}, got {size!r}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1, got {repeats!r}.")
    model, data = workload(kind)
    steps, every = SIZES[size]
    one = dict(list(INITS.items())[:1])
    rounds = []
    for _ in range(repeats):
        r: dict[str, Any] = {}
        r["jwinit_1"], j1 = _timed(run_trainer, model, data, one, LEARNING_RATES[:1], 1,
                                   steps, every)
        r["plain_1"], _ = _timed(plain_loop, model, data, INITS["he"], LEARNING_RATES[0], 0,
                                 steps, every)
        r["jwinit_12"], j12 = _timed(run_trainer, model, data, INITS, LEARNING_RATES, SEEDS,
                                     steps, every)
        r["plain_12"], finals = _timed(plain_grid, model, data, INITS, LEARNING_RATES, SEEDS,
                                       steps, every)
        if plain_eval_batch is not None:
            r["plain_1_batched"], _ = _timed(plain_loop, model, data, INITS["he"],
                                             LEARNING_RATES[0], 0, steps, every, None,
                                             plain_eval_batch)
            r["plain_12_batched"], _ = _timed(plain_grid, model, data, INITS, LEARNING_RATES,
                                              SEEDS, steps, every, plain_eval_batch)
        r.update(stepping=j1["stepping"], batching=j1["batching"], threads_12=j12["threads"],
                 compile_1=j1["compile_seconds"], compile_12=j12["compile_seconds"],
                 progress_share_1=j1["progress_seconds"] / r["jwinit_1"],
                 progress_writes_1=j1["progress_writes"], runs_12=j12["runs"],
                 plain_runs_12=len(finals),
                 jwinit_accuracy_12=float(np.nanmedian(j12["final_test_accuracy"])),
                 plain_accuracy_12=float(np.nanmedian(finals)))
        rounds.append(r)
    keys = [k for k in ("jwinit_1", "plain_1", "jwinit_12", "plain_12", "plain_1_batched",
                        "plain_12_batched") if k in rounds[0]]
    best = {k: min(r[k] for r in rounds) for k in keys}
    return {"kind": kind, "size": size, "steps": steps, "eval_every": every, "rounds": rounds,
            "best": best, "ratio_1": best["jwinit_1"] / best["plain_1"],
            "ratio_12": best["jwinit_12"] / best["plain_12"],
            "progress_share_1": max(r["progress_share_1"] for r in rounds)}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", default="all", choices=("all", *KINDS))
    p.add_argument("--size", default="full", choices=sorted(SIZES))
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    p.add_argument("--plain-eval-batch", type=int, default=None,
                   help="also time the plain loop evaluating in batches of this many examples")
    p.add_argument("--show-loop", action="store_true", help="print the plain loop and exit")
    a = p.parse_args(argv)
    if a.show_loop:
        print(inspect.getsource(plain_loop))
        print(inspect.getsource(plain_grid))
        return 0
    kinds = list(KINDS) if a.kind == "all" else [a.kind]
    results = {"device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
               "cpu_count": os.cpu_count(), "load_before": os.getloadavg(),
               "versions": _versions(), "kinds": {}}
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    print(f"{'kind':12} {'stepping':8} {'jwinit 1':>9} {'plain 1':>8} {'ratio':>6}   "
          f"{'jwinit 12':>9} {'plain 12':>8} {'ratio':>6}   {'progress':>8}")
    for kind in kinds:
        res = run_benchmark(kind, a.size, a.repeats, a.plain_eval_batch)
        results["kinds"][kind] = res
        b = res["best"]
        extra = ""
        if a.plain_eval_batch is not None:
            extra = (f"   plain, eval in batches: {b['plain_1_batched']:.2f}s "
                     f"{b['plain_12_batched']:.2f}s")
        print(f"{kind:12} {res['rounds'][0]['stepping']:8} {b['jwinit_1']:8.2f}s "
              f"{b['plain_1']:7.2f}s {res['ratio_1']:5.2f}x   {b['jwinit_12']:8.2f}s "
              f"{b['plain_12']:7.2f}s {res['ratio_12']:5.2f}x   "
              f"{100 * res['progress_share_1']:7.3f}%{extra}", flush=True)
    results["load_after"] = os.getloadavg()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
