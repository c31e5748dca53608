"""Training: does a network initialized this way then learn, how fast, and how well.

Every (network, init, learning rate, seed) run is trained with optax on shipped data
(`jwinit.data`) by `jwinit.train.train`: one compiled program per network. Each run is shown next
to what was known at initialization: for MLPs the probe's regime for that (init, activation,
depth, width) and the mean-field depth scale xi_c; for every network the root mean square of its
output at init (seed 0, 256 training examples).

Config fields:
  experiment: 'training'.
  data: 'digits', 'teacher' or a path to an .npz (see `jwinit.data.load`).
  model: 'mlp' (default) or 'residual'.
  mlp: depth, width: the MLP's hidden layers and units (`jwinit.models.MLP`); the networks are
    the activations (a tuple), each named by its activation.
  residual: blocks (a tuple of block counts), width, branch_layers (>= 2), norms (a tuple of
    None, 'batch', 'layer'): one `jwinit.models.ResidualMLP` per (activation, blocks, norm),
    named like 'relu, 64 blocks, BatchNorm'.
  inits: (('display name', 'scheme'), ...), the scheme as `jwinit.sweep` writes it
    ('he_normal', 'normal(stddev=0.01)', '(2.0, 0.05)' for a mean-field pair, 'zeros'); for a
    residual model 'fixup' (`jwinit.fixup_rules` for its number of blocks through
    `jwinit.init_params`); 'lsuv:<scheme>' for LSUV (`jwinit.lsuv`, Mishkin & Matas 2016) started
    from <scheme>, on the first training batch of each seed; 'pretrain:<scheme>' for greedy
    layer-wise autoencoder pre-training (`jwinit.greedy_pretrain` on the whole training set,
    `pretrain_steps` Adam steps at `pretrain_learning_rate` per layer) started from <scheme>.
  optimizer: 'sgd', 'momentum' (SGD with `momentum`) or 'adam'; learning_rates; steps;
    batch_size; eval_every; seeds; seed.
  target_loss: the train loss a run must reach to count as trained (steps to it are reported).
  signal: record per-layer activation statistics during training (plots/activations.png).
  claims: the paper's claims, each (kind, reference, *arguments); `activation` in a claim is a
    network's name:
    ('reaches', ref, init, activation, within): at the init's best learning rate every seed
      reaches `target_loss` by step `within`;
    ('stalls', ref, init, activation, multiple, other): at every learning rate and seed the
      init's loss stays within 0.05 of chance (ln of the number of classes) for `multiple` times
      the steps `other` needs (its slowest seed at its best learning rate);
    ('faster', ref, init_a, init_b, activation): a reaches the target in fewer steps than b at
      their best learning rates (median over seeds), and b is faster at no learning rate;
    ('saturates', ref, init, activation, learning_rate, below, within): the top hidden layer's
      mean activation falls below `below` by step `within` in every seed while every lower
      hidden layer's stays at or above 0.4 (needs signal);
    ('better_activation', ref, init, activation_a, activation_b): a's median final train loss
      at its best learning rate is below b's;
    ('symmetric', ref, init, activation): after training every kernel but the readout has
      numerical rank <= 1 (sigma_2 <= 1e-6 sigma_1) in every run;
    ('accuracy_below', ref, init, activation, fraction, other): the init's best median test
      accuracy is at most `fraction` of other's;
    ('fails', ref, init, activation): at every learning rate no seed reaches `target_loss` (each
      run diverges or stays above it).
  A run's best learning rate: fewest median steps to the target, then lowest median final loss.
  title, paper, description, not_covered: text for the report.

Writes: results.jsonl (one row per network, init, learning rate, seed and evaluation),
summary.csv (per network, init and learning rate), checks.json, report.md,
plots/curves.png (train loss and test accuracy by init: median and seed range), and with
`signal` plots/activations.png. Training state is checkpointed per activation after every chunk
(checkpoints/<network>.npz): a rerun resumes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from experiments.common import (
    check,
    config_activation,
    config_choice,
    config_claim,
    config_data,
    config_int,
    config_ints,
    config_real,
    config_reals,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from experiments.io import save_figure, write_csv, write_json, write_text
from jwinit._checks import check_choice
from jwinit._jsonl import dumps

__all__ = ["run", "validate", "CLAIMS", "optimizer_of", "best_learning_rate", "networks",
           "Network"]

OPTIMIZERS = ("sgd", "momentum", "adam")
MODELS = ("mlp", "residual")
NORMS = (None, "batch", "layer")
NORM_NAMES = {"batch": "BatchNorm", "layer": "LayerNorm"}
#: the scheme name of Fixup as whole-model rules (residual models only)
FIXUP = "fixup"
#: prefix of LSUV started from a scheme ('lsuv:orthogonal')
LSUV = "lsuv:"
#: prefix of greedy layer-wise pre-training started from a scheme ('pretrain:lecun_uniform')
PRETRAIN = "pretrain:"


def _base_scheme(scheme: str) -> str | None:
    """The scheme a config entry samples from (None for Fixup, whose rules depend on depth)."""
    if scheme == FIXUP:
        return None
    for prefix in (LSUV, PRETRAIN):
        if scheme.startswith(prefix):
            return scheme[len(prefix):]
    return scheme
#: Claim kind -> number of arguments after the reference.
CLAIMS = {"reaches": 3, "stalls": 4, "faster": 3, "saturates": 5, "better_activation": 3,
          "symmetric": 2, "accuracy_below": 4, "fails": 2}


@dataclasses.dataclass(frozen=True)
class Network:
    """One network of a training config: its name, activation and how to build it."""

    name: str
    activation: str
    depth: int                   # MLP hidden layers, or residual blocks
    norm: str | None = None      # residual only
    residual: bool = False

    def build(self, config: Any, output_dim: int) -> Any:
        import jwinit

        if not self.residual:
            return jwinit.models.MLP(depth=self.depth, width=int(config.width),
                                     output_dim=output_dim, activation=self.activation)
        return jwinit.models.ResidualMLP(
            blocks=self.depth, width=int(config.width), output_dim=output_dim,
            branch_layers=int(config.branch_layers), activation=self.activation, norm=self.norm)

    @property
    def file_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_")

    @property
    def train_kwargs(self) -> dict[str, Any]:
        return {"train": True} if self.norm == "batch" else {}

    @property
    def eval_kwargs(self) -> dict[str, Any]:
        return {"train": False} if self.norm == "batch" else {}


def _model_kind(config: Any) -> str:
    return config.get("model", "mlp")


def networks(config: Any) -> list[Network]:
    """The config's networks in order (MLP: one per activation)."""
    acts = list(config.activations)
    if _model_kind(config) == "mlp":
        return [Network(a, a, int(config.depth)) for a in acts]
    out = []
    for a in acts:
        for blocks in config.blocks:
            for norm in config.norms:
                name = f"{a}, {blocks} blocks" + (f", {NORM_NAMES[norm]}" if norm else "")
                out.append(Network(name, a, int(blocks), norm, residual=True))
    return out
#: A loss within this of chance (ln classes) counts as "at chance".
CHANCE_BAND = 0.05


def optimizer_of(config: Any) -> Any:
    import optax

    if config.optimizer == "sgd":
        return optax.sgd
    if config.optimizer == "momentum":
        return functools.partial(optax.sgd, momentum=float(config.momentum))
    return optax.adam


def _inits(config: Any) -> list[tuple[str, str]]:
    values = config.inits
    if not isinstance(values, tuple | list) or not values:
        raise TypeError(f"`config.inits` must be a non-empty tuple of (name, scheme), got "
                        f"{values!r}.")
    out = []
    for item in values:
        if not (isinstance(item, tuple | list) and len(item) == 2
                and all(isinstance(v, str) for v in item)):
            raise TypeError(f"`config.inits` entries must be ('display name', 'scheme'), got "
                            f"{item!r}.")
        out.append((item[0], item[1]))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"`config.inits` has repeated display names: {names}.")
    return out


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "data", "width", "activations", "inits", "optimizer",
            "learning_rates", "steps", "batch_size", "eval_every", "seeds", "seed",
            "target_loss", "signal", "claims")
    from jwinit.train._inits import resolve_inits

    config_data(config)
    kind = check_choice(_model_kind(config), "config.model", MODELS)
    if kind == "mlp":
        require(config, "depth")
        config_int(config, "depth", minimum=0)
    else:
        require(config, "blocks", "branch_layers", "norms")
        config_ints(config, "blocks")
        config_int(config, "branch_layers", minimum=2)
        norms = config.norms
        if not isinstance(norms, tuple | list) or not norms:
            raise TypeError(f"`config.norms` must be a non-empty tuple of {NORMS}, got "
                            f"{norms!r}.")
        for n in norms:
            check_choice(n, "config.norms", NORMS)
        if config.signal:
            raise ValueError("`config.signal` is for MLPs (per hidden layer statistics); set it "
                             "to False for a residual model.")
    config_int(config, "width")
    acts = config.activations
    if not isinstance(acts, tuple | list) or not acts:
        raise TypeError(f"`config.activations` must be a non-empty tuple, got {acts!r}.")
    for a in acts:
        config_activation(a, "activations")
    inits = _inits(config)
    if any(s.startswith(PRETRAIN) for _, s in inits):
        if kind != "mlp":
            raise ValueError("`config.inits`: 'pretrain:' needs config.model = 'mlp'.")
        require(config, "pretrain_steps", "pretrain_learning_rate")
        config_int(config, "pretrain_steps")
        config_real(config, "pretrain_learning_rate", low=0.0)
    if kind == "mlp" and any(s == FIXUP for _, s in inits):
        raise ValueError("`config.inits`: 'fixup' is a residual-network recipe; it needs "
                         "config.model = 'residual'.")
    resolve_inits({n: _base_scheme(s) for n, s in inits if s != FIXUP})  # unknown names fail
    config_choice(config, "optimizer", OPTIMIZERS)
    if config.optimizer == "momentum":
        config_real(config, "momentum", low=0.0, high=1.0, high_open=True)
    config_reals(config, "learning_rates", low=0.0)
    steps = config_int(config, "steps")
    config_int(config, "batch_size")
    every = config_int(config, "eval_every")
    if steps % every:
        raise ValueError(f"`config.steps` ({steps}) must be a multiple of `config.eval_every` "
                         f"({every}).")
    config_int(config, "seeds")
    config_int(config, "seed", minimum=0)
    config_real(config, "target_loss", low=0.0)
    names = {n for n, _ in inits}
    for claim in config.claims:
        config_claim(claim, CLAIMS)
        nets = [n.name for n in networks(config)]
        for v in claim[2:]:
            if isinstance(v, str) and v not in names and v not in nets:
                raise ValueError(f"`config.claims`: {v!r} in {claim!r} is neither an init of "
                                 f"`config.inits` ({sorted(names)}) nor a network ({nets}).")
        if claim[0] == "saturates" and not config.signal:
            raise ValueError("`config.claims`: a 'saturates' claim needs `config.signal = True`.")


# ------------------------------------------------------------------------------------------------
# the run


def _dataset(config: Any) -> Any:
    from jwinit.data import load

    return load(config.data)


def _at_init(kernel: Any, bias: Any, activation: str, depth: int, width: int) -> dict[str, Any]:
    """What is known before training: the probe's regime and the theory's depth scale."""
    import jwinit
    from jwinit import theory

    out: dict[str, Any] = {"probe_regime": "-", "xi_c": math.nan, "sigma_w2": math.nan}
    if depth < 2:
        return out
    r = jwinit.probe_mlp(0, kernel, activation, depth=depth, width=width, batch=256,
                         num_seeds=4, bias_init=bias, statistics="second_moments")
    out["probe_regime"] = r.verdict()
    sw2 = float(jwinit.describe(kernel, (width, width)).variance) * width
    sb2 = 0.0 if bias is None else float(jwinit.describe(bias, (width,)).variance)
    out["sigma_w2"] = sw2
    if sw2 > 0:
        try:
            out["xi_c"] = float(theory.depth_scales(activation, sw2, sb2)[1])
        except ValueError:
            pass
    return out


def _output_rms(model: Any, variables: Any, x: Any, net: Network) -> float:
    """RMS of the output at init, as the first training step sees it (batch statistics)."""
    import jax.numpy as jnp

    mutable = [c for c in variables if c != "params"]
    out = model.apply(variables, x, mutable=mutable or False, **net.train_kwargs)
    out = out[0] if mutable else out
    return float(jnp.sqrt(jnp.mean(jnp.square(out.astype(jnp.float32)))))


def _fixup(model: Any, net: Network, config: Any) -> Callable[..., Any]:
    """Fixup for `net` as a variables function for `jwinit.train` (one call per seed)."""
    import jwinit

    rules = jwinit.fixup_rules(net.depth, int(config.branch_layers))
    return lambda key, x: jwinit.init_params(model, key, x, rules)


def _lsuv(model: Any, net: Network, spec: Any) -> Callable[..., Any]:
    """LSUV from `spec`'s initialization as a variables function for `jwinit.train`."""
    import jwinit
    from jwinit.train._inits import apply_rules

    def init(key, x):
        v = dict(model.init({"params": key, "dropout": key}, x, **net.train_kwargs))
        v["params"] = apply_rules(spec, v["params"], key)
        return jwinit.lsuv(model, x, v, apply_kwargs=net.train_kwargs)

    return init


def _pretrain(model: Any, net: Network, spec: Any, config: Any, data: Any) -> Callable[..., Any]:
    """Greedy layer-wise pre-training from `spec`'s initialization, as a variables function."""
    import jax.numpy as jnp

    import jwinit
    from jwinit.train._inits import apply_rules

    x_all = jnp.asarray(data.x_train)

    def init(key, x):
        v = dict(model.init({"params": key, "dropout": key}, x, **net.train_kwargs))
        v["params"] = apply_rules(spec, v["params"], key)
        return jwinit.greedy_pretrain(model, x_all, v, activation=net.activation,
                                      steps=int(config.pretrain_steps),
                                      learning_rate=float(config.pretrain_learning_rate))

    return init


def _initial_variables(model: Any, net: Network, spec: Any, value: Any, x: Any,
                       seed: int) -> Any:
    """Seed 0's initial variables of one (network, init), with the keys `jwinit.train` uses."""
    import jax

    from jwinit.train._inits import apply_rules

    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 0), 0)
    if callable(value) and not isinstance(value, str):
        return value(key, x)
    v = dict(model.init({"params": key, "dropout": key}, x, **net.train_kwargs))
    return {**v, "params": apply_rules(spec, v["params"], key)}


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    import jax.numpy as jnp

    import jwinit
    from jwinit.train._inits import ZERO, resolve_inits

    workdir = pathlib.Path(workdir)
    data = _dataset(config)
    inits = _inits(config)
    specs = {s.name: s for s in resolve_inits({n: _base_scheme(v) for n, v in inits
                                               if v != FIXUP})}
    nets = networks(config)
    steps = int(config.steps)
    x_init = jnp.asarray(data.x_train[:256])
    results: dict[str, Any] = {}
    at_init: dict[tuple[str, str], dict[str, Any]] = {}
    with progress_bar("training", unit="steps") as update:
        for k, net in enumerate(nets):
            model = net.build(config, data.output_dim)
            values = {n: (_fixup(model, net, config) if v == FIXUP else
                          _lsuv(model, net, specs[n]) if v.startswith(LSUV) else
                          _pretrain(model, net, specs[n], config, data) if v.startswith(PRETRAIN)
                          else v)
                      for n, v in inits}

            def progress(done, total, k=k):
                update(k * steps + done, len(nets) * steps)

            results[net.name] = jwinit.train.train(
                model, data, inits=values, optimizer=optimizer_of(config),
                learning_rates=list(config.learning_rates), steps=steps,
                seeds=int(config.seeds), batch_size=int(config.batch_size),
                eval_every=int(config.eval_every), key=int(config.seed),
                signal=bool(config.signal), train_kwargs=net.train_kwargs,
                eval_kwargs=net.eval_kwargs,
                checkpoint=workdir / "checkpoints" / f"{net.file_name}.npz", progress=progress)
            for name, value in values.items():
                variables = _initial_variables(model, net, specs.get(name), value, x_init,
                                               int(config.seed))
                info = {"probe_regime": "-", "xi_c": math.nan}
                if not net.residual and not callable(value):
                    spec = specs[name]
                    kernel = spec.rule_for("Dense_1/kernel")
                    bias = spec.rule_for("Dense_1/bias")
                    kernel = jwinit.zeros() if kernel is ZERO else kernel
                    bias = None if bias is ZERO or bias is None else bias
                    info = _at_init(kernel, bias, net.activation, net.depth, int(config.width))
                info["output_rms"] = _output_rms(model, variables, x_init, net)
                at_init[(net.name, name)] = info

    by_name = {net.name: net for net in nets}
    rows = []
    for name, r in results.items():
        rows += [{"network": name, "activation": by_name[name].activation, **row}
                 for row in r.rows()]
    write_text(workdir / "results.jsonl", "".join(dumps(row) + "\n" for row in rows))
    summary = _summary(results, at_init, float(config.target_loss))
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    checks = [_check(c, results, summary, config, data) for c in config.claims]
    write_json(workdir / "checks.json", checks)
    plots = _plots(results, summary, config, data, workdir / "plots")
    seconds = {name: (round(r.compile_seconds, 1), round(r.seconds, 1))
               for name, r in results.items()}
    acts = ", ".join(dict.fromkeys(config.activations))
    if _model_kind(config) == "mlp":
        net_text = (f"MLP: {config.depth} hidden layers of {config.width} units ({acts}), zero "
                    "biases unless the init sets them")
    else:
        net_text = (f"residual MLP (`jwinit.models.ResidualMLP`: a stem, pre-activation blocks "
                    f"x + F(x) of {config.branch_layers} Dense layers of {config.width} units, a "
                    f"head; {acts}): networks {[n.name for n in nets]}")
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=(f"{data.summary()} ({config.data}). {net_text}; optimizer "
               f"{config.optimizer}" + (f" (momentum {config.momentum})"
                                       if config.optimizer == "momentum" else "")
               + f", learning rates {list(config.learning_rates)}, batch {config.batch_size}, "
               f"{steps} steps, {config.seeds} seeds, evaluated every {config.eval_every} steps. "
               f"Trained = train loss <= {config.target_loss:g}. Each network's runs are one "
               f"compiled program (compile / total seconds: {seconds}). At init: the root mean "
               "square of the network's output (seed 0, 256 training examples, in training "
               "mode) and, for MLPs, the probe's regime (`jwinit.probe_mlp`, 4 seeds, batch "
               "256) and the mean-field depth scale xi_c of (sigma_w2, sigma_b2)."),
        not_covered=config.not_covered, checks=checks,
        tables=[("Runs by init and learning rate (medians over seeds)", summary, columns)],
        plots=plots)
    return {"runs": sum(len(r.runs) for r in results.values()), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


# ------------------------------------------------------------------------------------------------
# summaries and claims


def _median(values: Sequence[float]) -> float:
    v = np.asarray(values, np.float64)
    return float(np.median(v)) if v.size else math.nan


def _summary(results: dict[str, Any], at_init: dict[tuple[str, str], dict[str, Any]],
             target: float) -> list[dict[str, Any]]:
    out = []
    for act, r in results.items():
        per_run = r.summaries(target_loss=target)
        for init in r.inits:
            for lr in r.learning_rates:
                runs = [per_run[i] for i in r.select(init=init, learning_rate=lr)]
                st = [x["steps_to_target_loss"] for x in runs]
                out.append({
                    "network": act, "init": init, "learning_rate": lr,
                    "median_steps_to_target": _median(st),
                    "seeds_reaching_target": f"{sum(math.isfinite(s) for s in st)}/{len(st)}",
                    "median_final_train_loss": _median([x["final_train_loss"] for x in runs]),
                    "median_final_test_accuracy": _median(
                        [x["final_test_accuracy"] for x in runs]),
                    "diverged": f"{sum(x['diverged'] for x in runs)}/{len(runs)}",
                    "output_rms_at_init": at_init[(act, init)]["output_rms"],
                    "probe_regime_at_init": at_init[(act, init)]["probe_regime"],
                    "xi_c_at_init": at_init[(act, init)]["xi_c"],
                })
        for init in r.inits:
            best = best_learning_rate([s for s in out if s["network"] == act
                                       and s["init"] == init])
            for s in out:
                if s["network"] == act and s["init"] == init:
                    s["best_learning_rate"] = s["learning_rate"] == best
    return out


def best_learning_rate(rows: Sequence[dict[str, Any]]) -> float:
    """The learning rate with the fewest median steps to the target, then the lowest median final
    train loss (NaN losses last)."""
    def key(s):
        loss = s["median_final_train_loss"]
        return (s["median_steps_to_target"], loss if math.isfinite(loss) else math.inf)

    return min(rows, key=key)["learning_rate"]


def _rows(summary, act, init):
    return [s for s in summary if s["network"] == act and s["init"] == init]


def _best(summary, act, init):
    return next(s for s in _rows(summary, act, init) if s["best_learning_rate"])


def _check(claim: Sequence[Any], results: dict[str, Any], summary: list[dict[str, Any]],
           config: Any, data: Any) -> dict[str, Any]:
    kind, ref, *args = claim
    target = float(config.target_loss)
    if kind == "reaches":
        init, act, within = args
        r = results[act]
        b = _best(summary, act, init)
        idx = r.select(init=init, learning_rate=b["learning_rate"])
        st = [r.summaries(target_loss=target)[i]["steps_to_target_loss"] for i in idx]
        return check(f"{init} ({act}) trains: every seed reaches train loss {target:g} within "
                     f"{within} steps", ref,
                     f"at learning rate {b['learning_rate']:g}: steps {st}",
                     all(s <= within for s in st))
    if kind == "stalls":
        init, act, multiple, other = args
        r = results[act]
        b = _best(summary, act, other)
        idx = r.select(init=other, learning_rate=b["learning_rate"])
        other_steps = max(r.summaries(target_loss=target)[i]["steps_to_target_loss"]
                          for i in idx)
        chance = math.log(data.num_classes)
        leave = []
        for i in r.select(init=init):
            below = np.flatnonzero(~(r.train_loss[i] >= chance - CHANCE_BAND))
            leave.append(float(r.eval_steps[below[0]]) if below.size else math.inf)
        need = multiple * other_steps
        first = min(leave)
        left = (f"first leaves chance at step {first:g} (earliest of its {len(leave)} runs)"
                if math.isfinite(first) else
                f"never leaves chance in {int(r.eval_steps[-1])} steps (any of its "
                f"{len(leave)} runs)")
        return check(f"{init} ({act}) stalls at chance-level loss (within {CHANCE_BAND} of "
                     f"ln {data.num_classes} = {chance:.3f}) for at least {multiple}x the steps "
                     f"{other} needs to reach loss {target:g}, at every learning rate and seed",
                     ref, f"{other} needs {other_steps:g} steps (slowest seed, best learning "
                     f"rate); {init} {left}", math.isfinite(other_steps) and first >= need)
    if kind == "faster":
        a, b_, act = args
        ba, bb = _best(summary, act, a), _best(summary, act, b_)
        slower_somewhere = [
            ra["learning_rate"] for ra, rb in zip(_rows(summary, act, a), _rows(summary, act, b_),
                                                  strict=True)
            if rb["median_steps_to_target"] < ra["median_steps_to_target"]]
        return check(f"{a} trains faster than {b_} ({act})", ref,
                     f"median steps to loss {target:g} at the best learning rates: "
                     f"{ba['median_steps_to_target']:g} (lr {ba['learning_rate']:g}) vs "
                     f"{bb['median_steps_to_target']:g} (lr {bb['learning_rate']:g}); learning "
                     f"rates where {b_} is faster: {slower_somewhere or 'none'}",
                     ba["median_steps_to_target"] < bb["median_steps_to_target"]
                     and not slower_somewhere)
    if kind == "saturates":
        init, act, lr, below, within = args
        r = results[act]
        means = r.signal_of("input_mean")  # (runs, E, layers): layer l's input = hidden l's output
        idx = r.select(init=init, learning_rate=lr)
        top = means[idx][:, :, -1]
        lower = means[idx][:, :, 1:-1]
        when = [float(r.eval_steps[np.flatnonzero(t < below)[0]]) if np.any(t < below)
                else math.inf for t in top]
        floor = float(np.nanmin(lower)) if lower.size else math.nan
        return check(f"{init} ({act}): the top hidden layer saturates toward 0 early in "
                     f"training (mean activation below {below:g} within {within} steps) while "
                     "the lower layers do not (mean >= 0.4)", ref,
                     f"learning rate {lr:g}: top layer below {below:g} at steps {when}; lowest "
                     f"mean of a lower layer {floor:.3f}",
                     all(w <= within for w in when) and floor >= 0.4)
    if kind == "better_activation":
        init, a, b_ = args
        la, lb = _best(summary, a, init), _best(summary, b_, init)
        return check(f"{a} networks train better than {b_} networks ({init})", ref,
                     f"median final train loss at the best learning rates: "
                     f"{la['median_final_train_loss']:.3g} ({a}) vs "
                     f"{lb['median_final_train_loss']:.3g} ({b_})",
                     la["median_final_train_loss"] < lb["median_final_train_loss"])
    if kind == "symmetric":
        init, act = args
        r = results[act]
        worst = 0.0
        for i in r.select(init=init):
            for layer in range(int(config.depth)):
                w = np.asarray(r.params[f"Dense_{layer}"]["kernel"][i], np.float64)
                s = np.linalg.svd(w, compute_uv=False)
                ratio = 0.0 if s[0] == 0 else s[1] / s[0]
                worst = max(worst, ratio)
        return check(f"{init} ({act}) cannot break the symmetry between hidden units: every "
                     "hidden kernel stays of rank <= 1", ref,
                     f"largest sigma_2 / sigma_1 over {len(r.select(init=init))} runs and "
                     f"{config.depth} kernels: {worst:.2e}", worst <= 1e-6)
    if kind == "accuracy_below":
        init, act, fraction, other = args
        acc = max(s["median_final_test_accuracy"] for s in _rows(summary, act, init))
        ref_acc = max(s["median_final_test_accuracy"] for s in _rows(summary, act, other))
        return check(f"{init} ({act}) ends far less accurate than {other}: at most "
                     f"{fraction:g}x its test accuracy", ref,
                     f"best median test accuracy {acc:.3f} vs {ref_acc:.3f}",
                     acc <= fraction * ref_acc)
    if kind == "fails":
        init, act = args
        r = results[act]
        per_run = r.summaries(target_loss=target)
        idx = r.select(init=init)
        reached = [i for i in idx if math.isfinite(per_run[i]["steps_to_target_loss"])]
        diverged = sum(per_run[i]["diverged"] for i in idx)
        with np.errstate(all="ignore"):
            best = float(np.nanmin([per_run[i]["best_train_loss"] for i in idx] + [np.inf]))
        return check(f"{init} ({act}) does not train: no run reaches train loss {target:g} at "
                     "any learning rate", ref,
                     f"{len(reached)} of {len(idx)} runs reach it; {diverged} diverge; the "
                     f"lowest train loss of any run is {best:.3g}", not reached)
    raise ValueError(f"unknown claim kind {kind!r}")


# ------------------------------------------------------------------------------------------------
# plots


def _plots(results: dict[str, Any], summary: list[dict[str, Any]], config: Any, data: Any,
           folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    out = []
    acts = list(results)
    fig, axes = plt.subplots(len(acts), 2, figsize=(12, 4.2 * len(acts)), squeeze=False,
                             constrained_layout=True)
    for row, act in enumerate(acts):
        r = results[act]
        ax_l, ax_a = axes[row]
        for init in r.inits:
            lr = _best(summary, act, init)["learning_rate"]
            idx = r.select(init=init, learning_rate=lr)
            n_div = int(np.sum(r.diverged_step[idx] >= 0))
            note = f", diverged {n_div}/{len(idx)}" if n_div else ""
            for ax, values in ((ax_l, r.train_loss[idx]), (ax_a, r.test_accuracy[idx])):
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: every run diverged
                    med = np.nanmedian(values, axis=0)
                    lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
                (line,) = ax.plot(r.eval_steps, med, lw=1.6, label=f"{init} (lr {lr:g}{note})")
                ax.fill_between(r.eval_steps, lo, hi, color=line.get_color(), alpha=0.2)
        if data.task == "classification":
            ax_l.axhline(math.log(data.num_classes), color="k", ls=":", lw=1,
                         label=f"chance: ln {data.num_classes}")
            ax_a.axhline(1 / data.num_classes, color="k", ls=":", lw=1, label="chance")
        ax_l.set_yscale("log")
        ax_l.set_ylabel("train loss (cross-entropy, log scale)")
        ax_a.set_ylabel("test accuracy")
        for ax in (ax_l, ax_a):
            ax.set_xlabel("optimizer step")
            ax.grid(True, which="both", alpha=0.3)
            ax.fill_between([], [], [], color="grey", alpha=0.2, label="range over seeds")
            ax.legend(fontsize=7, loc="best")
        shape = (f"depth {config.depth}, width {config.width}" if _model_kind(config) == "mlp"
                 else f"width {config.width}")
        ax_l.set_title(f"{act}, {shape}: train loss "
                       "(median over seeds, best learning rate of each init)", fontsize=9)
        ax_a.set_title(f"{act}: test accuracy", fontsize=9)
    out.append(save_figure(fig, folder / "curves.png"))
    plt.close(fig)
    if config.signal:
        out.append(_activation_plot(plt, results, summary, config, folder))
    return out


def _activation_plot(plt: Any, results: dict[str, Any], summary: list[dict[str, Any]],
                     config: Any, folder: pathlib.Path) -> pathlib.Path:
    """Glorot & Bengio's Fig. 2: each hidden layer's mean activation (and its standard deviation
    over batch and units) during training."""
    from matplotlib import cm, colors

    acts = list(results)
    inits = results[acts[0]].inits
    depth = int(config.depth)
    fig, axes = plt.subplots(len(acts), len(inits), figsize=(5.5 * len(inits), 4 * len(acts)),
                             squeeze=False, constrained_layout=True)
    norm = colors.Normalize(vmin=1, vmax=max(depth, 2))
    cmap = plt.get_cmap("viridis")
    for row, act in enumerate(acts):
        r = results[act]
        mean, sq = r.signal_of("input_mean"), r.signal_of("input_second_moment")
        for col, init in enumerate(inits):
            ax = axes[row][col]
            lr = _best(summary, act, init)["learning_rate"]
            idx = r.select(init=init, learning_rate=lr)
            for layer in range(1, depth + 1):  # the input of Dense_l is hidden layer l's output
                m = np.nanmedian(mean[idx][:, :, layer], axis=0)
                sd = np.sqrt(np.maximum(np.nanmedian(sq[idx][:, :, layer], axis=0) - m**2, 0))
                c = cmap(norm(layer))
                ax.plot(r.eval_steps, m, color=c, lw=1.5)
                ax.fill_between(r.eval_steps, m - sd, m + sd, color=c, alpha=0.12)
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("mean activation of the hidden layer (+- std)")
            ax.set_title(f"{act}, {init} (lr {lr:g}; median over seeds)", fontsize=9)
            ax.grid(True, alpha=0.3)
            fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="hidden layer",
                         ticks=range(1, depth + 1))
    path = save_figure(fig, folder / "activations.png")
    plt.close(fig)
    return path
