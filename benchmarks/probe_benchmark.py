"""Benchmark of the signal-propagation probe against the ways people usually measure it.

Workloads (forward + backward, per-layer second moments, seeds x schemes probes):

* W1: 8 schemes (he_normal+relu, glorot_normal+relu, glorot_normal+tanh, lecun_normal+selu,
  normal(0.1)+relu, he_normal+gelu, lecun_normal+tanh, he_normal+tanh), 8 seeds, depth 64,
  width 1024, batch 1024.
* W2: the same schemes, 4 seeds, depth 32, width 2048, batch 2048.

``--size cpu`` shrinks both (W1: 4 seeds, depth 16, width 256, batch 256; W2: 2 seeds, depth 8,
width 512, batch 512) so the whole run takes a few minutes on 2 cores; ``--size full`` is the
sizes above (for a GPU). Measured in one process, side by side:

* jwinit: `jwinit.sweep.plan` -> one compiled program for the whole workload (compile time and
  steady-state run time reported separately);
* PyTorch eager: ``nn.Sequential`` of ``nn.Linear`` + activation, forward hooks recording the mean
  square of every pre-activation and tensor gradient hooks recording that of its gradient, a Python
  loop over schemes and seeds (skipped, with a message, when torch is not installed);
* naive Flax: ``nn.Dense`` layers in a Python loop with ``capture_intermediates`` and ``perturb``,
  one ``jax.jit`` per scheme, called once per seed;
* the hardware limit: an N^3 matmul at the same precision (N = 8192 full, 2048 cpu).

FLOPs are counted as 4 * batch * width^2 * depth per probe (forward and backward matmuls; the
weight sampling, activations and statistics are not counted). Also reported: compile time of the
W1 program at depth 16 and 1024 (and the naive Flax program, whose compile time grows with depth),
the wall time of the default CPU sweep, and peak device memory where the backend reports it.

Usage::

    python -m benchmarks.probe_benchmark --size cpu
    python -m benchmarks.probe_benchmark --size full --precision tensorfloat32 \\
        --out results.json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

import jwinit
from jwinit import probe as jprobe
from jwinit.activations import get_activation
from jwinit.sweep import plan, sweep

__all__ = ["WORKLOADS", "Workload", "main", "run_benchmark", "PAIRS"]

#: The eight (scheme, activation) pairs of W1 and W2.
PAIRS: tuple[tuple[str, str], ...] = (
    ("he_normal", "relu"),
    ("glorot_normal", "relu"),
    ("glorot_normal", "tanh"),
    ("lecun_normal", "selu"),
    ("normal(0.1)", "relu"),
    ("he_normal", "gelu"),
    ("lecun_normal", "tanh"),
    ("he_normal", "tanh"),
)

#: name -> (distribution, variance as a function of (fan_in, fan_out)). The truncated normals are
#: those of jax.nn.initializers / jwinit: N(0, 1) truncated to [-2, 2], rescaled to the variance.
SCHEMES: dict[str, tuple[str, Callable[[int, int], float]]] = {
    "he_normal": ("truncated_normal", lambda fi, fo: 2.0 / fi),
    "glorot_normal": ("truncated_normal", lambda fi, fo: 2.0 / (fi + fo)),
    "lecun_normal": ("truncated_normal", lambda fi, fo: 1.0 / fi),
    "normal(0.1)": ("normal", lambda fi, fo: 0.01),
}


def jwinit_scheme(name: str) -> Any:
    """The sweep's scheme spec for a benchmark scheme name."""
    return ("normal", {"stddev": 0.1}) if name == "normal(0.1)" else name


def jwinit_closure(name: str) -> Callable[..., Any]:
    return jwinit.normal(0.1) if name == "normal(0.1)" else jwinit.registry.make(name)


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    seeds: int
    depth: int
    width: int
    batch: int

    @property
    def probes(self) -> int:
        return self.seeds * len(PAIRS)

    @property
    def flops(self) -> float:
        """4 * batch * width^2 * depth per probe, times the probes."""
        return 4.0 * self.batch * self.width**2 * self.depth * self.probes


WORKLOADS: dict[str, dict[str, Workload]] = {
    "full": {
        "W1": Workload("W1", seeds=8, depth=64, width=1024, batch=1024),
        "W2": Workload("W2", seeds=4, depth=32, width=2048, batch=2048),
    },
    "cpu": {
        "W1": Workload("W1", seeds=4, depth=16, width=256, batch=256),
        "W2": Workload("W2", seeds=2, depth=8, width=512, batch=512),
    },
    "tiny": {  # a smoke test of the script itself
        "W1": Workload("W1", seeds=2, depth=4, width=32, batch=16),
        "W2": Workload("W2", seeds=1, depth=3, width=64, batch=16),
    },
}
MATMUL_N = {"full": 8192, "cpu": 2048, "tiny": 256}


# ------------------------------------------------------------------------------------------------
# timing helpers


def _block(x: Any) -> Any:
    return jax.block_until_ready(x)


TIMING = "min"  # 'min' (best of the repeats: robust to other load on the machine) or 'median'


def _summary(times: Sequence[float]) -> float:
    return min(times) if TIMING == "min" else statistics.median(times)


def interleaved(runners: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Wall times of each runner (which must block until done), in interleaved rounds.

    One warm-up call each, then `repeats` rounds that call every runner once, so that the methods
    compared see the same conditions (other load on the machine changes between rounds, not
    between methods).
    """
    for fn in runners.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):
        for k, fn in runners.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return times


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _peak_bytes() -> int | None:
    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:  # backends without memory statistics
        return None
    return stats.get("peak_bytes_in_use")


# ------------------------------------------------------------------------------------------------
# jwinit


def jwinit_task(w: Workload, precision: str | None, depth: int | None = None,
                statistics: str = "all", remat: str = "auto"):
    tasks = plan(
        pairs=[(jwinit_scheme(s), a) for s, a in PAIRS], depths=[depth or w.depth],
        widths=[w.width], seeds=w.seeds, batch_size=w.batch, precision=precision,
        statistics=statistics, remat=remat,
    )
    assert len(tasks) == 1, "a workload is one compiled program"
    return tasks[0]


def prepare_jwinit(w: Workload, precision: str | None, statistics: str = "all",
                   remat: str = "auto") -> tuple[Callable[[], Any], dict[str, Any]]:
    """A runner for the workload's one compiled program, and its compile facts (with the
    compiled program's FLOP and byte counts from XLA's cost analysis)."""
    task = jwinit_task(w, precision, statistics=statistics, remat=remat)
    args = task.arguments()
    t = time.perf_counter()
    lowered = task.program().lower(*args)
    t_lower = time.perf_counter() - t
    t = time.perf_counter()
    compiled = lowered.compile()
    t_compile = time.perf_counter() - t
    mem = None
    try:
        ma = compiled.memory_analysis()
        mem = int(ma.temp_size_in_bytes + ma.argument_size_in_bytes + ma.output_size_in_bytes)
    except Exception:  # not every backend reports it
        pass
    cost: dict[str, Any] = {}
    try:
        analysis = compiled.cost_analysis()
        analysis = analysis[0] if isinstance(analysis, list | tuple) else analysis
        cost = {"xla_flops": analysis.get("flops"),
                "xla_bytes_accessed": analysis.get("bytes accessed")}
    except Exception:  # not every backend reports it
        pass
    info = {"lower_s": t_lower, "compile_s": t_compile, "remat": task.config.remat,
            "seed_chunk": task.config.seed_chunk, "statistics": statistics,
            "compiled_bytes": mem or None, **cost}
    return (lambda: _block(compiled(*args))), info


def compile_seconds(w: Workload, precision: str | None, depth: int) -> float:
    """Lower + compile time of the workload's program at `depth` (a fresh compile)."""
    jax.clear_caches()  # the probe's jitted programs compile anew
    task = jwinit_task(w, precision, depth)
    t = time.perf_counter()
    task.program().lower(*task.arguments()).compile()
    return time.perf_counter() - t


# ------------------------------------------------------------------------------------------------
# naive Flax baseline


def _dot_precision(precision: str | None) -> Any:
    """The matmul precision jwinit's probe uses for `precision` (the baselines use the same)."""
    if precision == "tensorfloat32" and jax.default_backend() in ("gpu", "cuda"):
        return lax.DotAlgorithmPreset.TF32_TF32_F32
    return {None: lax.Precision.DEFAULT, "highest": lax.Precision.HIGHEST,
            "bfloat16": lax.DotAlgorithmPreset.BF16_BF16_F32}.get(precision, lax.Precision.HIGH)


def prepare_flax(w: Workload, precision: str | None, depth: int | None = None
                 ) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A runner for the naive Flax baseline (8 jits, a Python loop over seeds) and its compile
    time."""
    import flax.linen as nn

    depth = depth or w.depth
    dot_precision = _dot_precision(precision)

    class MLP(nn.Module):
        kernel_init: Any
        act: Any

        @nn.compact
        def __call__(self, x):
            h = x
            for layer in range(depth):
                if layer:
                    h = self.act(h)
                h = nn.Dense(w.width, use_bias=False, kernel_init=self.kernel_init,
                             precision=dot_precision, name=f"dense{layer}")(h)
                h = self.perturb(f"h{layer}", h)
            return h

    def build(scheme: str, act_name: str):
        model = MLP(jwinit_closure(scheme), get_activation(act_name))

        def one_seed(key):
            kp, kx, kg = jax.random.split(key, 3)
            x = jax.random.normal(kx, (w.batch, w.width), jnp.float32)
            variables = model.init(kp, x)
            params, perturbations = variables["params"], variables["perturbations"]
            g = jax.random.normal(kg, (w.batch, w.width), jnp.float32)

            def loss(perturbations):
                out, state = model.apply(
                    {"params": params, "perturbations": perturbations}, x,
                    capture_intermediates=True, mutable=["intermediates"],
                )
                return jnp.sum(out * g), state["intermediates"]

            grads, inter = jax.grad(loss, has_aux=True)(perturbations)
            fwd = jnp.stack([jnp.mean(jnp.square(inter[f"dense{i}"]["__call__"][0]))
                             for i in range(depth)])
            bwd = jnp.stack([jnp.mean(jnp.square(grads[f"h{i}"])) for i in range(depth)])
            return fwd, bwd

        return jax.jit(one_seed)

    fns = [build(s, a) for s, a in PAIRS]
    keys = [jax.random.key(i) for i in range(w.seeds)]
    t = time.perf_counter()
    compiled = [fn.lower(keys[0]).compile() for fn in fns]
    t_compile = time.perf_counter() - t

    def run():
        return _block([c(k) for c in compiled for k in keys])

    return run, {"compile_s": t_compile}


# ------------------------------------------------------------------------------------------------
# PyTorch eager baseline


def prepare_torch(w: Workload, precision: str | None
                  ) -> tuple[Callable[[], Any], dict[str, Any], list[tuple[float, float]]]:
    """A runner for the PyTorch eager baseline, facts, and the (seconds, seconds in nn.init) of
    every call."""
    import torch
    from torch import nn

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = precision in (None, "tensorfloat32")
    torch.backends.cudnn.allow_tf32 = precision in (None, "tensorfloat32")
    torch.set_float32_matmul_precision("high" if precision in (None, "tensorfloat32")
                                       else "highest")
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "selu": nn.SELU, "gelu": nn.GELU}

    def init_(weight: torch.Tensor, scheme: str) -> None:
        dist, var = SCHEMES[scheme]
        fan_out, fan_in = weight.shape
        std = math.sqrt(var(fan_in, fan_out))
        if dist == "normal":
            nn.init.normal_(weight, 0.0, std)
        else:
            s = std / 0.87962566103423978
            nn.init.trunc_normal_(weight, 0.0, s, -2 * s, 2 * s)

    init_seconds = [0.0]

    def probe(scheme: str, act: str, seed: int) -> tuple[list[float], list[float]]:
        torch.manual_seed(seed)
        t = time.perf_counter()
        layers: list[nn.Module] = []
        for i in range(w.depth):
            if i:
                layers.append(acts[act]())
            lin = nn.Linear(w.width, w.width, bias=False, device=device)
            init_(lin.weight.data, scheme)
            lin.weight.requires_grad_(False)
            layers.append(lin)
        net = nn.Sequential(*layers)
        if device == "cuda":
            torch.cuda.synchronize()
        init_seconds[0] += time.perf_counter() - t
        fwd: list[torch.Tensor] = []
        bwd: list[torch.Tensor] = []

        def hook(module, inputs, output):
            fwd.append(output.detach().square().mean())
            output.register_hook(lambda grad: bwd.append(grad.square().mean()))

        for m in net:
            if isinstance(m, nn.Linear):
                m.register_forward_hook(hook)
        x = torch.randn(w.batch, w.width, device=device, requires_grad=True)
        out = net(x)
        out.backward(torch.randn_like(out))
        return [float(v) for v in fwd], [float(v) for v in bwd[::-1]]

    runs: list[tuple[float, float]] = []  # (seconds, seconds in nn.init) per call

    def run():
        init_seconds[0] = 0.0
        t = time.perf_counter()
        out = [probe(s, a, seed) for s, a in PAIRS for seed in range(w.seeds)]
        if device == "cuda":
            torch.cuda.synchronize()
        runs.append((time.perf_counter() - t, init_seconds[0]))
        return out

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    info = {"device": device, "threads": torch.get_num_threads(), "version": torch.__version__}
    return run, info, runs


# ------------------------------------------------------------------------------------------------
# the hardware limit


def prepare_matmul(n: int, precision: str | None) -> Callable[[], Any]:
    """A runner for an n^3 float32 matmul at `precision` (the hardware limit)."""
    p = _dot_precision(precision)
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: jnp.matmul(a, b, precision=p, preferred_element_type=jnp.float32))
    return lambda: _block(f(a, b))


# ------------------------------------------------------------------------------------------------
# the largest network of the issue


def bench_fit(depth: int = 1000, width: int = 4096, batch: int = 1024,
              precision: str | None = "tensorfloat32") -> dict[str, Any]:
    """One probe of a depth x width x batch He/ReLU MLP: time, remat mode and peak memory."""
    task, = plan(pairs=[(jwinit.he_normal(), "relu")], depths=[depth], widths=[width], seeds=1,
                 batch_size=batch, precision=precision)
    remat = task.config.remat  # what remat='auto' chose for this network
    t = time.perf_counter()
    r = jprobe.probe_mlp(0, jwinit.he_normal(), "relu", depth=depth, width=width, batch_size=batch,
                         precision=precision)
    seconds = time.perf_counter() - t
    return {"depth": depth, "width": width, "batch": batch, "remat": remat,
            "seconds_with_compile": seconds, "peak_bytes": _peak_bytes(),
            "verdict": r.verdict()}


# ------------------------------------------------------------------------------------------------
# driver


def _fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g} s"


def environment() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    dev = jax.local_devices()[0]
    return {
        "device": f"{dev.platform}: {getattr(dev, 'device_kind', '')}",
        "devices": jax.local_device_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        **{k: version(k) for k in ("jax", "jaxlib", "flax", "torch", "numpy")},
    }


def run_benchmark(size: str, workloads: Sequence[str], precision: str | None, repeats: int,
                  baselines: Sequence[str], compile_depths: Sequence[int],
                  matmul_n: int | None = None, default_sweep: bool = True, fit: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark and return a JSON-ready dict of results."""
    results: dict[str, Any] = {"size": size, "precision": precision, "repeats": repeats,
                               "timing": TIMING, "load_average": _loadavg(),
                               "environment": environment(), "workloads": {}}
    n = matmul_n or MATMUL_N[size]
    matmul = prepare_matmul(n, precision)
    matmul_times: list[float] = []
    torch_missing = False
    if "torch" in baselines:
        try:
            import torch  # noqa: F401
        except ImportError:
            torch_missing = True
            log("torch is not installed: the PyTorch baseline is skipped (pip install torch)")
    for name in workloads:
        w = WORKLOADS[size][name]
        entry: dict[str, Any] = {"workload": dataclasses.asdict(w), "flops": w.flops}
        log(f"{name}: {w} -> {w.probes} probes, {w.flops:.3g} FLOP")
        runners: dict[str, Callable[[], Any]] = {"matmul": matmul}
        runners["jwinit"], entry["jwinit"] = prepare_jwinit(w, precision)
        # The same work as the baselines: only the forward/backward second moments.
        runners["jwinit_second_moments"], entry["jwinit_second_moments"] = prepare_jwinit(
            w, precision, statistics="second_moments")
        # The previous default, for a before/after in the same run: weights re-sampled in the
        # backward pass instead of kept.
        runners["jwinit_resampled"], entry["jwinit_resampled"] = prepare_jwinit(
            w, precision, remat="layer")
        if "flax" in baselines:
            runners["flax"], entry["flax"] = prepare_flax(w, precision)
        torch_runs: list[tuple[float, float]] = []
        if "torch" in baselines and torch_missing:
            entry["torch"] = {"skipped": "torch is not installed"}
        elif "torch" in baselines:
            runners["torch"], entry["torch"], torch_runs = prepare_torch(w, precision)
        times = interleaved(runners, repeats)
        matmul_times += times.pop("matmul")
        for k, ts in times.items():
            entry[k]["seconds"] = _summary(ts)
            entry[k]["times"] = ts
        if torch_runs:
            tt = entry["torch"]
            # nn.init's share in the reported run (the fastest, or the one nearest the median).
            total, init = min(torch_runs[1:], key=lambda r: abs(r[0] - tt["seconds"]))
            tt["init_share"] = init / total
            if tt["device"] == "cuda":
                import torch

                tt["peak_bytes"] = int(torch.cuda.max_memory_allocated())
        results["workloads"][name] = entry
    results["matmul"] = mm = {"n": n, "seconds": _summary(matmul_times),
                              "times": matmul_times}
    mm["flops_per_s"] = 2.0 * n**3 / mm["seconds"]
    log(f"matmul {n}^3: {mm['flops_per_s'] / 1e12:.3f} TFLOP/s")
    for name, entry in results["workloads"].items():
        w = WORKLOADS[size][name]
        jw, lean = entry["jwinit"], entry["jwinit_second_moments"]
        for d in (jw, lean, entry["jwinit_resampled"]):
            d["flops_per_s"] = w.flops / d["seconds"]
            d["fraction_of_matmul"] = d["flops_per_s"] / mm["flops_per_s"]
        log(f"{name}: jwinit {jw['seconds']:.4g} s ({100 * jw['fraction_of_matmul']:.0f}% of "
            f"matmul; compile {jw['compile_s']:.2f} s); second moments only "
            f"{lean['seconds']:.4g} s ({100 * lean['fraction_of_matmul']:.0f}%); weights "
            f"re-sampled (remat='layer') {entry['jwinit_resampled']['seconds']:.4g} s; "
            f"remat {jw['remat']}; XLA counts {jw.get('xla_flops') or 0:.3g} FLOP, "
            f"{jw.get('xla_bytes_accessed') or 0:.3g} bytes")
        for k in ("flax", "torch"):
            d = entry.get(k, {})
            if "seconds" in d:
                d["ratio"] = d["seconds"] / jw["seconds"]
                d["ratio_second_moments"] = d["seconds"] / lean["seconds"]
                log(f"  {k} {d['seconds']:.4g} s: {d['ratio']:.2f}x jwinit "
                    f"({d['ratio_second_moments']:.2f}x second moments only)")
        tt = entry.get("torch", {})
        if "init_share" in tt:
            tt["ratio_without_init"] = tt["seconds"] * (1 - tt["init_share"]) / jw["seconds"]
    if compile_depths:
        w1 = WORKLOADS[size]["W1"]
        ct = {str(d): compile_seconds(w1, precision, d) for d in compile_depths}
        lo, hi = min(compile_depths), max(compile_depths)
        results["compile"] = {"seconds": ct, "ratio": ct[str(hi)] / ct[str(lo)],
                              "depths": [lo, hi]}
        log(f"compile W1 program: {ct}  ratio depth {hi}/{lo} = "
            f"{results['compile']['ratio']:.2f}")
        if "flax" in baselines:
            fd = {str(d): prepare_flax(w1, precision, depth=d)[1]["compile_s"] for d in (16, 64)}
            results["compile"]["flax_seconds"] = fd
            log(f"compile naive Flax ({len(PAIRS)} jits): {fd}")
    if default_sweep:
        t = time.perf_counter()
        rows = sweep(pairs=[(jwinit_scheme(s), a) for s, a in PAIRS])
        results["default_sweep"] = {"seconds": time.perf_counter() - t, "rows": len(rows)}
        log(f"default sweep (8 pairs, depth 16, width 256, batch 256, 4 seeds, compile "
            f"included): {results['default_sweep']['seconds']:.2f} s")
    if fit:
        log("fit check: depth 1000 x width 4096 x batch 1024 ...")
        results["fit"] = bench_fit(precision=precision)
        log(f"  {results['fit']}")
    results["peak_device_bytes"] = _peak_bytes()
    results["load_average_after"] = _loadavg()
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    mm = results["matmul"]
    lines = [
        f"matmul {mm['n']}^3: {mm['seconds'] * 1e3:.1f} ms, "
        f"{mm['flops_per_s'] / 1e9:.1f} GFLOP/s",
        "",
        "| workload | probes | jwinit (all statistics) | % of matmul | jwinit (second moments) "
        "| % of matmul | naive Flax | x | PyTorch eager | x | jwinit compile |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in results["workloads"].items():
        lines.append(_row(name, e))
    for name, e in results["workloads"].items():
        tt = e.get("torch", {})
        if "init_share" in tt:
            lines.append(f"\n{name}: PyTorch spends {100 * tt['init_share']:.0f}% of its time in "
                         f"nn.init; without it, {tt['ratio_without_init']:.1f}x jwinit.")
    if "compile" in results:
        c = results["compile"]
        lines += ["", "compile (lower + compile) of the W1 program: " + ", ".join(
            f"depth {d}: {s:.2f} s" for d, s in c["seconds"].items())
            + f"; ratio {c['ratio']:.2f}"]
        if "flax_seconds" in c:
            lines.append("naive Flax (8 jits): " + ", ".join(
                f"depth {d}: {s:.2f} s" for d, s in c["flax_seconds"].items()))
    if "default_sweep" in results:
        lines.append(f"default sweep: {results['default_sweep']['seconds']:.1f} s")
    if "fit" in results:
        f = results["fit"]
        peak = "n/a" if f["peak_bytes"] is None else f"{f['peak_bytes'] / 2**30:.1f} GiB"
        lines.append(f"depth {f['depth']} x width {f['width']} x batch {f['batch']}: "
                     f"{f['seconds_with_compile']:.1f} s with compile, remat {f['remat']}, "
                     f"peak {peak}")
    return "\n".join(lines)


def _row(name: str, e: dict[str, Any]) -> str:
    w, jw, lean = e["workload"], e["jwinit"], e["jwinit_second_moments"]
    fx, tt = e.get("flax", {}), e.get("torch", {})

    def base(d: dict[str, Any]) -> str:
        if "seconds" not in d:
            return "skipped | -"
        return (f"{_fmt_s(d['seconds'])} | {d['ratio']:.1f}x "
                f"({d['ratio_second_moments']:.1f}x)")

    return (
        f"| {name} ({w['seeds']} seeds, depth {w['depth']}, width {w['width']}, batch "
        f"{w['batch']}) | {w['seeds'] * len(PAIRS)} | {_fmt_s(jw['seconds'])} | "
        f"{100 * jw['fraction_of_matmul']:.0f}% | {_fmt_s(lean['seconds'])} | "
        f"{100 * lean['fraction_of_matmul']:.0f}% | {base(fx)} | {base(tt)} | "
        f"{jw['compile_s']:.2f} s |"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    default_size = "full" if jax.default_backend() == "gpu" else "cpu"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(WORKLOADS), default=default_size,
                   help="workload sizes: 'full' (the issue's W1/W2, for a GPU), 'cpu', or 'tiny' "
                        "(a smoke test)")
    p.add_argument("--workloads", nargs="+", choices=["W1", "W2"], default=["W1", "W2"])
    p.add_argument("--precision", default="tensorfloat32",
                   choices=["highest", "tensorfloat32", "bfloat16", "none"],
                   help="matmul precision for every method ('none': backend default)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    p.add_argument("--timing", choices=["min", "median"], default="min",
                   help="report the best (default) or the median of the timed runs")
    p.add_argument("--baselines", nargs="*", choices=["torch", "flax"], default=["torch", "flax"])
    p.add_argument("--compile-depths", nargs="*", type=int, default=[16, 1024])
    p.add_argument("--matmul-n", type=int, default=None)
    p.add_argument("--no-default-sweep", action="store_true")
    p.add_argument("--fit", action=argparse.BooleanOptionalAction, default=None,
                   help="probe depth 1000 x width 4096 x batch 1024 once and report its peak "
                        "memory (default: on with --size full)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    global TIMING
    TIMING = args.timing
    precision = None if args.precision == "none" else args.precision
    command = "python -m benchmarks.probe_benchmark " + " ".join(
        sys.argv[1:] if argv is None else argv)
    results = run_benchmark(
        args.size, args.workloads, precision, args.repeats, args.baselines,
        args.compile_depths, matmul_n=args.matmul_n, default_sweep=not args.no_default_sweep,
        fit=args.size == "full" if args.fit is None else args.fit,
    )
    results["command"] = command.strip()
    print()
    print(markdown(results))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
