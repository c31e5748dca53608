"""Training: does a network initialized this way then learn, how fast, and how well.

Every (network, init, learning rate, seed) run is trained with optax on shipped data
(`jwinit.data`) by `jwinit.train.train`: one compiled program per network. Each run is shown next
to what was known at initialization: for MLPs the probe's regime for that (init, activation,
depth, width) and the mean-field depth scale xi_c; for every network the root mean square of its
output at init (seed 0, 256 training examples).

Config fields:
  experiment: 'training'.
  data: 'digits', 'teacher', 'adding_problem' or a path to an .npz (see `jwinit.data.load`);
    data_options: the loader's keyword arguments (e.g. {'length': 60, 'n': 4096}).
  model: 'mlp' (default), 'residual', 'rnn' or 'transformer'.
  mlp: depth, width: the MLP's hidden layers and units (`jwinit.models.MLP`; width may be a
    tuple of `depth` widths, e.g. an autoencoder's (256, 128, 32, 128, 256)); the networks are
    the activations (a tuple), each named by its activation.
  residual: blocks (a tuple of block counts), width, branch_layers (>= 2), norms (a tuple of
    None, 'batch', 'layer'): one `jwinit.models.ResidualMLP` per (activation, blocks, norm),
    named like 'relu, 64 blocks, BatchNorm'.
  rnn: width: one `jwinit.models.RNN` per activation, named like 'relu RNN' (sequences: the
    adding problem).
  transformer: width, heads, mlp_dim, networks: ((layers, norm, warmup_steps[, inits]), ...)
    with norm None, 'pre', 'post' or 'deepnorm' (Post-LN with DeepNet's alpha): one
    `jwinit.models.Transformer` each (vocabulary and length from the data, whose inputs are
    token ids), trained with a linear learning-rate warmup over `warmup_steps` (0: none), from
    the inits named in the optional tuple `inits` (default: all), named like
    '24 layers, Post-LN, warmup 100'.
  inits: (('display name', scheme), ...), the scheme as `jwinit.sweep` writes it
    ('he_normal', 'normal(stddev=0.01)', '(2.0, 0.05)' for a mean-field pair, 'zeros'), or a
    dict of regular expression to scheme for per-role rules ({r'recurrent/kernel$': 'irnn',
    r'input/kernel$': 'normal(stddev=0.001)'}: the first match wins, unmatched parameters keep
    the model's own initialization); the whole-model recipes 'fixup' (residual:
    `jwinit.fixup_rules` for its number of blocks), 't_fixup' and 'deepnet' (transformer:
    `jwinit.t_fixup_rules`, `jwinit.deepnet_rules` for its layers) through `jwinit.init_params`;
    'lsuv:<scheme>' for LSUV (`jwinit.lsuv`, Mishkin & Matas 2016) started
    from <scheme>, on the first training batch of each seed; 'pretrain:<scheme>' for greedy
    layer-wise autoencoder pre-training (`jwinit.greedy_pretrain` on the whole training set,
    `pretrain_steps` Adam steps at `pretrain_learning_rate` per layer) started from <scheme>;
    'gradinit:<scheme>' for GradInit (`jwinit.gradinit`, Zhu et al. 2021: one learned scale per
    parameter tensor, `gradinit_steps` iterations on training batches, for a first step of
    size `gradinit_learning_rate` of the config's optimizer, gradient norm bound
    `gradinit_gamma`, Adam at `gradinit_scale_lr` on the scales) started from <scheme>.
  optimizer: 'sgd', 'momentum' (SGD with `momentum`; `nesterov` for Nesterov's accelerated
    gradient; `momentum_schedule` None for a constant momentum or 'sutskever2013' for
    mu_t = min(1 - 2^(-1 - log2(floor(t / momentum_period) + 1)), momentum), Sutskever et al.
    2013's schedule, 0.5 for the first `momentum_period` steps (250 in the paper), then 0.75,
    0.83, ... up to `momentum`) or 'adam'; clip_norm (optional: clip the gradient to this global
    norm first).
  optimizers (optional): (('display name', {field: value, ...}), ...) to train every network
    with each of several optimizers: each entry overrides the optimizer fields above
    (`OPTIMIZER_FIELDS`) and makes its own networks, named like 'sigmoid, no momentum'.
  learning_rates; steps; batch_size; eval_every;
    eval_examples (optional, default 4096: the train metrics are over the first this many
    training examples); seeds; seed.
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
      run diverges or stays above it);
    ('lower_final_loss', ref, init, network_a, network_b, learning_rate): with the same init and
      learning rate, a's median final train loss over seeds is below b's and a's is lower in
      most seeds, seed for seed (e.g. Post-LN with warmup against without).
    ('loss_ratio', ref, init_a, network_a, init_b, network_b, low, high): the lowest median
      final train loss of (network_b, init_b) over the learning rates is between `low` and
      `high` times that of (network_a, init_a) (`high` may be math.inf: b lags at least `low`
      times behind a; low = 1 / high: they are within a factor `high` of each other).
  A run's best learning rate: fewest median steps to the target, then lowest median final loss.
  title, paper, description, not_covered: text for the report.

Writes: results.jsonl (one row per network, init, learning rate, seed and evaluation),
summary.csv (per network, init and learning rate), checks.json, report.md,
plots/curves.png (train loss and test accuracy by init: median and seed range), and with
`signal` plots/activations.png. Training state is checkpointed per activation after every chunk
(checkpoints/<network>.npz): a rerun resumes.
"""

from __future__ import annotations

import functools
import math
import pathlib
from collections.abc import Mapping
from typing import Any

from jwinit._checks import check_choice, check_int, check_real
from jwinit.experiments.common import (
    config_activation,
    config_claim,
    config_data,
    config_int,
    config_ints,
    config_real,
    config_reals,
    progress_bar,
    require,
    write_report,
    writers_for,
)
from jwinit.experiments.io import write_csv, write_json, write_text
from jwinit.experiments.training._claims import CLAIMS, best_learning_rate, check_claim, summarize
from jwinit.experiments.training._networks import (
    LAYER_NORMS,
    MODELS,
    NORMS,
    Network,
    gradinit_variables,
    lsuv_variables,
    model_kind,
    networks,
    output_rms,
    pretrain_variables,
    probe_at_init,
    recipe_variables,
)
from jwinit.experiments.training._plots import plots
from jwinit.models import MLP
from jwinit.results import DamagedFileError, dumps
from jwinit.schemes import GRADINIT, LSUV, PRETRAIN, RECIPES, base_scheme

#: `jwinit run --writer=...` applies (the runs' metrics go to the writers as they train).
WRITES_METRICS = True

__all__ = ["DEFAULTS", "run", "validate", "CLAIMS", "optimizer_of", "best_learning_rate",
           "networks", "Network", "OPTIMIZERS", "OPTIMIZER_FIELDS", "MOMENTUM_SCHEDULES",
           "optimizer_variants", "sutskever_momentum"]

#: The fields of a training experiment and their defaults. Which of the model fields count
#: depends on `model`: 'mlp' `depth`; 'residual' `blocks`, `branch_layers`, `norms`;
#: 'transformer' `networks`, `heads`, `mlp_dim`; 'rnn' none. The `pretrain_*` and `gradinit_*`
#: fields count when an init is 'pretrain:...' or 'gradinit:...'.
DEFAULTS = {
    "title": "Training", "paper": "-", "not_covered": "",
    "data": "digits", "data_options": None,
    "model": "mlp", "depth": None, "blocks": None, "branch_layers": 2, "norms": (None,),
    "networks": None, "heads": None, "mlp_dim": None, "width": 64, "activations": ("relu",),
    "inits": None,
    "optimizer": "momentum", "momentum": 0.9, "nesterov": False, "momentum_schedule": None,
    "momentum_period": 250, "clip_norm": None, "optimizers": None,
    "learning_rates": (0.003, 0.01, 0.03), "steps": 500, "batch_size": 64, "eval_every": 50,
    "eval_examples": 4096, "seeds": 3, "seed": 0, "target_loss": 0.3, "signal": False,
    "claims": (),
    "pretrain_steps": 300, "pretrain_learning_rate": 0.01,
    "gradinit_steps": 50, "gradinit_learning_rate": 0.01, "gradinit_gamma": 1.0,
    "gradinit_scale_lr": 0.05,
}

OPTIMIZERS = ("sgd", "momentum", "adam")
#: Momentum schedules: constant, or Sutskever et al. (2013, Sec. 3)'s rising one.
MOMENTUM_SCHEDULES = (None, "sutskever2013")
#: The fields an entry of `config.optimizers` may override.
OPTIMIZER_FIELDS = ("optimizer", "momentum", "nesterov", "momentum_schedule", "momentum_period",
                    "clip_norm")


def sutskever_momentum(momentum: float, period: int = 250) -> Any:
    """Sutskever et al. (2013, Sec. 3)'s momentum schedule as an optax-style function of
    the step count t: mu_t = min(1 - 2^(-1 - log2(floor(t / period) + 1)), momentum), i.e.
    1 - 1 / (2 (floor(t / period) + 1)): 0.5, 0.75, 0.833, 0.875, 0.9, ... (one value per
    `period` steps, 250 in the paper) until it reaches `momentum`."""
    import jax.numpy as jnp

    def schedule(count):
        k = jnp.floor(jnp.asarray(count, jnp.float32) / period) + 1.0
        return jnp.minimum(1.0 - 0.5 / k, momentum)

    return schedule


def _optimizer_fields(config: Any, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The optimizer fields of `config` (defaults where absent), with `overrides` applied."""
    out = {f: config.get(f, DEFAULTS[f]) for f in OPTIMIZER_FIELDS}
    out.update(dict(overrides or {}))
    return out


def optimizer_of(config: Any, warmup: int = 0, overrides: Mapping[str, Any] | None = None) -> Any:
    """optax's factory of `config.optimizer` (learning rate -> transformation), with the fields
    of `overrides` (one entry of `config.optimizers`) in place of the config's; with `warmup`
    steps the learning rate rises linearly from lr / warmup to lr over the first `warmup` steps;
    with `clip_norm` the gradient is first clipped to that global norm; with `momentum_schedule`
    'sutskever2013' the momentum follows `sutskever_momentum` (optax.inject_hyperparams)."""
    import jax.numpy as jnp
    import optax

    fields = _optimizer_fields(config, overrides)
    if fields["optimizer"] == "sgd":
        make = optax.sgd
    elif fields["optimizer"] == "momentum":
        nesterov = bool(fields["nesterov"])
        if fields["momentum_schedule"] == "sutskever2013":
            mu = sutskever_momentum(float(fields["momentum"]), int(fields["momentum_period"]))
            make = lambda lr: optax.inject_hyperparams(optax.sgd)(  # noqa: E731
                learning_rate=lr, momentum=mu, nesterov=nesterov)
        else:
            make = functools.partial(optax.sgd, momentum=float(fields["momentum"]),
                                     nesterov=nesterov)
    else:
        make = optax.adam
    clip = fields["clip_norm"]
    if not warmup and clip is None:
        return make

    def factory(learning_rate):
        lr = learning_rate
        if warmup:
            lr = lambda count: learning_rate * jnp.minimum(1.0, (count + 1) / warmup)  # noqa: E731
        if clip is None:
            return make(lr)
        return optax.chain(optax.clip_by_global_norm(float(clip)), make(lr))

    return factory


def _validate_optimizer(fields: Mapping[str, Any], where: str) -> None:
    """The optimizer fields (`OPTIMIZER_FIELDS`) of the config or of one of its `optimizers`."""
    check_choice(fields["optimizer"], f"{where}optimizer", OPTIMIZERS)
    if fields["optimizer"] == "momentum":
        check_real(fields["momentum"], f"{where}momentum", low=0.0, high=1.0, high_open=True)
        if not isinstance(fields["nesterov"], bool):
            raise TypeError(f"`{where}nesterov` must be True or False, got "
                            f"{fields['nesterov']!r}.")
        check_choice(fields["momentum_schedule"], f"{where}momentum_schedule",
                     MOMENTUM_SCHEDULES)
        if fields["momentum_schedule"] is not None:
            check_int(fields["momentum_period"], f"{where}momentum_period", minimum=1)
    if fields["clip_norm"] is not None:
        check_real(fields["clip_norm"], f"{where}clip_norm", low=0.0)


def optimizer_variants(config: Any) -> list[tuple[str | None, dict[str, Any]]]:
    """The (name, overrides) of `config.optimizers`, or [(None, {})] for the config's own."""
    variants = config.get("optimizers", None)
    if variants is None:
        return [(None, {})]
    out = []
    for item in variants:
        name, fields = item
        out.append((name, dict(fields.to_dict() if hasattr(fields, "to_dict") else fields)))
    return out


def _validate_optimizers(config: Any) -> None:
    _validate_optimizer(_optimizer_fields(config), "config.")
    variants = config.get("optimizers", None)
    if variants is None:
        return
    if not isinstance(variants, tuple | list) or not variants:
        raise TypeError(f"`config.optimizers` must be None or a non-empty tuple of ('display "
                        f"name', {{field: value}}), got {variants!r}.")
    names = []
    for item in variants:
        fields = item[1] if isinstance(item, tuple | list) and len(item) == 2 else None
        if fields is not None and hasattr(fields, "to_dict"):
            fields = fields.to_dict()
        if not (isinstance(item[0] if fields is not None else None, str)
                and isinstance(fields, Mapping)):
            raise TypeError(f"`config.optimizers` entries must be ('display name', {{field: "
                            f"value}}), got {item!r}.")
        unknown = sorted(set(fields) - set(OPTIMIZER_FIELDS))
        if unknown:
            raise ValueError(f"`config.optimizers` entry {item[0]!r}: unknown field(s) {unknown}; "
                             f"an entry may set {list(OPTIMIZER_FIELDS)}.")
        _validate_optimizer(_optimizer_fields(config, fields),
                            f"config.optimizers[{item[0]!r}].")
        names.append(item[0])
    if len(set(names)) != len(names):
        raise ValueError(f"`config.optimizers` has repeated display names: {names}.")


def _scheme(item: Any) -> Any:
    """A config entry's scheme: a string, or a mapping of regular expression to scheme string."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping) or hasattr(item, "to_dict"):
        rules = dict(item.to_dict() if hasattr(item, "to_dict") else item)
        if rules and all(isinstance(k, str) and isinstance(v, str) for k, v in rules.items()):
            return rules
    return None


def _inits(config: Any) -> list[tuple[str, Any]]:
    values = config.inits
    if not isinstance(values, tuple | list) or not values:
        raise TypeError(f"`config.inits` must be a non-empty tuple of (name, scheme), got "
                        f"{values!r}.")
    out = []
    for item in values:
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)
                and _scheme(item[1]) is not None):
            raise TypeError(f"`config.inits` entries must be ('display name', 'scheme') or "
                            f"('display name', {{'regular expression': 'scheme', ...}}), got "
                            f"{item!r}.")
        out.append((item[0], _scheme(item[1])))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"`config.inits` has repeated display names: {names}.")
    return out


def _validate_model(config: Any, kind: str) -> None:
    if kind == "mlp":
        require(config, "depth")
        depth = config_int(config, "depth", minimum=0)
        width = tuple(config.width) if isinstance(config.width, list) else config.width
        try:
            MLP(depth=depth, width=width, output_dim=1).hidden_widths()
        except ValueError as e:
            raise ValueError(f"`config.width`: {e}") from None
    elif kind == "residual":
        require(config, "blocks", "branch_layers", "norms")
        config_ints(config, "blocks")
        config_int(config, "branch_layers", minimum=2)
        norms = config.norms
        if not isinstance(norms, tuple | list) or not norms:
            raise TypeError(f"`config.norms` must be a non-empty tuple of {NORMS}, got "
                            f"{norms!r}.")
        for n in norms:
            check_choice(n, "config.norms", NORMS)
    elif kind == "transformer":
        require(config, "networks", "heads", "mlp_dim")
        nets = config.networks
        if not isinstance(nets, tuple | list) or not nets:
            raise TypeError("`config.networks` must be a non-empty tuple of (layers, norm, "
                            f"warmup_steps), got {nets!r}.")
        names = [n for n, _ in _inits(config)]
        for item in nets:
            if not (isinstance(item, tuple | list) and len(item) in (3, 4)
                    and all(isinstance(v, int) and not isinstance(v, bool)
                            for v in (item[0], item[2])) and item[0] >= 1 and item[2] >= 0):
                raise ValueError("`config.networks` entries must be (layers >= 1, norm, "
                                 f"warmup_steps >= 0[, inits]), got {item!r}.")
            check_choice(item[1], "config.networks norm", LAYER_NORMS)
            if len(item) == 4 and (not isinstance(item[3], tuple | list) or not item[3]
                                   or any(n not in names for n in item[3])):
                raise ValueError(f"`config.networks`: the inits of {item!r} must be a non-empty "
                                 f"tuple of names of `config.inits` {names}.")
        heads = config_int(config, "heads")
        config_int(config, "mlp_dim")
        if int(config.width) % heads:
            raise ValueError(f"`config.width` ({config.width}) must be divisible by "
                             f"`config.heads` ({heads}).")
    if kind != "mlp" and config.signal:
        raise ValueError("`config.signal` is for MLPs (per hidden layer statistics); set it "
                         f"to False for a {kind} model.")


def _check_rules_match(config: Any, data: Any, inits: list[tuple[str, Any]]) -> None:
    """Every pattern of a dict of rules matches a parameter of every network (shapes only)."""
    import jax.numpy as jnp

    from jwinit.train import check_inits

    rules = {n: v for n, v in inits if isinstance(v, dict)}
    for net in networks(config):
        try:
            check_inits(rules, net.build(config, data), jnp.asarray(data.x_train[:2]),
                        train_kwargs=net.train_kwargs)
        except ValueError as e:
            raise ValueError(f"`config.inits` (network {net.name!r}): {e}") from None


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "data", "width", "activations", "inits", "optimizer",
            "learning_rates", "steps", "batch_size", "eval_every", "seeds", "seed",
            "target_loss", "signal", "claims")
    from jwinit.train import check_inits

    config_data(config)
    options = config.get("data_options", None)
    if options is not None and not (isinstance(options, Mapping) or hasattr(options, "to_dict")):
        raise TypeError(f"`config.data_options` must be a dict of the loader's keyword "
                        f"arguments, got {options!r}.")
    try:
        data = _dataset(config)
    except DamagedFileError as e:
        raise ValueError(f"`config.data`: {e}") from None
    except (TypeError, ValueError) as e:
        shown = options.to_dict() if hasattr(options, "to_dict") else options
        raise type(e)(f"`config.data_options` ({shown!r}) for {config.data!r}: {e}") from None
    kind = check_choice(model_kind(config), "config.model", MODELS)
    if not (kind == "mlp" and isinstance(config.width, tuple | list)):
        config_int(config, "width")
    _validate_model(config, kind)
    acts = config.activations
    if not isinstance(acts, tuple | list) or not acts:
        raise TypeError(f"`config.activations` must be a non-empty tuple, got {acts!r}.")
    for a in acts:
        config_activation(a, "activations")
    inits = _inits(config)
    schemes = [s for _, s in inits if isinstance(s, str)]
    for s in schemes:
        if s.startswith(LSUV) and base_scheme(s).strip() in ("zeros", "zero"):
            raise ValueError(f"`config.inits`: {s!r}: LSUV rescales each layer to unit output "
                             "variance and cannot rescale a layer whose kernel is zero "
                             "(its output variance is 0); start it from a random scheme, e.g. "
                             "'lsuv:orthogonal'.")
    if any(s.startswith(PRETRAIN) for s in schemes):
        if kind != "mlp":
            raise ValueError("`config.inits`: 'pretrain:' needs config.model = 'mlp'.")
        require(config, "pretrain_steps", "pretrain_learning_rate")
        config_int(config, "pretrain_steps")
        config_real(config, "pretrain_learning_rate", low=0.0, low_open=True)
    if any(s.startswith(GRADINIT) for s in schemes):
        if config.get("optimizers", None) is not None:
            raise ValueError("`config.optimizers` cannot be combined with 'gradinit:' inits: "
                             "GradInit fits its scales to the first step of one optimizer "
                             "(`config.optimizer`); train each optimizer in its own config.")
        require(config, "gradinit_steps", "gradinit_learning_rate", "gradinit_gamma",
                "gradinit_scale_lr")
        config_int(config, "gradinit_steps")
        for field in ("gradinit_learning_rate", "gradinit_gamma", "gradinit_scale_lr"):
            config_real(config, field, low=0.0, low_open=True)
    for s in schemes:
        if s in RECIPES and RECIPES[s] != kind:
            raise ValueError(f"`config.inits`: {s!r} is a recipe for whole {RECIPES[s]} models; "
                             f"it needs config.model = {RECIPES[s]!r}, not {kind!r}.")
    check_inits({n: base_scheme(s) for n, s in inits
                 if base_scheme(s) is not None})  # unknown names fail
    if any(isinstance(v, dict) for _, v in inits):
        _check_rules_match(config, data, inits)
    _validate_optimizers(config)
    lrs = config_reals(config, "learning_rates", low=0.0, low_open=True)
    if len(set(lrs)) != len(lrs):
        raise ValueError(f"`config.learning_rates` must be distinct (each is a group of runs), "
                         f"got {tuple(config.learning_rates)!r}.")
    config_int(config, "steps")
    batch = config_int(config, "batch_size")
    if batch > len(data.x_train):
        raise ValueError(f"`config.batch_size` must be at most the training set's size "
                         f"{len(data.x_train)} ({config.data!r}), got {batch}.")
    config_int(config, "eval_every")  # the last evaluation is at the last step in any case
    config_int(config, "seeds")
    config_int(config, "seed", minimum=0)
    if config.get("eval_examples", None) is not None:
        config_int(config, "eval_examples")
    config_real(config, "target_loss", low=0.0)
    names = {n for n, _ in inits}
    nets = [n.name for n in networks(config)]
    trained = {(net.name, n) for net in networks(config) for n in (net.inits or names)}
    for claim in config.claims:
        config_claim(claim, CLAIMS)
        for v in claim[2:]:
            if isinstance(v, str) and v not in names and v not in nets:
                raise ValueError(f"`config.claims`: {v!r} in {claim!r} is neither an init of "
                                 f"`config.inits` ({sorted(names)}) nor a network ({nets}).")
        if claim[0] == "loss_ratio":
            pairs = {(claim[3], claim[2]), (claim[5], claim[4])}
            low, high = claim[6], claim[7]
            if not (isinstance(low, int | float) and isinstance(high, int | float)
                    and 0 < low <= high):
                raise ValueError(f"`config.claims`: {claim!r} needs 0 < low <= high (high may "
                                 "be math.inf).")
        else:
            pairs = {(n, i) for n in claim[2:] if n in nets for i in claim[2:] if i in names}
        if pairs - trained:
            raise ValueError(f"`config.claims`: {claim!r} needs {sorted(pairs - trained)} "
                             "(network, init), which the config does not train.")
        if claim[0] in ("stalls", "accuracy_below") and data.task != "classification":
            raise ValueError(f"`config.claims`: a {claim[0]!r} claim needs classification data "
                             f"(chance level, accuracy); {config.data!r} is a regression task.")
        if claim[0] == "lower_final_loss" and not any(
                math.isclose(claim[5], lr) for lr in config.learning_rates):
            raise ValueError(f"`config.claims`: {claim!r} names learning rate {claim[5]!r}, not "
                             f"one of `config.learning_rates` {tuple(config.learning_rates)}.")
        if claim[0] == "saturates" and not config.signal:
            raise ValueError("`config.claims`: a 'saturates' claim needs `config.signal = True`.")


# ------------------------------------------------------------------------------------------------
# the run


def _dataset(config: Any) -> Any:
    from jwinit.data import load

    options = config.get("data_options", None)
    if options is not None and hasattr(options, "to_dict"):
        options = options.to_dict()
    return load(config.data, **dict(options or {}))


def _init_values(model: Any, net: Network, inits: list[tuple[str, Any]], specs: dict[str, Any],
                 config: Any, data: Any) -> dict[str, Any]:
    """`jwinit.train`'s `inits` for one network: a depth-dependent recipe, LSUV or pre-training as
    a variables function, anything else as the config gives it."""
    out = {}
    for name, v in inits:
        if not isinstance(v, str):
            out[name] = v
        elif v in RECIPES:
            out[name] = recipe_variables(model, net, v, config)
        elif v.startswith(LSUV):
            out[name] = lsuv_variables(model, net, specs[name])
        elif v.startswith(PRETRAIN):
            out[name] = pretrain_variables(model, net, specs[name], config, data)
        elif v.startswith(GRADINIT):
            out[name] = gradinit_variables(model, net, specs[name], config, data)
        else:
            out[name] = v
    return out


def _known_at_init(net: Network, spec: Any, value: Any, variables: Any, rms: Any,
                   config: Any) -> dict[str, Any]:
    """The output RMS at init (seed 0's `variables`, as `train` started from them) and, for an
    MLP whose init is per-tensor, the probe and theory."""
    import jwinit
    from jwinit.train import ZERO

    info: dict[str, Any] = {"probe_regime": "-", "xi_c": math.nan}
    kernel = None if spec is None else spec.rule_for("Dense_1/kernel")
    if (net.kind == "mlp" and isinstance(value, str) and kernel is not None
            and isinstance(config.width, int)):
        bias = spec.rule_for("Dense_1/bias")
        kernel = jwinit.zeros() if kernel is ZERO else kernel
        bias = None if bias is ZERO or bias is None else bias
        info = probe_at_init(kernel, bias, net.activation, net.depth, int(config.width))
    info["output_rms"] = float(rms(variables))
    return info


def _network_text(config: Any, nets: list[Network]) -> str:
    acts = ", ".join(dict.fromkeys(config.activations))
    kind = model_kind(config)
    if kind == "mlp":
        units = (f"{config.width} units" if isinstance(config.width, int) else
                 f"{' - '.join(map(str, config.width))} units")
        return (f"MLP: {config.depth} hidden layers of {units} ({acts}), zero "
                "biases unless the init sets them")
    if kind == "residual":
        return (f"residual MLP (`jwinit.models.ResidualMLP`: a stem, pre-activation blocks "
                f"x + F(x) of {config.branch_layers} Dense layers of {config.width} units, a "
                f"head; {acts}): networks {[n.name for n in nets]}")
    if kind == "rnn":
        return (f"simple RNN (`jwinit.models.RNN`: h_t = phi(x_t W_in + b + h_(t-1) W_rec), "
                f"{config.width} hidden units, read out at the last step; {acts}): networks "
                f"{[n.name for n in nets]}")
    return (f"Transformer encoder (`jwinit.models.Transformer`: width {config.width}, "
            f"{config.heads} heads, MLP {config.mlp_dim}, {acts}; mean over tokens, then a "
            f"head): networks {[n.name for n in nets]} (warmup: linear learning-rate warmup "
            "over that many steps)")


def _describe_optimizer(fields: Mapping[str, Any]) -> str:
    text = str(fields["optimizer"])
    if fields["optimizer"] == "momentum":
        mu = f"{float(fields['momentum']):g}"
        if fields["momentum_schedule"] == "sutskever2013":
            mu = (f"rising to {mu} by Sutskever et al. 2013's schedule, one step of it every "
                  f"{fields['momentum_period']} updates")
        text = ("Nesterov momentum" if fields["nesterov"] else "momentum") + f" ({mu})"
    if fields["clip_norm"] is not None:
        text += f" after clipping the gradient to global norm {float(fields['clip_norm']):g}"
    return text


def _optimizer_text(config: Any) -> str:
    variants = config.get("optimizers", None)
    if variants is None:
        return "optimizer " + _describe_optimizer(_optimizer_fields(config))
    return "optimizers " + "; ".join(
        f"{name!r}: {_describe_optimizer(_optimizer_fields(config, fields))}"
        for name, fields in optimizer_variants(config))


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import jwinit
    from jwinit.train import check_inits

    workdir = pathlib.Path(workdir)
    data = _dataset(config)
    inits = _inits(config)
    specs = {s.name: s for s in check_inits({n: base_scheme(v) for n, v in inits
                                             if base_scheme(v) is not None})}
    nets = networks(config)
    variants = dict(optimizer_variants(config))
    steps = int(config.steps)
    x_init = jnp.asarray(data.x_train[:256])
    results: dict[str, Any] = {}
    at_init: dict[tuple[str, str], dict[str, Any]] = {}
    with progress_bar("training", unit="steps") as update:
        for k, net in enumerate(nets):
            model = net.build(config, data)
            mine = [(n, v) for n, v in inits if net.inits is None or n in net.inits]
            values = _init_values(model, net, mine, specs, config, data)

            def progress(done, total, k=k):
                update(k * steps + done, len(nets) * steps)

            results[net.name] = jwinit.train.train(
                model, data, inits=values,
                optimizer=optimizer_of(config, net.warmup, variants[net.optimizer]),
                learning_rates=list(config.learning_rates), steps=steps,
                seeds=int(config.seeds), batch_size=int(config.batch_size),
                eval_every=int(config.eval_every), key=int(config.seed),
                eval_examples=int(config.get("eval_examples", 4096)),
                signal=bool(config.signal), train_kwargs=net.train_kwargs,
                eval_kwargs=net.eval_kwargs,
                checkpoint=workdir / "checkpoints" / f"{net.file_name}.npz", progress=progress,
                writers=writers_for(net.name))
            # seed 0's start of every init, as train began from it (one program; a variables
            # function's result is reused, not computed again)
            start = jwinit.train.initial_variables(
                model, data, inits=values, seeds=1, key=int(config.seed),
                batch_size=int(config.batch_size), train_kwargs=net.train_kwargs)
            rms = output_rms(model, x_init, net)
            for name, value in values.items():
                params, rest = jax.tree.map(lambda a: a[0], start[name])
                at_init[(net.name, name)] = _known_at_init(
                    net, specs.get(name), value, {"params": params, **rest}, rms, config)

    by_name = {net.name: net for net in nets}
    rows = []
    for name, r in results.items():
        rows += [{"network": name, "activation": by_name[name].activation, **row}
                 for row in r.rows()]
    write_text(workdir / "results.jsonl", "".join(dumps(row) + "\n" for row in rows))
    summary = summarize(results, at_init, float(config.target_loss))
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    checks = [check_claim(c, results, summary, config, data) for c in config.claims]
    write_json(workdir / "checks.json", checks)
    figures = plots(results, summary, config, data, workdir / "plots")
    seconds = {name: (round(r.compile_seconds, 1), round(r.seconds, 1))
               for name, r in results.items()}
    trained = (f"train loss <= {config.target_loss:g}" if data.task == "classification" else
               f"train mean squared error <= {config.target_loss:g}")
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=(f"{data.summary()} ({config.data}). {_network_text(config, nets)}; "
               + _optimizer_text(config)
               + f", learning rates {list(config.learning_rates)}, batch {config.batch_size}, "
               f"{steps} steps, {config.seeds} seeds, evaluated every {config.eval_every} steps. "
               f"Trained = {trained}. Each network's runs are one "
               f"compiled program (compile / total seconds: {seconds}). At init: the root mean "
               "square of the network's output (seed 0, 256 training examples, in training "
               "mode) and, for MLPs, the probe's regime (`jwinit.probe_mlp`, 4 seeds, batch "
               "256) and the mean-field depth scale xi_c of (sigma_w2, sigma_b2)."),
        not_covered=config.not_covered, checks=checks,
        tables=[("Runs by init and learning rate (medians over seeds)", summary, columns)],
        plots=figures)
    return {"runs": sum(len(r.runs) for r in results.values()), "reproduced": reproduced,
            "report": str(workdir / "report.md")}
