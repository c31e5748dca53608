"""The audit of an initialized language model: a correct init raises no flag, each injected bug
is caught at its paths and nowhere else.

A `jwinit.models.Decoder` (GPT-2-small-shaped at full size, 134M parameters) is initialized with
`jwinit.gpt2_rules` (N(0, 0.02^2), the residual projections scaled by 1/sqrt(2L)) by
`jwinit.init_params`, and audited by `jwinit.audit` against the same rules, over `seeds` seeds.
Then one bug at a time, each over `bug_seeds` seeds, the bugs the issue trackers report:

* **residual scaling skipped**: the attention-output and MLP-down projections at N(0, 0.02^2)
  (a name check that never matched: huggingface/transformers #47458);
* **absolute truncation bounds**: the rules truncate every draw at 3 sigma (Megatron, OLMo); the
  embedding was drawn with bounds +-3 in absolute units at std 0.02, so nothing was truncated
  (foundation-model-stack #289, pytorch #155588);
* **block copied**: every parameter of block 1 a copy of block 0's (a key reused);
* **embedding at half std**: the embedding table drawn at 0.01;
* **a leaf in bfloat16**: one MLP kernel cast to bfloat16 in a float32 model.

A case is caught when, in every seed, the flagged paths are exactly the bug's paths, each with
the bug's kind of flag. The audit's thresholds are Bonferroni-corrected at a false-alarm
probability `alpha` per audit, so over `seeds` correct audits the chance of any flag is at most
seeds x alpha.

Config fields: size (a `jwinit.models.DECODER_SIZES` name), seeds, bug_seeds, seed, alpha;
title, paper, not_covered (the report's texts).
Writes results.jsonl (one row per case and seed, appended as each finishes: a rerun resumes),
summary.csv, checks.json, report.md, plots/flags.png and plots/z_scores.png.
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jwinit
from jwinit.experiments.common import (
    check,
    config_choice,
    config_int,
    config_real,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv, write_json
from jwinit.parameter_audit import FLAG_KINDS
from jwinit.recipes import DECODER_PATHS
from jwinit.results import ResumableCells

__all__ = ["DEFAULTS", "run", "validate", "CASES", "inject"]

#: The fields of an audit experiment and their defaults.
DEFAULTS = {
    "title": "Auditing an initialized model against its rules", "paper": "-", "not_covered": "",
    "size": "gpt2_small",
    # 20 correct audits at alpha = 1e-3: a flag anywhere has probability <= 2% were jwinit's
    # thresholds right; each bug over 2 seeds.
    "seeds": 20, "bug_seeds": 2, "seed": 0, "alpha": 1e-3,
}

#: (case, kind of flag it must raise)
CASES = (("correct", None), ("residual scaling skipped", "std"),
         ("absolute truncation bounds", "tail"), ("block copied", "duplicate"),
         ("embedding at half std", "std"), ("a leaf in bfloat16", "dtype"))


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "size", "seeds", "bug_seeds", "seed", "alpha")
    config_choice(config, "size", tuple(jwinit.models.DECODER_SIZES))
    if jwinit.models.DECODER_SIZES[config.size]["layers"] < 2:
        raise ValueError("`config.size` needs a Decoder of at least 2 layers (a block is copied).")
    config_int(config, "seeds")
    config_int(config, "bug_seeds")
    config_int(config, "seed", minimum=0)
    config_real(config, "alpha", low=0.0, high=0.5, low_open=True)


def _set(variables: Any, values: dict[str, Any]) -> Any:
    from flax import traverse_util

    flat = traverse_util.flatten_dict(dict(variables["params"]))
    for path, value in values.items():
        k = tuple(path.split("/"))
        flat[k] = flat[k].replace_boxed(value) if hasattr(flat[k], "replace_boxed") else value
    return {**variables, "params": traverse_util.unflatten_dict(flat)}


def _get(variables: Any, path: str) -> Any:
    from flax import traverse_util

    v = traverse_util.flatten_dict(dict(variables["params"]))[tuple(path.split("/"))]
    return v.unbox() if hasattr(v, "unbox") else v


@functools.cache
def _rules(layers: int) -> tuple[Any, Any]:
    """The GPT-2 rules, plain and truncated at 3 sigma: built once, so that `init_params` reuses
    its compiled program from seed to seed (it is cached by the rules' initializers)."""
    return (jwinit.gpt2_rules(layers, paths=DECODER_PATHS),
            jwinit.gpt2_rules(layers, truncate=3.0, paths=DECODER_PATHS))


def inject(case: str, model: Any, key: jax.Array, tokens: jax.Array
           ) -> tuple[Any, Any, set[str]]:
    """(variables, the rules they were meant to follow, the paths the bug touches) for `case`."""
    layers = model.layers
    plain, truncated = _rules(layers)
    rules = truncated if case == "absolute truncation bounds" else plain
    v = jwinit.init_params(model, key, tokens, rules)
    bug = jax.random.fold_in(key, 10_000)
    if case == "correct":
        return v, rules, set()
    if case == "residual scaling skipped":
        paths = [f"layer_{i}/{n}/kernel" for i in range(layers) for n in ("out", "down")]
        return _set(v, {p: 0.02 * jax.random.normal(jax.random.fold_in(bug, i),
                                                    _get(v, p).shape)
                        for i, p in enumerate(paths)}), rules, set(paths)
    if case == "absolute truncation bounds":
        p = "embed/embedding"
        shape = _get(v, p).shape
        # torch.nn.init.trunc_normal_(w, std=0.02, a=-3, b=3): bounds at 150 sigma
        return _set(v, {p: 0.02 * jax.random.truncated_normal(bug, -3 / 0.02, 3 / 0.02,
                                                              shape)}), rules, {p}
    if case == "block copied":
        from flax import traverse_util

        flat = traverse_util.flatten_dict(dict(v["params"]))
        copies = {"/".join(k): _get(v, "/".join(("layer_0", *k[1:]))) for k in flat
                  if k[0] == "layer_1"}
        touched = {p for p in copies if p.endswith("/kernel")}
        touched |= {p.replace("layer_1", "layer_0") for p in touched}
        return _set(v, copies), rules, touched
    if case == "embedding at half std":
        p = "embed/embedding"
        return _set(v, {p: 0.5 * _get(v, p)}), rules, {p}
    if case == "a leaf in bfloat16":
        p = "layer_1/up/kernel"
        return _set(v, {p: _get(v, p).astype(jnp.bfloat16)}), rules, {p}
    raise ValueError(f"`case` must be one of {[c for c, _ in CASES]}, got {case!r}.")


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    size = jwinit.models.DECODER_SIZES[config.size]
    model = jwinit.models.Decoder(**size)
    tokens = jnp.zeros((1, 8), jnp.int32)
    done = ResumableCells(workdir / "results.jsonl", ("case", "size", "seed", "alpha"))
    cells = [(case, s) for case, _ in CASES
             for s in range(config.seeds if case == "correct" else config.bug_seeds)]
    base = jax.random.key(config.seed)
    with progress_bar("audits", unit="audits") as update:
        finished = len(done)
        update(finished, len(cells))
        for case, s in cells:
            cell = {"case": case, "size": config.size, "seed": s, "alpha": float(config.alpha)}
            if cell in done:
                continue
            variables, rules, paths = inject(case, model, jax.random.fold_in(base, s), tokens)
            report = jwinit.audit(model, variables, rules, x=tokens, alpha=config.alpha)
            rows = report.rows
            done.add([{**cell, "flags": [list(f) for f in report.flags],
                       "expected_paths": sorted(paths), "z_threshold": report.z_threshold,
                       "parameters": len(rows), "unmatched": report.unmatched,
                       "z_std": {r.path: r.z_std for r in rows if r.z_std is not None},
                       "max_over_std": {r.path: r.max_over_std for r in rows
                                        if r.max_over_std is not None}}])
            finished += 1
            update(finished, len(cells))
    results = [done.get({"case": c, "size": config.size, "seed": s, "alpha": float(config.alpha)})
               for c, s in cells]
    summary = _summarize(results)
    checks = _checks(summary, config)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    write_json(workdir / "checks.json", checks)
    plots = _plot(results, config, workdir / "plots")
    n_params = _parameter_count(model, tokens)
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=f"`jwinit.models.Decoder` of size {config.size!r} ({n_params / 1e6:.1f}M "
              f"parameters, {results[0]['parameters']} parameter arrays), initialized by "
              "`jwinit.init_params` with `jwinit.gpt2_rules(L, paths=DECODER_PATHS)` (the "
              "truncation case: `truncate=3.0`); audited by `jwinit.audit` at a false-alarm "
              f"probability {config.alpha:g} per audit (z threshold "
              f"{results[0]['z_threshold']:.2f}); {config.seeds} seeds of the correct model, "
              f"{config.bug_seeds} of each bug.",
        not_covered=config.not_covered,
        checks=checks, tables=[("Every case", summary, columns)], plots=plots)
    return {"audits": len(results), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


def _parameter_count(model: Any, tokens: jax.Array) -> int:
    import flax.linen as nn

    shapes = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0), tokens)))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def _summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for case, kind in CASES:
        rows = [r for r in results if r["case"] == case]
        exact = 0
        false_paths: set[str] = set()
        missed: set[str] = set()
        for r in rows:
            flagged = {p for p, _ in r["flags"]}
            with_kind = {p for p, k in r["flags"] if k == kind}
            expected = set(r["expected_paths"])
            exact += int(flagged == expected and (kind is None or with_kind == expected))
            false_paths |= flagged - expected
            missed |= expected - (with_kind if kind else flagged)
        out.append({"case": case, "flag": kind or "-", "seeds": len(rows),
                    "paths": len(rows[0]["expected_paths"]),
                    "caught exactly": f"{exact}/{len(rows)}",
                    "flags elsewhere": len(false_paths), "paths missed": len(missed),
                    "kinds raised": ", ".join(sorted({k for r in rows for _, k in r["flags"]}))
                    or "-"})
    return out


def _checks(summary: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    checks = []
    for row in summary:
        n = row["seeds"]
        passed = row["caught exactly"] == f"{n}/{n}"
        if row["case"] == "correct":
            checks.append(check(
                f"a correctly initialized Decoder raises no flag ({n} seeds; at most "
                f"{n * config.alpha:.1%} chance of any by the thresholds)",
                "jwinit.audit: Bonferroni thresholds from the sample sizes",
                f"audits without a flag: {row['caught exactly']}", passed))
            continue
        checks.append(check(
            f"{row['case']}: flagged '{row['flag']}' at its {row['paths']} path(s) and nowhere "
            "else", "the bug as the trackers report it (see the setup)",
            f"exactly in {row['caught exactly']} seeds; paths flagged elsewhere "
            f"{row['flags elsewhere']}, missed {row['paths missed']}; kinds: "
            f"{row['kinds raised']}", passed))
    return checks


def _plot(results: list[dict[str, Any]], config: Any, folder: pathlib.Path
          ) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    from matplotlib.colors import BoundaryNorm, ListedColormap

    paths = sorted({p for r in results for p in r["z_std"]} | {
        p for r in results for p in r["unmatched"]})
    kinds = ["none", *FLAG_KINDS]
    colours = ["#f2f2f2", "tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:blue",
               "tab:green", "black"]
    grid = np.zeros((len(CASES), len(paths)))
    for i, (case, _) in enumerate(CASES):
        for r in (r for r in results if r["case"] == case):
            for p, k in r["flags"]:  # the first kind of FLAG_KINDS a path raised
                j = paths.index(p)
                grid[i, j] = kinds.index(k) if grid[i, j] == 0 else min(grid[i, j],
                                                                          kinds.index(k))
    width = max(8.0, 0.09 * len(paths) + 3)
    fig, ax = plt.subplots(figsize=(width, 4.2), constrained_layout=True)
    image = ax.imshow(grid, aspect="auto", interpolation="nearest",
                      cmap=ListedColormap(colours),
                      norm=BoundaryNorm(np.arange(len(kinds) + 1) - 0.5, len(kinds)))
    bar = fig.colorbar(image, ax=ax, ticks=range(len(kinds)))
    bar.ax.set_yticklabels(kinds)
    bar.set_label("flag raised (any seed; the first of these if several)")
    ax.set_yticks(range(len(CASES)), [c for c, _ in CASES])
    step = max(1, len(paths) // 40)
    ax.set_xticks(range(0, len(paths), step), [paths[j] for j in range(0, len(paths), step)],
                  rotation=90, fontsize=6)
    ax.set_xlabel("parameter path")
    ax.set_ylabel("injected bug")
    ax.set_title(f"jwinit.audit flags, Decoder {config.size!r} (each bug must light up its own "
                 "paths only)")
    out = [save_figure(fig, folder / "flags.png")]
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    z_star = results[0]["z_threshold"]
    for case, colour in (("correct", "tab:blue"), ("residual scaling skipped", "tab:red"),
                         ("embedding at half std", "tab:orange")):
        z = np.array([abs(v) for r in results if r["case"] == case for v in r["z_std"].values()])
        z = np.maximum(z, 1e-3)
        ax.hist(np.log10(z), bins=60, histtype="step", color=colour, density=True,
                label=f"{case} ({sum(r['case'] == case for r in results)} seeds, "
                      f"{len(z)} z-scores)")
    grid_z = np.linspace(-3, np.log10(z_star) + 0.5, 300)
    zz = 10**grid_z
    # |z| of a correct parameter is half-normal: density in log10 |z| is 2 phi(z) z ln 10
    ax.plot(grid_z, 2 * np.exp(-zz**2 / 2) / np.sqrt(2 * np.pi) * zz * np.log(10), "k:",
            label="theory for a correct model: |z| half-normal")
    ax.axvline(np.log10(z_star), color="k", ls="--",
               label=f"flag threshold z* = {z_star:.2f} (Bonferroni, alpha {config.alpha:g})")
    ax.set_xlabel("log10 |z| of the std test (measured variance vs the rule's, in standard "
                  "errors)")
    ax.set_ylabel("density over parameters and seeds")
    ax.set_title("The std test: a correct model stays below the threshold, a bug does not")
    ax.legend(fontsize=7)
    out.append(save_figure(fig, folder / "z_scores.png"))
    plt.close(fig)
    return out
