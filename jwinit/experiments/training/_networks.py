"""The networks of a training config and how each init makes their variables."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable
from typing import Any

MODELS = ("mlp", "residual", "rnn", "transformer")
NORMS = (None, "batch", "layer")
NORM_NAMES = {"batch": "BatchNorm", "layer": "LayerNorm"}
#: Transformer normalizations: Pre-LN, Post-LN, DeepNorm (Post-LN with alpha = (2N)^(1/4)), none
LAYER_NORMS = (None, "pre", "post", "deepnorm")
LAYER_NORM_NAMES = {None: "no LayerNorm", "pre": "Pre-LN", "post": "Post-LN",
                    "deepnorm": "DeepNorm"}
#: the scheme grammar (prefixes, whole-model recipes) is `jwinit.schemes`


@dataclasses.dataclass(frozen=True)
class Network:
    """One network of a training config: its name, kind, activation and how to build it.

    `depth` is the MLP's hidden layers, the residual network's blocks or the Transformer's layers
    (0 for an RNN); `norm` the residual network's (None, 'batch', 'layer') or the Transformer's
    (`LAYER_NORMS`); `warmup` linear learning-rate warmup steps (0: none); `inits` the display
    names of the inits this network is trained from (None: every init of the config);
    `optimizer` the display name of its entry of `config.optimizers` (None: the config's own).
    """

    name: str
    activation: str
    depth: int
    kind: str = "mlp"
    norm: str | None = None
    warmup: int = 0
    inits: tuple[str, ...] | None = None
    optimizer: str | None = None

    def build(self, config: Any, data: Any) -> Any:
        import jwinit

        out = data.output_dim
        if self.kind == "mlp":
            width = config.width
            width = tuple(int(w) for w in width) if isinstance(width, tuple | list) else int(width)
            return jwinit.models.MLP(depth=self.depth, width=width, output_dim=out,
                                     activation=self.activation)
        if self.kind == "residual":
            return jwinit.models.ResidualMLP(
                blocks=self.depth, width=int(config.width), output_dim=out,
                branch_layers=int(config.branch_layers), activation=self.activation,
                norm=self.norm)
        if self.kind == "rnn":
            return jwinit.models.RNN(width=int(config.width), output_dim=out,
                                     activation=self.activation)
        alpha = 1.0
        if self.norm == "deepnorm":
            alpha = float(jwinit.deepnorm_constants(self.depth)["encoder"].alpha)
        return jwinit.models.Transformer(
            vocab_size=int(max(data.x_train.max(), data.x_test.max())) + 1,
            length=int(data.x_train.shape[1]), layers=self.depth, dim=int(config.width),
            heads=int(config.heads), mlp_dim=int(config.mlp_dim), output_dim=out,
            norm="post" if self.norm == "deepnorm" else self.norm, alpha=alpha,
            activation=self.activation)

    @property
    def file_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_")

    @property
    def train_kwargs(self) -> dict[str, Any]:
        return {"train": True} if self.norm == "batch" else {}

    @property
    def eval_kwargs(self) -> dict[str, Any]:
        return {"train": False} if self.norm == "batch" else {}


def model_kind(config: Any) -> str:
    return config.get("model", "mlp")


def networks(config: Any) -> list[Network]:
    """The config's networks in order (MLP and RNN: one per activation), each once per entry of
    `config.optimizers` when it has them (named like 'sigmoid, no momentum')."""
    variants = config.get("optimizers", None)
    if not variants:
        return _architectures(config)
    return [dataclasses.replace(net, name=f"{net.name}, {name}", optimizer=name)
            for net in _architectures(config) for name, _ in variants]


def _architectures(config: Any) -> list[Network]:
    kind = model_kind(config)
    acts = list(config.activations)
    if kind == "mlp":
        return [Network(a, a, int(config.depth)) for a in acts]
    if kind == "rnn":
        return [Network(f"{a} RNN", a, 0, kind) for a in acts]
    out = []
    if kind == "transformer":
        for a in acts:
            for layers, norm, warmup, *only in config.networks:
                name = (f"{layers} layers, {LAYER_NORM_NAMES[norm]}"
                        + (f", warmup {warmup}" if warmup else "")
                        + (f", {a}" if len(acts) > 1 else ""))
                out.append(Network(name, a, int(layers), kind, norm, int(warmup),
                                   tuple(only[0]) if only else None))
        return out
    for a in acts:
        for blocks in config.blocks:
            for norm in config.norms:
                name = f"{a}, {blocks} blocks" + (f", {NORM_NAMES[norm]}" if norm else "")
                out.append(Network(name, a, int(blocks), kind, norm))
    return out


def recipe_variables(model: Any, net: Network, recipe: str, config: Any) -> Callable[..., Any]:
    """A depth-dependent recipe (`RECIPES`) for `net` as a variables function for `jwinit.train`
    (one call per seed): Fixup for its blocks, T-Fixup or DeepNet for its layers."""
    import jwinit

    if recipe == "fixup":
        rules = jwinit.fixup_rules(net.depth, int(config.branch_layers))
    elif recipe == "t_fixup":
        rules = jwinit.t_fixup_rules(net.depth, int(config.width))
    else:
        rules = jwinit.deepnet_rules(net.depth)
    return jwinit.train.variables_fn(
        _once_per_key(lambda key, x: jwinit.init_params(model, key, x, rules)))


def probe_at_init(kernel: Any, bias: Any, activation: str, depth: int,
                  width: int) -> dict[str, Any]:
    """What is known before training: the probe's regime and the theory's depth scale."""
    import jwinit
    from jwinit import theory

    out: dict[str, Any] = {"probe_regime": "-", "xi_c": math.nan, "sigma_w2": math.nan}
    if depth < 2:
        return out
    r = jwinit.probe_mlp(0, kernel, activation, depth=depth, width=width, batch_size=256,
                         seeds=4, bias_init=bias, statistics="second_moments")
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


def output_rms(model: Any, x: Any, net: Network) -> Callable[[Any], Any]:
    """``variables -> RMS of the output at init`` on `x`, as the first training step sees it
    (batch statistics): one compiled program for every init of a network."""
    import jax
    import jax.numpy as jnp

    def rms(variables):
        mutable = [c for c in variables if c != "params"]
        out = model.apply(variables, x, mutable=mutable or False, **net.train_kwargs)
        out = out[0] if mutable else out
        return jnp.sqrt(jnp.mean(jnp.square(out.astype(jnp.float32))))

    return jax.jit(rms)


def _once_per_key(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(key, x)`` computed once per (key, x): the report's look at seed 0's start
    (`jwinit.train.initial_variables`) asks for what `train` already computed."""
    import hashlib

    import jax
    import numpy as np

    done: dict[tuple[Any, ...], Any] = {}

    def once(key, x):
        data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype,
                                                                 jax.dtypes.prng_key) else key
        xs = np.asarray(x)
        k = (np.asarray(data).tobytes(), xs.shape, hashlib.sha1(xs.tobytes()).hexdigest())
        if k not in done:
            done[k] = fn(key, x)
        return done[k]

    return once


@functools.cache
def _zeros() -> Any:
    """One zeros initializer for every ZERO entry, so that `init_params` reuses its compiled
    program across seeds and calls (it is keyed by the initializer objects)."""
    import jwinit

    return jwinit.zeros()


def spec_variables(model: Any, net: Network, spec: Any, key: Any, x: Any) -> dict[str, Any]:
    """The variables `jwinit.train` starts a rules entry from (`jwinit.init_params` with `spec`'s
    rules, for `key`): where LSUV, pre-training and GradInit start, and what a plain init trains
    from."""
    import jwinit
    from jwinit.train import ZERO

    rules = {p: _zeros() if init is ZERO else init for p, init in spec.rules}
    return jwinit.init_params(model, key, x, rules, init_kwargs=net.train_kwargs)


def lsuv_variables(model: Any, net: Network, spec: Any) -> Callable[..., Any]:
    """LSUV from `spec`'s initialization as a variables function for `jwinit.train`."""
    import jwinit

    def init(key, x):
        return jwinit.lsuv(model, x, spec_variables(model, net, spec, key, x),
                           apply_kwargs=net.train_kwargs)

    return jwinit.train.variables_fn(_once_per_key(init))


def pretrain_variables(model: Any, net: Network, spec: Any, config: Any,
                       data: Any) -> Callable[..., Any]:
    """Greedy layer-wise pre-training from `spec`'s initialization, as a variables function."""
    import jax.numpy as jnp

    import jwinit

    x_all = jnp.asarray(data.x_train)

    def init(key, x):
        return jwinit.greedy_pretrain(model, x_all, spec_variables(model, net, spec, key, x),
                                      activation=net.activation,
                                      steps=int(config.pretrain_steps),
                                      learning_rate=float(config.pretrain_learning_rate))

    return jwinit.train.variables_fn(_once_per_key(init))


def gradinit_variables(model: Any, net: Network, spec: Any, config: Any,
                       data: Any) -> Callable[..., Any]:
    """GradInit (`jwinit.gradinit`) from `spec`'s initialization, as a variables function: per
    seed, `gradinit_steps` iterations on batches of the training set."""
    import jax

    import jwinit

    optimizer = "adam" if config.optimizer == "adam" else "sgd"

    def init(key, x):
        return jwinit.gradinit(
            model, data.x_train, data.y_train, spec_variables(model, net, spec, key, x),
            learning_rate=float(config.gradinit_learning_rate),
            gamma=float(config.gradinit_gamma), optimizer=optimizer,
            steps=int(config.gradinit_steps), batch_size=int(config.batch_size),
            scale_lr=float(config.gradinit_scale_lr), key=jax.random.fold_in(key, 1),
            apply_kwargs=net.train_kwargs).variables

    return jwinit.train.variables_fn(_once_per_key(init))
