"""The `jwinit` command.

    jwinit list [--markdown]                      every registered initializer
    jwinit describe NAME D1 D2 ... [--arg k=v]    what NAME gives for a weight of shape (D1, ...)
    jwinit probe SCHEME+ACT ... [--depth L] [--width N] [--batch_size B] [--seeds S] [--json]
                                                  does the signal survive L layers? (one program)
    jwinit audit VARIABLES --rules=RULES [--alpha A]
                                                  every parameter of a checkpoint (.npz or orbax
                                                  folder) against the rules meant for it; exit 1
                                                  if anything is flagged
    jwinit run --config=NAME[:smoke] [--config.a.b=v ...] [--workdir=DIR]
                                                  run a shipped config by name (`jwinit run
                                                  --config=he2015`; `jwinit run --help` lists
                                                  them) or a config file (--config=path.py)
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
from collections.abc import Sequence

__all__ = ["main", "parse_kwargs"]


def parse_kwargs(pairs: Sequence[str]) -> dict:
    """``['scale=2.0', 'mode=fan_in']`` -> ``{'scale': 2.0, 'mode': 'fan_in'}`` (literals)."""
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"`--arg` must look like name=value, got {pair!r}.")
        try:
            out[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[name] = text
    return out


def _list(args: argparse.Namespace) -> int:
    from jwinit import registry

    if args.markdown:
        print(registry.markdown_table())
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="jwinit initializers")
    entries = registry.entries()
    # the name is what a user types: never cut or wrapped (the other columns wrap instead)
    table.add_column("name", no_wrap=True, min_width=max(len(e.name) for e in entries))
    for col in ("aliases", "distribution", "Var(W)", "fan mode", "paper"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(e.name, ", ".join(e.aliases), e.distribution, e.variance, e.fan_mode,
                      e.paper)
    Console().print(table)
    return 0


def _describe(args: argparse.Namespace) -> int:
    import jwinit
    from jwinit import registry

    init = registry.make(args.name, **parse_kwargs(args.arg))
    print(jwinit.describe(init, tuple(args.shape), args.dtype))
    return 0


def _ratio(log: float | None, numerics: str = "ok") -> str:
    """A log ratio shown as a ratio, with float32 underflow and overflow named."""
    if log is None:
        return "-"
    if math.isnan(log):
        return {"overflow": "nan (float32 overflow)", "underflow": "0/0 (float32 underflow)",
                "zero": "0/0 (zero weights)"}.get(numerics, "nan")
    if not math.isfinite(log):
        if log > 0:
            return "inf (float32 overflow)"
        return {"underflow": "0 (float32 underflow)", "zero": "0 (zero weights)"}.get(
            numerics, "0 (zero or underflow)")
    return f"{math.exp(log):.3g}" if abs(log) < 700 else f"e^{log:.0f}"


def _probe(args: argparse.Namespace) -> int:
    import json
    import time

    import jax

    from jwinit import registry
    from jwinit import sweep as jsweep
    from jwinit._checks import check_int
    from jwinit.probe import REGIME_FACTOR

    for flag in ("depth", "width", "batch_size", "seeds"):
        check_int(getattr(args, flag), f"--{flag}", minimum=1)
    check_int(args.seed, "--seed", minimum=0)
    pairs = [jsweep.parse_pair(p) for p in args.pairs]
    bias = None
    if args.bias is not None:
        spec = jsweep.parse_scheme(args.bias)  # a name, (name, kwargs) or a mean-field pair
        if isinstance(spec, tuple) and not isinstance(spec[0], str):
            raise ValueError(f"`--bias` must be an initializer such as 'normal(stddev=0.05)', "
                             f"got {args.bias!r}.")
        bias = registry.make(spec) if isinstance(spec, str) else registry.make(spec[0], **spec[1])
    start = time.perf_counter()
    rows = jsweep.sweep(pairs=pairs, depths=(args.depth,), widths=(args.width,),
                        seeds=args.seeds, batch_size=args.batch_size, key=args.seed, bias_init=bias,
                        precision=args.precision)
    seconds = time.perf_counter() - start
    summary = jsweep.summarize(rows)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    colour = {"preserved": "green", "vanishing": "blue", "exploding": "red"}
    table = Table(title=f"signal through {args.depth} layers of width {args.width} "
                        f"(batch size {args.batch_size}, {args.seeds} seeds)")
    table.add_column("scheme + activation", overflow="fold")
    for col in ("forward", "theory", "backward", "theory", "regime", "theory regime",
                "phase (depth scale)", "agrees"):
        table.add_column(col, no_wrap=True)
    for r in summary:
        v, tv = r["verdict"], r["theory_verdict"]
        phase = "-" if r["phase"] is None else (
            f"{r['phase']} ({r['depth_scale']:.3g})" if r["depth_scale"] is not None
            else r["phase"])
        agrees = {True: "yes", False: "no", None: "-"}[r["agrees_with_theory"]]
        table.add_row(f"{r['scheme']} + {r['activation']}",
                      _ratio(r["log_forward"], r["numerics"]), _ratio(r["theory_forward"]),
                      _ratio(r["log_backward"], r["numerics"]), _ratio(r["theory_backward"]),
                      f"[{colour.get(v, 'white')}]{v}[/]",
                      "-" if tv is None else f"[{colour.get(tv, 'white')}]{tv}[/]", phase, agrees)
    console = Console()
    if not console.is_terminal:  # logs: wide enough that no column is cut
        console = Console(width=200)
    console.print(table)
    devices = jax.devices()
    console.print(
        f"forward: E\\[h^2] at layer {args.depth} / layer 1; backward: E\\[g^2] at layer 1 / layer "
        f"{args.depth}; theory: jwinit.theory.predict. regime: at its steady per-layer rate "
        f"(the slope over the last half of the layers), a signal that would change by more than "
        f"{REGIME_FACTOR:g}x over the depth is vanishing or exploding, else preserved. agrees: "
        f"measured and predicted log ratios within +-{summary[0]['tolerance']:.2g} (the "
        f"finite-width tolerance). phase: mean-field chi1 < 1 ordered, > 1 chaotic; depth scale "
        f"-1/log(chi1) in layers.", soft_wrap=True)
    console.print(f"{len(rows)} probes in {seconds:.2f} s (compile included) on "
                  f"{len(devices)} {devices[0].platform} device(s).")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from rich.console import Console

    from jwinit.parameter_audit import audit, load_rules, read_variables

    report = audit(None, read_variables(args.variables), load_rules(args.rules),
                   alpha=args.alpha)
    Console(width=max(Console().width, 120)).print(report.table())
    for path in report.unmatched:
        print(f"not covered by a rule: {path}")
    return 1 if report.flags else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("\njwinit: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `jwinit list --markdown | head`: the reader left; not an error
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        from jwinit.experiments.runner import run_cli

        return run_cli(argv[1:])
    parser = argparse.ArgumentParser(prog="jwinit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list every registered initializer")
    p.add_argument("--markdown", action="store_true", help="print the README table")
    p.set_defaults(fn=_list)
    p = sub.add_parser("describe", help="describe an initializer for a shape")
    p.add_argument("name")
    p.add_argument("shape", type=int, nargs="+")
    p.add_argument("--arg", action="append", default=[], help="factory argument name=value")
    p.add_argument("--dtype", default="float32")
    p.set_defaults(fn=_describe)
    p = sub.add_parser("probe", help="probe deep MLPs: is the signal preserved, vanishing or "
                                     "exploding?",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("pairs", nargs="+", metavar="SCHEME+ACT",
                   help="e.g. he_normal+relu 'normal(stddev=0.1)+tanh' '(1.76, 0.05)+tanh'")
    p.add_argument("--batch_size", "--batch", type=int, default=256, dest="batch_size",
                   help="inputs per seed (--batch is its old name)")
    p.add_argument("--depth", type=int, default=64, help="hidden layers")
    p.add_argument("--width", type=int, default=512, help="units per layer")
    p.add_argument("--seeds", type=int, default=4, help="independent networks per pair")
    p.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    p.add_argument("--bias", default=None, help="bias initializer, e.g. 'normal(stddev=0.05)'")
    p.add_argument("--precision", default=None,
                   choices=["highest", "tensorfloat32", "bfloat16"],
                   help="matmul precision (None: the backend's default)")
    p.add_argument("--json", action="store_true", help="print the summaries as JSON")
    p.set_defaults(fn=_probe)
    p = sub.add_parser("audit", help="audit a checkpoint's parameters against the rules meant "
                                     "for them (exit 1 if anything is flagged)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("variables", help="an .npz of '/'-joined parameter paths, or an orbax "
                                     "checkpoint folder")
    p.add_argument("--rules", required=True,
                   help="rules.py (its RULES), rules.py:NAME or package.module:NAME: a dict "
                        "{pattern: initializer} or a function returning one")
    p.add_argument("--alpha", type=float, default=1e-3,
                   help="probability that a correct checkpoint raises any flag")
    p.set_defaults(fn=_audit)
    sub.add_parser("run", help="run a shipped config by name or a config file: jwinit run "
                              "--config=he2015[:smoke] [--config.field=value] [--workdir=DIR] "
                              "(jwinit run --help lists the configs)")
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, TypeError, OSError) as e:
        print(f"jwinit: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
