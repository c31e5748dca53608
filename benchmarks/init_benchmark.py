"""Whole-model init at scale: jwinit.init_params against Flax's `jax.jit(model.init,
out_shardings=...)`, and orthogonal init at 4096^2 (QR, Newton-Schulz, jax, PyTorch).

Each (case, method) runs in its own process on 8 simulated CPU devices (or the real devices with
``--size full``), so that peak memories do not mix. Measured per run:

* ``peak_above_baseline``: the process's peak resident memory during the call minus its resident
  memory just before it (Linux ``VmHWM`` after resetting it through ``/proc/self/clear_refs``),
  over the parameter bytes (all shards together);
* ``temp_per_device``: XLA's own account of per-device temporaries (``memory_analysis()``), over
  the bytes of one shard;
* ``seconds``: the wall time of the whole call a user makes, from nothing: tracing, compiling
  and running (an init runs once); for Flax's route this includes its ``eval_shape`` and the
  shardings.

The baseline is the route Flax documents for sharded init::

    abstract = jax.eval_shape(model.init, key, x)
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(abstract), mesh, rules)
    variables = jax.jit(model.init, out_shardings=shardings)(key, x)

and jwinit's call is ``jwinit.init_params(model, key, x, rules, mesh=mesh, axis_rules=...)`` with
rules of the same distributions as the model's defaults (LeCun truncated normal kernels,
N(0, 1) embeddings).

Usage::

    python -m benchmarks.init_benchmark                  # CPU, 8 simulated devices
    python -m benchmarks.init_benchmark --size full      # a GPU: 7B abstract, 8192^2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CASES = {"cpu": ["kernel", "gpt2_small", "1b"], "full": ["kernel", "gpt2_small", "1b", "7b"]}


def _rss(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _child(case: str, method: str) -> dict:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding

    import jwinit

    n_dev = len(jax.devices())
    if case == "kernel":
        mesh = Mesh(np.array(jax.devices()), ("model",))

        class Kernel(nn.Module):
            @nn.compact
            def __call__(self, x):
                init = nn.with_partitioning(nn.initializers.lecun_normal(), (None, "model"))
                return nn.Dense(32768, use_bias=False, kernel_init=init)(x)

        model, x, axis_rules = Kernel(), jax.ShapeDtypeStruct((1, 8192), jnp.float32), None
    else:
        devices = np.array(jax.devices())
        mesh = Mesh(devices.reshape(2, n_dev // 2) if n_dev > 1 else devices.reshape(1, 1),
                    ("data", "model"))
        model = jwinit.models.Decoder(**jwinit.models.DECODER_SIZES[case])
        x, axis_rules = jax.ShapeDtypeStruct((1, 8), jnp.int32), jwinit.models.AXIS_RULES
    key = jax.random.key(0)
    rules = {r"kernel$": jwinit.lecun_normal()}
    if case != "kernel":
        rules[r"embedding$"] = jwinit.normal(1.0)
    abstract = jax.eval_shape(lambda k: model.init(k, jnp.zeros(x.shape, x.dtype)), key)
    n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nn.unbox(abstract)))
    param_bytes = 4 * n_params
    def flax_route(k):
        abstract = jax.eval_shape(lambda k: model.init(k, jnp.zeros(x.shape, x.dtype)), k)
        specs = nn.get_partition_spec(abstract)
        if axis_rules is None:  # nn.with_partitioning: the names are mesh axes
            shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), specs)
        else:
            shardings = nn.logical_to_mesh_sharding(specs, mesh, axis_rules)
        return jax.jit(lambda k: model.init(k, jnp.zeros(x.shape, x.dtype)),
                       out_shardings=shardings)

    if method == "flax":
        def fn(k):
            return flax_route(k)(k)
        traced = flax_route(key)
    else:
        def fn(k):
            return jwinit.init_params(model, k, x, rules, mesh=mesh, axis_rules=axis_rules)
        traced = jax.jit(fn)
    compiled = traced.lower(key).compile() if n_dev > 1 else None
    analysis = None if compiled is None else compiled.memory_analysis()
    jax.clear_caches()
    before = _rss("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    out = fn(key)  # everything a user's call does: tracing, compiling, running
    jax.block_until_ready(out)
    seconds = time.perf_counter() - t0
    peak = _rss("VmHWM") - before
    del out
    run_seconds = None
    if compiled is not None:
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(key))
        run_seconds = time.perf_counter() - t0
    shard_bytes = param_bytes / n_dev
    return {"case": case, "method": method, "params": n_params, "devices": n_dev,
            "param_bytes": param_bytes, "seconds": seconds, "run_seconds": run_seconds,
            "peak_above_baseline": peak,
            "peak_over_params": peak / param_bytes,
            "temp_per_device": None if analysis is None else analysis.temp_size_in_bytes,
            "temp_over_largest_shard": None if analysis is None else
            analysis.temp_size_in_bytes / _largest_shard(abstract, n_dev),
            "temp_over_mean_shard": None if analysis is None else
            analysis.temp_size_in_bytes / shard_bytes}


def _largest_shard(abstract, n_dev: int) -> float:
    import flax.linen as nn
    import jax
    import numpy as np

    return max(4 * int(np.prod(v.shape)) for v in jax.tree.leaves(nn.unbox(abstract))) / n_dev


def _orthogonal(n: int) -> list[dict]:
    import jax

    import jwinit

    out = []
    fns = {"jwinit qr": jwinit.orthogonal(), "jwinit newton_schulz":
           jwinit.orthogonal(method="newton_schulz"),
           "jax.nn.initializers.orthogonal": jax.nn.initializers.orthogonal()}
    for name, init in fns.items():
        f = jax.jit(lambda k, init=init: init(k, (n, n)))
        t0 = time.perf_counter()
        jax.block_until_ready(f(jax.random.key(0)))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        w = jax.block_until_ready(f(jax.random.key(1)))
        again = time.perf_counter() - t0
        import numpy as np
        err = float(np.abs(np.asarray(w).T @ np.asarray(w) - np.eye(n)).max())
        out.append({"method": name, "n": n, "first_call_seconds": first, "seconds": again,
                    "max_abs_WtW_minus_I": err})
    try:
        import torch
    except ImportError:
        out.append({"method": "torch.nn.init.orthogonal_", "n": n, "seconds": None,
                    "note": "torch not installed"})
    else:
        w = torch.empty(n, n)
        t0 = time.perf_counter()
        torch.nn.init.orthogonal_(w)
        out.append({"method": "torch.nn.init.orthogonal_", "n": n,
                    "seconds": time.perf_counter() - t0, "torch": torch.__version__})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("cpu", "full"), default="cpu")
    parser.add_argument("--cases", default=None, help="comma-separated subset of the cases")
    parser.add_argument("--skip_orthogonal", action="store_true")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    env = dict(os.environ)
    if args.size == "cpu":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
        env["JAX_PLATFORMS"] = "cpu"
    cases = args.cases.split(",") if args.cases else CASES[args.size]
    rows = []
    for case in cases:
        for method in ("flax", "jwinit"):
            if case == "7b" and method == "flax":
                continue  # 27 GB: does not fit next to the model on one device
            proc = subprocess.run([sys.executable, "-m", "benchmarks.init_benchmark",
                                   "--child", case, method], env=env, capture_output=True,
                                  text=True)
            if proc.returncode:
                row = {"case": case, "method": method,
                       "error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    if not args.skip_orthogonal:
        for row in _orthogonal(8192 if args.size == "full" else 4096):
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
