"""Benchmark of `jwinit.ntk` against neural-tangents' ``empirical_ntk_fn`` on the same network.

A ReLU MLP (``jwinit.models.MLP(depth=2, width=68, output_dim=10)``: 9,802 parameters) on the
first 1000 shipped digits, the kernel traced over the 10 outputs, (1000, 1000). jwinit's time is
the whole call (compile included), best of ``--repeats``. neural-tangents is not a dependency of
jwinit, and its last release (0.6.5) needs jax < 0.5: with ``--nt-python PATH`` (an interpreter
that has neural-tangents) the same network, with the same weights (``stax.Dense`` in the
'standard' parameterization holds a linen kernel as is), is timed there, in a subprocess, right
after jwinit's rounds (both of `jwinit.NTK_METHODS`, rounds interleaved), for each of its three
implementations (1: Jacobian contraction, 2: NTK-vector products, 3: structured derivatives),
and the kernels are compared.

Usage::

    python -m benchmarks.ntk_benchmark --repeats 3 --nt-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

import jwinit

__all__ = ["network", "time_jwinit", "time_neural_tangents", "main"]

_NT_CODE = r"""
import json, sys, time, types
import numpy as np
sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
import jax
import neural_tangents as nt
from neural_tangents import stax

data = np.load(sys.argv[1])
x = data["x"]
params = [(data[f"W{i}"], data[f"b{i}"]) for i in range(3)]
layers = []
for i in range(3):
    layers.append(stax.Dense(params[i][0].shape[1], parameterization="standard"))
    if i < 2:
        layers.append(stax.Relu())
_, apply_fn, _ = stax.serial(*layers)
net_params = []
for i, (w, b) in enumerate(params):
    net_params.append((w, b))
    if i < 2:
        net_params.append(())
out = {"versions": f"neural-tangents {nt.__version__}, jax {jax.__version__}"}
for impl in (1, 2, 3):
    best = float("inf")
    try:
        for _ in range(int(sys.argv[3])):
            fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                     implementation=impl)
            t0 = time.perf_counter()
            k = np.asarray(jax.block_until_ready(jax.jit(fn)(x, None, net_params)))
            best = min(best, time.perf_counter() - t0)
    except Exception as e:  # an implementation this jax no longer supports
        out[f"error_{impl}"] = f"{type(e).__name__}: {e}"[:200]
        continue
    out[f"seconds_{impl}"] = best
    np.save(sys.argv[2] + f"_{impl}.npy", k)
print(json.dumps(out))
"""


def network() -> tuple[jwinit.models.MLP, np.ndarray, dict]:
    """The MLP, the 1000 digits and its He-initialized variables."""
    x = np.asarray(jwinit.data.digits().x_train[:1000], np.float32)
    model = jwinit.models.MLP(depth=2, width=68, output_dim=10, activation="relu")
    variables = model.init(jax.random.key(0), x[:1])
    return model, x, variables


def time_jwinit(repeats: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Best seconds and the kernel of each of `jwinit.NTK_METHODS`, rounds interleaved."""
    model, x, variables = network()
    best = dict.fromkeys(jwinit.NTK_METHODS, float("inf"))
    kernels = {}
    for _ in range(repeats):
        for method in jwinit.NTK_METHODS:
            t0 = time.perf_counter()
            kernels[method] = np.asarray(jax.block_until_ready(
                jwinit.ntk(model, variables, x, method=method)))
            best[method] = min(best[method], time.perf_counter() - t0)
    return best, kernels


def time_neural_tangents(python: str, repeats: int) -> dict:
    """Run the same network in `python` (an environment with neural-tangents)."""
    model, x, variables = network()
    p = variables["params"]
    arrays = {"x": x}
    for i in range(3):
        arrays[f"W{i}"] = np.asarray(p[f"Dense_{i}"]["kernel"])
        arrays[f"b{i}"] = np.asarray(p[f"Dense_{i}"]["bias"])
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = os.path.join(tmp, "in.npz"), os.path.join(tmp, "kernel")
        np.savez(inp, **arrays)
        done = subprocess.run([python, "-c", _NT_CODE, inp, outp, str(repeats)],
                              capture_output=True, text=True, check=True)
        res = json.loads(done.stdout.strip().splitlines()[-1])
        for impl in (1, 2, 3):
            if f"seconds_{impl}" in res:
                res[f"kernel_{impl}"] = np.load(outp + f"_{impl}.npy")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nt-python", default=None, help="an interpreter with neural-tangents")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    a = ap.parse_args(argv)
    model, x, variables = network()
    n_params = sum(v.size for v in jax.tree.leaves(variables["params"]))
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    seconds, kernels = time_jwinit(a.repeats)
    kernel = kernels["auto"]
    result = {"device": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
              "python": platform.python_version(), "jax": jax.__version__,
              "parameters": int(n_params), "examples": int(x.shape[0]),
              "jwinit_seconds": seconds["auto"], "jwinit_jacobian_seconds": seconds["jacobian"],
              "methods_max_relative_difference": float(
                  np.abs(kernels["jacobian"] - kernel).max() / np.abs(kernel).max())}
    for method, s in seconds.items():
        print(f"jwinit.ntk(method={method!r}): {n_params} parameters, {x.shape[0]} examples: "
              f"{s:.2f} s")
    print(f"methods' max |difference| / max |kernel|: "
          f"{result['methods_max_relative_difference']:.1e}")
    if a.nt_python:
        nt = time_neural_tangents(a.nt_python, a.repeats)
        result["neural_tangents"] = nt["versions"]
        scale = np.abs(kernel).max()
        for impl in (1, 2, 3):
            if f"seconds_{impl}" not in nt:
                result[f"nt_error_{impl}"] = nt[f"error_{impl}"]
                print(f"neural-tangents implementation {impl}: failed ({nt[f'error_{impl}']})")
                continue
            diff = float(np.abs(nt[f"kernel_{impl}"] - kernel).max() / scale)
            result[f"nt_seconds_{impl}"] = nt[f"seconds_{impl}"]
            result[f"nt_max_relative_difference_{impl}"] = diff
            print(f"neural-tangents implementation {impl}: {nt[f'seconds_{impl}']:.2f} s "
                  f"(max |difference| / max |kernel| = {diff:.1e})")
    result["load_after"] = os.getloadavg()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
