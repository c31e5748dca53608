"""Initializing a whole Flax model by parameter role: rules on parameter paths.

:func:`init_params` applies *rules*, a mapping from a regular expression to an initializer, to the
parameters of a linen or nnx model. Each parameter's path is its keys joined by ``'/'`` inside the
parameters (``'Dense_3/kernel'``, ``'block_0/attn/query/kernel'``, for nnx ``'layers/0/kernel'``);
a rule applies where ``re.search(pattern, path)`` matches, and the first matching rule in the
mapping's order wins. Parameters no rule matches keep the model's own initialization (or, with
`variables`, their given values, bit for bit): re-initializing a pretrained model's head is one
rule.

Each matched parameter is sampled with ``init(key_p, shape, dtype)``, with the parameter's own
shape and dtype (so the initializer's fan convention applies to the layout of the layer: Dense
``(in, out)``, Conv ``(*window, in, out)``), and ``key_p = fold_in(key, crc32(path))``: a
parameter's draw depends on the key and its path only, not on the other rules.

:func:`fixup_rules` is the Fixup recipe (Zhang, Dauphin & Ma 2019) as whole-model rules;
:func:`mup_rules` and :func:`mup_optimizer` are muP (Yang et al. 2022): its initialization by role
as rules, and its per-role learning rates as an optax ``multi_transform``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax
from flax import nnx, traverse_util

from jwinit._checks import check_callable_init, check_int, typed_key

__all__ = ["init_params", "param_paths", "fixup_rules", "mup_rules", "mup_roles",
           "mup_optimizer", "transformer_rules", "t_fixup_rules", "deepnet_rules", "gpt2_rules"]


def _rules(rules: Any) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
    items = list(rules.items()) if isinstance(rules, Mapping) else rules
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise TypeError("`rules` must be a non-empty mapping {regular expression: initializer} "
                        f"(or a sequence of such pairs), got {rules!r}.")
    out = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"`rules` entries must be (pattern string, initializer), got "
                            f"{item!r}.")
        pattern, init = item
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            raise ValueError(f"`rules`: {pattern!r} is not a regular expression ({e}).") from None
        out.append((pattern, compiled, check_callable_init(init, "rules", name=pattern)))
    return out


def _flat_params(model: Any, variables: Any) -> dict[str, Any]:
    if isinstance(model, nnx.Module):
        flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
        return {"/".join(map(str, p)): v for p, v in flat}
    flat = traverse_util.flatten_dict(dict(variables["params"]))
    return {"/".join(map(str, p)): v for p, v in flat.items()}


def param_paths(model: Any, variables: Mapping[str, Any] | None = None) -> list[str]:
    """The '/'-joined parameter paths rules are matched against (linen: of `variables`), sorted.

    Examples:
      >>> model = jwinit.models.MLP(depth=1, width=4, output_dim=2)
      >>> jwinit.param_paths(model, model.init(jax.random.key(0), jnp.ones((1, 3))))
      ['Dense_0/bias', 'Dense_0/kernel', 'Dense_1/bias', 'Dense_1/kernel']
    """
    if isinstance(model, nn.Module):
        if not isinstance(variables, Mapping) or "params" not in variables:
            raise ValueError("a linen model needs `variables` with a 'params' collection, got "
                             f"{type(variables).__name__}.")
    elif not isinstance(model, nnx.Module):
        raise TypeError(f"`model` must be a flax.linen.Module or a flax.nnx.Module, got "
                        f"{type(model).__name__}.")
    return sorted(_flat_params(model, variables))


def _matches(rules, paths: list[str]) -> dict[str, tuple[str, Callable[..., Any]]]:
    """path -> (pattern, init) of the first rule matching it; every rule must match something."""
    chosen: dict[str, tuple[str, Callable[..., Any]]] = {}
    used = set()
    for path in paths:
        for pattern, compiled, init in rules:
            if compiled.search(path):
                chosen[path] = (pattern, init)
                used.add(pattern)
                break
    for pattern, _, _ in rules:
        if pattern not in used and not any(re.search(pattern, p) for p in paths):
            raise ValueError(f"`rules`: the pattern {pattern!r} matches no parameter of the "
                             f"model; its parameters are {paths}.")
    return chosen


def _sample(init: Callable[..., Any], key: jax.Array, path: str, like: Any) -> jax.Array:
    k = jax.random.fold_in(key, zlib.crc32(path.encode()))
    value = init(k, tuple(like.shape), like.dtype)
    if tuple(value.shape) != tuple(like.shape):
        raise ValueError(f"`rules`: the initializer for {path!r} returned shape {value.shape}, "
                         f"the parameter has shape {tuple(like.shape)}.")
    return value.astype(like.dtype)


def init_params(model: Any, key: Any, x: Any, rules: Any,
                variables: Mapping[str, Any] | None = None, *,
                init_kwargs: Mapping[str, Any] | None = None) -> Any:
    """Initialize a Flax model's parameters by rules on their paths.

    Args:
      model: a ``flax.linen.Module``, or a ``flax.nnx.Module`` (updated in place and returned).
      key: PRNG key (typed or raw) for ``model.init`` and the rules.
      x: an input batch for ``model.init`` (linen; ignored for nnx, whose parameters exist).
      rules: ``{regular expression: initializer}`` (or a sequence of pairs); the first pattern
        found (``re.search``) in a parameter's '/'-joined path decides its initializer. A pattern
        that matches no parameter is an error.
      variables: linen only: existing variables (e.g. pretrained); then only matched parameters
        are replaced, every other leaf (and every other collection) is returned as given. Without
        it, the unmatched parameters are exactly those of ``model.init(key, x)``.
      init_kwargs: keyword arguments for ``model.init`` (e.g. ``{'train': False}``).

    Returns:
      The variables dict (linen) or the model (nnx).

    Examples:
      >>> model = jwinit.models.MLP(depth=3, width=16, output_dim=4)
      >>> x = jnp.ones((2, 8))
      >>> rules = {r'Dense_3/kernel$': jwinit.zeros(), r'kernel$': jwinit.orthogonal()}
      >>> v = jwinit.init_params(model, jax.random.key(0), x, rules)
      >>> float(abs(v['params']['Dense_3']['kernel']).max())
      0.0
      >>> k = v['params']['Dense_1']['kernel']
      >>> bool(jnp.allclose(k.T @ k, jnp.eye(16), atol=1e-5))
      True
    """
    compiled = _rules(rules)
    if isinstance(model, nnx.Module):
        if variables is not None:
            raise ValueError("`variables` must be None for an nnx model (its parameters are "
                             "inside it).")
        base = typed_key(key, "init_params")
        state = nnx.state(model, nnx.Param)
        flat = {"/".join(map(str, p)): v for p, v in nnx.to_flat_state(state)}
        if not flat:
            raise ValueError(f"`model` {type(model).__name__} has no parameters.")
        chosen = _matches(compiled, list(flat))
        new = {path: _sample(init, base, path, flat[path][...])
               for path, (_, init) in chosen.items()}  # all sampled before any is written
        for path, value in new.items():
            flat[path][...] = value
        nnx.update(model, state)
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a flax.linen.Module or a flax.nnx.Module, got "
                        f"{type(model).__name__}.")
    base = typed_key(key, "init_params")
    kwargs = dict(init_kwargs or {})
    try:
        shapes = jax.eval_shape(lambda k: model.init(k, x, **kwargs), base)
    except Exception as e:  # noqa: BLE001 - the model cannot be initialized on this batch
        raise ValueError(f"`model.init` failed on `x` of shape {np.shape(x)}: "
                         f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
    if "params" not in shapes or not jax.tree.leaves(shapes["params"]):
        raise ValueError(f"`model` {type(model).__name__} has no parameters.")
    if variables is None:
        variables = model.init(base, x, **kwargs)
    else:
        if not isinstance(variables, Mapping) or "params" not in variables:
            raise ValueError("`variables` must be a dict with a 'params' collection, got "
                             f"{type(variables).__name__}.")
        want = {p: tuple(v.shape) for p, v in _flat_params(model, shapes).items()}
        got = {p: tuple(np.shape(v)) for p, v in _flat_params(model, variables).items()}
        if got != want:
            missing = sorted(set(want) ^ set(got)) or sorted(p for p in want if want[p] != got[p])
            raise ValueError(f"`variables` are not this model's: their parameters differ from "
                             f"`model.init`'s at {missing[:5]}.")
    flat = traverse_util.flatten_dict(dict(variables["params"]))
    by_path = {"/".join(map(str, p)): p for p in flat}
    chosen = _matches(compiled, list(by_path))
    new = dict(flat)
    for path, (_, init) in chosen.items():
        new[by_path[path]] = _sample(init, base, path, flat[by_path[path]])
    return {**variables, "params": traverse_util.unflatten_dict(new)}


def fixup_rules(num_blocks: int, layers_per_branch: int, *, block: str = r"block_\d+",
                branch_last: str | None = None, classifier: str = "head",
                base: Callable[..., Any] | None = None) -> dict[str, Callable[..., Any]]:
    """Fixup (Zhang, Dauphin & Ma 2019, Sec. 3) as rules for :func:`init_params`.

    For a residual network of L = `num_blocks` branches of m = `layers_per_branch` layers without
    normalization: the last layer of every branch and the classifier start at zero, the other
    branch layers are `base` (He normal by default) scaled by L^(-1/(2m-2)); biases zero. Other
    parameters (the stem) keep the model's own initialization. At init every residual branch adds
    zero, so the residual stream keeps the stem's variance at any depth.

    Args:
      num_blocks, layers_per_branch: L and m (m >= 2).
      block: regular expression of a block's name (``jwinit.models.ResidualMLP``: 'block_<i>').
      branch_last: regular expression of the last branch layer inside a block (default: the
        m-th Dense, ``f'Dense_{m-1}'``).
      classifier: regular expression of the classifier layer.
      base: the branch layers' initializer before scaling (default ``jwinit.he_normal()``).

    Examples:
      >>> model = jwinit.models.ResidualMLP(blocks=4, width=16, output_dim=3)
      >>> v = jwinit.init_params(model, jax.random.key(0), jnp.ones((2, 5)),
      ...                        jwinit.fixup_rules(4, 2))
      >>> float(abs(v['params']['block_3']['Dense_1']['kernel']).max())
      0.0
    """
    from jwinit.distributions import zeros
    from jwinit.recipes.residual import fixup

    big_l = check_int(num_blocks, "num_blocks", minimum=1)
    m = check_int(layers_per_branch, "layers_per_branch", minimum=2)
    for value, name in ((block, "block"), (classifier, "classifier")):
        if not isinstance(value, str):
            raise TypeError(f"`{name}` must be a regular expression string, got {value!r}.")
    last = f"Dense_{m - 1}" if branch_last is None else branch_last
    return {
        rf"(^|/){block}/{last}/kernel$": zeros(),
        rf"(^|/){classifier}/kernel$": zeros(),
        rf"(^|/){block}/.*kernel$": fixup(big_l, m, base=base),
        rf"(^|/)({block}|{classifier})/.*bias$": zeros(),
    }


def _check_pattern(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"`{name}` must be a regular expression string, got {value!r}.")
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"`{name}`: {value!r} is not a regular expression ({e}).") from None
    return value


def mup_rules(base_width: int, width: int, *, output: str, input: str = r"^Dense_0/",  # noqa: A002
              sigma: float = 1.0, zero_readout: bool = False) -> dict[str, Callable[..., Any]]:
    """muP initialization (Tensor Programs V, Table 3; see `jwinit.mup`) as rules for
    :func:`init_params`: the kernels under `output` get the readout's variance
    ``sigma^2 / fan_in * base_width / width``, those under `input` and every other kernel
    ``sigma^2 / fan_in``, biases zero.

    Args:
      base_width, width: the width the hyperparameters were tuned at, and the model's width.
      output: regular expression of the readout layer's path (e.g. ``r'^Dense_3/'``).
      input: regular expression of the input layer's path.
      sigma, zero_readout: as in `jwinit.mup`.

    Examples:
      >>> model = jwinit.models.MLP(depth=2, width=256, output_dim=10)
      >>> v = jwinit.init_params(model, jax.random.key(0), jnp.ones((2, 8)),
      ...                        jwinit.mup_rules(64, 256, output=r'^Dense_2/'))
      >>> round(float(jnp.var(v['params']['Dense_2']['kernel'])) * 256 * 4, 1)  # 1/fan_in^2 * 64
      1.0
    """
    from jwinit.recipes.width import mup

    _check_pattern(output, "output")
    _check_pattern(input, "input")
    inits = mup(base_width, width, sigma=sigma, zero_readout=zero_readout)
    return {rf"(?:{output}).*kernel$": inits["output"], rf"(?:{input}).*kernel$": inits["input"],
            r"kernel$": inits["hidden"], r"bias$": inits["bias"]}


def mup_roles(params: Any, *, output: str, input: str = r"^Dense_0/") -> Any:  # noqa: A002
    """The muP role of every parameter, as a tree of strings shaped like `params`: 'output' and
    'input' for the kernels under those patterns, 'hidden' for the other kernels, 'bias' for every
    other parameter (biases, normalization scales: vector-like, scaled like biases)."""
    _check_pattern(output, "output")
    _check_pattern(input, "input")

    def role(path, _):
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        if not name.endswith("kernel"):
            return "bias"
        if re.search(output, name):
            return "output"
        return "input" if re.search(input, name) else "hidden"

    return jax.tree_util.tree_map_with_path(role, params)


def mup_optimizer(optimizer: Callable[..., Any], learning_rate: float, base_width: int,
                  width: int, *, output: str, input: str = r"^Dense_0/",  # noqa: A002
                  kind: str = "adam") -> Any:
    """muP's per-role learning rates as one optax optimizer: ``optax.multi_transform`` of
    ``optimizer(learning_rate * scale)`` per role, with the scales of `jwinit.mup_lr_scales`
    (Tensor Programs V, Table 3; for Adam: hidden and output ``base_width / width``).

    Args:
      optimizer: an optax factory taking the learning rate (``optax.adam``, ``optax.sgd``, ...).
      learning_rate: the base learning rate, tuned at `base_width`.
      base_width, width: as in :func:`mup_rules`.
      output, input: regular expressions of the readout and input layers' paths.
      kind: 'adam' (Adam-like optimizers) or 'sgd': which column of the table applies.

    Examples:
      >>> tx = jwinit.mup_optimizer(optax.sgd, 0.1, 64, 256, output=r'^Dense_2/', kind='sgd')
      >>> params = {'Dense_0': {'kernel': jnp.ones((8, 4))},
      ...           'Dense_1': {'kernel': jnp.ones((4, 4))},
      ...           'Dense_2': {'kernel': jnp.ones((4, 2))}}
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> updates, _ = tx.update(grads, tx.init(params))
      >>> {k: round(-float(v['kernel'][0, 0]), 4) for k, v in updates.items()}  # 0.1 x (4, 1, 1/4)
      {'Dense_0': 0.4, 'Dense_1': 0.1, 'Dense_2': 0.025}
    """
    from jwinit._checks import check_real
    from jwinit.recipes.width import mup_lr_scales

    if not callable(optimizer):
        raise TypeError(f"`optimizer` must be an optax factory such as optax.adam, got "
                        f"{optimizer!r}.")
    lr = float(check_real(learning_rate, "learning_rate", low=0.0, low_open=True))
    scales = mup_lr_scales(base_width, width, kind)
    _check_pattern(output, "output")
    _check_pattern(input, "input")
    return optax.multi_transform(
        {role: optimizer(lr * scale) for role, scale in scales.items()},
        lambda params: mup_roles(params, output=output, input=input))


#: where each Transformer role lives in `jwinit.models.Transformer` (and any model that names its
#: layers the same way): regular expressions on parameter paths
TRANSFORMER_PATHS = {
    "query": r"(^|/)attn/query/kernel$",
    "key": r"(^|/)attn/key/kernel$",
    "value": r"(^|/)attn/value/kernel$",
    "attention_output": r"(^|/)attn/out/kernel$",
    "mlp": r"(^|/)mlp_(in|out)/kernel$",
    "embedding": r"(^|/)embed/embedding$",
    "bias": r"(^|/)(attn/\w+|mlp_(in|out))/bias$",
}


def transformer_rules(roles: Mapping[str, Callable[..., Any]],
                      paths: Mapping[str, str] | None = None) -> dict[str, Callable[..., Any]]:
    """Rules for :func:`init_params` from a dict of role initializers (`jwinit.t_fixup`,
    `jwinit.deepnet`, ...) and where each role lives (`paths`, default ``TRANSFORMER_PATHS``: the
    names of `jwinit.models.Transformer`). Roles the dict does not have are skipped; parameters
    no rule matches (positional table, LayerNorms, head) keep the model's initialization."""
    where = dict(TRANSFORMER_PATHS if paths is None else paths)
    unknown = sorted(set(roles) - set(where))
    if unknown:
        raise ValueError(f"`roles` {unknown} have no path in `paths` ({sorted(where)}).")
    return {_check_pattern(where[r], f"paths[{r!r}]"): init for r, init in roles.items()}


def t_fixup_rules(num_layers: int, embed_dim: int) -> dict[str, Callable[..., Any]]:
    """T-Fixup (Huang et al. 2020, Sec. 3.3) for an encoder without LayerNorm as rules: Xavier
    query/key, value/output/MLP scaled by 0.67 N^(-1/4), embeddings N(0, 1/d) scaled by
    (9N)^(-1/4), biases zero (see `jwinit.t_fixup`).

    Examples:
      >>> model = jwinit.models.Transformer(vocab_size=8, length=4, layers=2, dim=16, heads=2,
      ...                                   mlp_dim=32, output_dim=3, norm=None)
      >>> v = jwinit.init_params(model, jax.random.key(0), jnp.zeros((2, 4), jnp.int32),
      ...                        jwinit.t_fixup_rules(2, 16))
      >>> sorted(v['params']['block_0']['attn'])
      ['key', 'out', 'query', 'value']
    """
    from jwinit.recipes.transformer import t_fixup

    return transformer_rules(t_fixup(num_layers, embed_dim))


def deepnet_rules(num_layers: int) -> dict[str, Callable[..., Any]]:
    """DeepNet (Wang et al. 2022) for a Post-LN encoder of `num_layers` blocks as rules: Xavier
    normal query/key, value/output/MLP with gain beta = (8N)^(-1/4), biases zero. The model must
    also use DeepNorm's residual scale alpha = (2N)^(1/4) (``Transformer(norm='post',
    alpha=jwinit.deepnorm_constants(N)['encoder'].alpha)``)."""
    from jwinit.recipes.transformer import deepnet

    return transformer_rules(deepnet(num_layers, 0, stack="encoder"))


def gpt2_rules(num_layers: int, stddev: float = 0.02) -> dict[str, Callable[..., Any]]:
    """GPT-2 (Radford et al. 2019, Sec. 2.3) as rules: N(0, stddev^2) for every kernel and the
    embeddings, the residual projections (attention output, second MLP layer) scaled by
    1/sqrt(2 num_layers), biases zero."""
    from jwinit.distributions import normal, zeros
    from jwinit.recipes.transformer import gpt2_residual

    residual = gpt2_residual(num_layers, stddev)
    return {r"(^|/)attn/out/kernel$": residual, r"(^|/)mlp_out/kernel$": residual,
            r"kernel$": normal(stddev), r"(^|/)embed/embedding$": normal(stddev),
            TRANSFORMER_PATHS["bias"]: zeros()}
