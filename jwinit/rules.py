"""THE rule engine: initialize a whole model by rules on its parameter paths.

:func:`init_params` applies *rules*, a mapping from a regular expression to an initializer, to the
parameters of a linen model, an nnx model (or its constructor) or an Equinox module. Each
parameter's path is its keys joined by ``'/'`` (``'Dense_3/kernel'``,
``'block_0/attn/query/kernel'``, for nnx ``'layers/0/kernel'``, for Equinox
``'layers/0/weight'``); a rule applies where ``re.search(pattern, path)`` matches, and the first
matching rule in the mapping's order wins. Parameters no rule matches keep the model's own
initialization (or, with `variables`, their given values, bit for bit).

**The key-by-path contract.** A matched parameter is ``init(fold_in(key, crc32(path)), shape,
dtype)``, computed under ``jax.jit``: its value depends on the key, its path and its shape only,
not on the other rules, the mesh, the number of devices or processes. `jwinit.train` builds every
run's parameters with this same engine.

**At scale.** Everything runs as one compiled program on abstract values: the model's default
initialization of matched parameters is traced and dropped by XLA, never run. With a `mesh`, each
parameter is created directly with the sharding its annotation names (linen
``nn.with_partitioning`` / ``nn.with_logical_partitioning``, nnx ``out_sharding`` metadata;
logical names map to mesh axes through `axis_rules`); unannotated parameters are replicated. Large
parameters of elementwise initializers (normal, uniform, truncated normal, the variance-scaling
family and what is derived from them) are sampled shard by shard in row blocks (`jwinit._blocked`):
no device ever holds a full parameter or a full buffer of random bits, and per-device temporaries
are a small fraction of the shard; the values are bit-identical to the unsharded call.

**Equinox** (``pip install 'jwinit[equinox]'``): ``eqx.nn.Linear`` weights are ``(out, in)`` and
``eqx.nn.Conv`` weights ``(out, in, *window)``; they are sampled in jwinit's layout ``(in, out)`` /
``(*window, in, out)`` and transposed, so every fan-based initializer applies its fans to the
layer as it does in Flax (``he_normal()`` on ``Linear(64, 256)`` has variance 2/64).
"""

from __future__ import annotations

import collections
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, traverse_util
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jwinit._blocked import available as blocked_available
from jwinit._blocked import sample as blocked_sample
from jwinit._blocked import sample_group as blocked_sample_group
from jwinit._checks import check_callable_init, typed_key

__all__ = ["init_params", "param_paths", "compile_rules", "apply_rules", "path_key", "path_name",
           "RoleRules", "MatchedParam", "matched_params"]

Rule = tuple[str, re.Pattern[str], Callable[..., Any]]


class RoleRules(dict):
    """Rules (``{pattern: initializer}``, a dict) that also know the role each pattern stands
    for, as a recipe builds them (`jwinit.gpt2_rules`, ...): when a role's pattern matches no
    parameter of a model, the error names the recipe, the role and the model's paths.

    Attributes:
      recipe: the recipe's name (e.g. 'gpt2_rules').
      roles: ``{pattern: role}``.
    """

    #: the order `describe` lists roles in (others after, in their order)
    ROLE_ORDER = ("embedding", "query", "key", "value", "attention_output", "mlp_gate", "mlp_up",
                  "mlp_input", "mlp_output", "kernel", "head", "bias", "norm")

    def __init__(self, rules: Mapping[str, Any], *, recipe: str, roles: Mapping[str, str],
                 formulas: Mapping[str, str] | None = None, source: str = ""):
        super().__init__(rules)
        self.recipe = recipe
        self.roles = dict(roles)
        self.formulas = dict(formulas or {})
        self.source = source

    def describe(self) -> str:
        """The recipe, its source, and each role's formula, one line per role."""
        order = {r: i for i, r in enumerate(self.ROLE_ORDER)}
        roles = sorted(self.formulas, key=lambda r: (order.get(r, len(order)), r))
        lines = [f"{self.recipe}: {self.source}" if self.source else self.recipe]
        lines += [f"  {role:<18} {self.formulas[role]}" for role in roles]
        return "\n".join(lines)


class _RoleRule(tuple):
    """A compiled rule (pattern, regex, init) with the recipe and role it came from."""

    recipe: str
    role: str

#: marker for a rule that sets the parameter to zeros (`jwinit.train`'s bias default)
ZERO = "zeros"


# ------------------------------------------------------------------------------------------------
# rules and keys


def compile_rules(rules: Any, argument: str = "rules") -> list[Rule]:
    """`rules` checked and compiled: ``[(pattern, compiled, initializer), ...]`` in order."""
    items = list(rules.items()) if isinstance(rules, Mapping) else rules
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise TypeError(f"`{argument}` must be a non-empty mapping {{regular expression: "
                        f"initializer}} (or a sequence of such pairs), got {rules!r}.")
    out = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"`{argument}` entries must be (pattern string, initializer), got "
                            f"{item!r}.")
        pattern, init = item
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            raise ValueError(f"`{argument}`: {pattern!r} is not a regular expression ({e}); "
                             "rules are searched in the '/'-joined parameter path, e.g. "
                             "r'kernel$' or r'^Dense_0/'.") from None
        init = check_callable_init(init, argument, name=pattern)
        rule: Any = (pattern, compiled, init)
        if isinstance(rules, RoleRules) and pattern in rules.roles:
            rule = _RoleRule(rule)
            rule.recipe, rule.role = rules.recipe, rules.roles[pattern]
        out.append(rule)
    return out


def _matches(rules: list[Rule], paths: Sequence[str], argument: str = "rules"
             ) -> dict[str, tuple[str, Any]]:
    """path -> (pattern, init) of the first rule matching it; every rule must match something."""
    chosen: dict[str, tuple[str, Any]] = {}
    used = set()
    for path in paths:
        for pattern, compiled, init in rules:
            if compiled.search(path):
                chosen[path] = (pattern, init)
                used.add(pattern)
                break
    for rule in rules:
        pattern, compiled, _ = rule
        if pattern not in used and not any(compiled.search(p) for p in paths):
            if isinstance(rule, _RoleRule):
                raise ValueError(
                    f"`{argument}`: {rule.recipe} cannot find the role {rule.role!r} in this "
                    f"model: its pattern {pattern!r} matches none of the model's parameters "
                    f"{_shown(paths)}; give the recipe `paths={{{rule.role!r}: <regular "
                    "expression>}` to say where the role lives in your model.")
            raise ValueError(f"`{argument}`: the pattern {pattern!r} matches no parameter of the "
                             f"model; its parameters are {sorted(paths)}.")
    return chosen


def _shown(paths: Sequence[str], most: int = 24) -> str:
    paths = sorted(paths)
    if len(paths) <= most:
        return str(paths)
    return f"{paths[:most]} (and {len(paths) - most} more)"


def path_key(key: jax.Array, path: str) -> jax.Array:
    """The key of the parameter at `path`: ``fold_in(key, crc32(path))``."""
    return jax.random.fold_in(key, zlib.crc32(path.encode()))


def path_keys(key: jax.Array, paths: Sequence[str]) -> jax.Array:
    """``[path_key(key, p) for p in paths]`` as one batched key array, computed in one vectorized
    hash (the same keys: 128 separate fold_ins took 6 s of XLA:CPU compile, one 0.05 s)."""
    crcs = jnp.asarray([zlib.crc32(p.encode()) for p in paths], jnp.uint32)
    return jax.vmap(lambda c: jax.random.fold_in(key, c))(crcs)


def _sample(init: Any, key: jax.Array, path: str, shape: tuple[int, ...], dtype: Any,
            sharding: NamedSharding | None = None, layout: Callable | None = None, *,
            blocked: bool = True) -> jax.Array:
    """The value of one matched parameter (traceable): blocked where the initializer allows it
    (and `blocked`)."""
    dtype = np.dtype(dtype)
    if init is ZERO:
        value = jnp.zeros(shape, dtype)
        return value if sharding is None else jax.lax.with_sharding_constraint(value, sharding)
    k = path_key(key, path)
    draw_shape = shape if layout is None else layout(shape, None)
    if blocked and layout is None and blocked_available(init, k, shape, dtype):
        return blocked_sample(init, k, shape, dtype, sharding)
    value = _checked(init(k, draw_shape, dtype), path, tuple(draw_shape), dtype)
    if layout is not None:
        value = layout(shape, value)
    return value if sharding is None else jax.lax.with_sharding_constraint(value, sharding)


def _checked(value: jax.Array, path: str, shape: tuple[int, ...], dtype: np.dtype
             ) -> jax.Array:
    """An initializer's draw for `path` checked against the parameter's shape and dtype, and
    cast to its dtype."""
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"`rules`: the initializer for {path!r} returned shape "
                         f"{tuple(value.shape)}, the parameter has shape {tuple(shape)}.")
    got = np.dtype(value.dtype)
    if not jnp.issubdtype(got, jnp.inexact) or (
            jnp.issubdtype(got, jnp.complexfloating) and not jnp.issubdtype(
                dtype, jnp.complexfloating)):
        raise TypeError(f"`rules`: the initializer for {path!r} returned {got.name} values for "
                        f"a {dtype.name} parameter; an initializer must return floating values "
                        "(complex only for complex parameters).")
    return value.astype(dtype)


def _sample_many(init: Any, key: jax.Array, paths: list[str], shape: tuple[int, ...],
                 dtype: Any) -> list[jax.Array]:
    """``[_sample(init, key, p, shape, dtype) for p in paths]`` as one draw vmapped over the
    paths' keys: the same values (an initializer is a function of its key), one random-number
    computation in the program instead of one per parameter (a 60-layer MLP's 122 small
    parameters under 11 inits took 34 s of XLA:CPU compile, drawn one by one)."""
    dtype = np.dtype(dtype)
    values = jax.vmap(lambda k: init(k, shape, dtype))(path_keys(key, paths))
    if tuple(values.shape[1:]) != tuple(shape):  # checked as one leaf's draw
        _checked(values[0], paths[0], shape, dtype)
    values = _checked(values, paths[0], values.shape, dtype)
    return [values[i] for i in range(len(paths))]


def _sample_all(items: list[tuple[str, Any, tuple[int, ...], Any, Any, Callable | None]],
                key: jax.Array, *, blocked: bool = True) -> dict[str, jax.Array]:
    """{path: value} for (path, init, shape, dtype, sharding, layout) items. Parameters that the
    same elementwise initializer draws with the same shape, dtype and sharding (every layer's
    MLP kernel, say) are drawn in one blocked loop: the same values, a fraction of the program
    to compile; so are the smaller ones that one initializer draws with the same shape and
    dtype, in one draw vmapped over their keys (`blocked=False`: each whole, the same values
    again; for op-by-op sampling, where a blocked loop is many small dispatches)."""
    out: dict[str, jax.Array] = {}
    groups: dict[tuple[Any, ...], list[str]] = {}
    small: dict[tuple[Any, ...], list[str]] = {}
    for path, init, shape, dtype, sharding, layout in items:
        if (blocked and init is not ZERO and layout is None
                and blocked_available(init, key, shape, dtype)):
            groups.setdefault((id(init), init, shape, np.dtype(dtype), sharding), []).append(path)
            continue
        if blocked and init is not ZERO and layout is None and sharding is None:
            small.setdefault((id(init), init, shape, np.dtype(dtype)), []).append(path)
            continue
        out[path] = _sample(init, key, path, shape, dtype, sharding, layout, blocked=blocked)
    for (_, init, shape, dtype, sharding), paths in groups.items():
        values = blocked_sample_group(init, path_keys(key, paths), shape, dtype, sharding)
        out.update(zip(paths, values, strict=True))
    for (_, init, shape, dtype), paths in small.items():
        if len(paths) == 1:
            out[paths[0]] = _sample(init, key, paths[0], shape, dtype, blocked=blocked)
        else:
            out.update(zip(paths, _sample_many(init, key, paths, shape, dtype), strict=True))
    return out


def apply_rules(rules: Any, params: Any, key: jax.Array, *, check: bool = True,
                blocked: bool = True) -> Any:
    """`params` (a pytree) with every parameter a rule covers re-sampled by the key-by-path
    contract; traceable (vmap it over keys for several seeds). Paths as `param_paths` gives them.
    `blocked=False` draws every parameter whole (the same values; see `_blocked`), which is
    faster op by op, outside ``jit``.
    """
    compiled = rules if _is_compiled(rules) else compile_rules(rules)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    paths = [path_name(p) for p, _ in leaves]
    chosen = _matches(compiled, paths) if check else _first_matches(compiled, paths)
    new = _sample_all([(path, chosen[path][1], tuple(leaf.shape), leaf.dtype, None, None)
                       for path, (_, leaf) in zip(paths, leaves, strict=True) if path in chosen],
                      key, blocked=blocked)
    out = [new.get(path, leaf) for path, (_, leaf) in zip(paths, leaves, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, out)


def _first_matches(rules: list[Rule], paths: Sequence[str]) -> dict[str, tuple[str, Any]]:
    out = {}
    for path in paths:
        for pattern, compiled, init in rules:
            if compiled.search(path):
                out[path] = (pattern, init)
                break
    return out


def _is_compiled(rules: Any) -> bool:
    return isinstance(rules, list) and bool(rules) and all(
        isinstance(r, tuple) and len(r) == 3 and isinstance(r[1], re.Pattern) for r in rules)


def path_name(keypath: tuple[Any, ...]) -> str:
    """'a/b/0/kernel' from a jax key path (nnx's '.value' and box internals left out)."""
    parts = []
    for k in keypath:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            if k.name not in ("value", "raw_value"):
                parts.append(k.name)
        else:  # FlattenedIndexKey and others
            parts.append(str(getattr(k, "key", k)))
    return "/".join(parts)


# ------------------------------------------------------------------------------------------------
# model kinds


def _is_box(v: Any) -> bool:
    return isinstance(v, nn.meta.AxisMetadata)


def _unbox(v: Any) -> Any:
    return v.unbox() if _is_box(v) else v


def _eqx():
    try:
        import equinox as eqx
    except ImportError:  # pragma: no cover - equinox is in [dev]
        return None
    return eqx


def _is_equinox(model: Any) -> bool:
    eqx = _eqx()
    return eqx is not None and isinstance(model, eqx.Module)


def _kind(model: Any) -> str:
    if isinstance(model, nn.Module):
        return "linen"
    if isinstance(model, nnx.Module):
        return "nnx"
    if _is_equinox(model):
        return "equinox"
    if callable(model) and not isinstance(model, type):
        return "nnx_constructor"
    raise TypeError(f"`model` must be a flax.linen.Module, a flax.nnx.Module, a constructor "
                    f"rngs -> nnx.Module, or an equinox.Module, got {type(model).__name__}.")


def _flat_params(model: Any, variables: Any) -> dict[str, Any]:
    kind = _kind(model)
    if kind == "nnx":
        flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
        return {"/".join(map(str, p)): v for p, v in flat}
    if kind == "equinox":
        return {path: leaf for path, leaf, _ in _equinox_leaves(model)}
    flat = traverse_util.flatten_dict(dict(variables["params"]))
    return {"/".join(map(str, p)): v for p, v in flat.items()}


def param_paths(model: Any, variables: Mapping[str, Any] | None = None) -> list[str]:
    """The '/'-joined parameter paths rules are matched against (linen: of `variables`), sorted.

    Works on linen (with `variables`, boxed or not), nnx modules and Equinox modules (its
    inexact array leaves).

    Examples:
      >>> model = jwinit.models.MLP(depth=1, width=4, output_dim=2)
      >>> jwinit.param_paths(model, model.init(jax.random.key(0), jnp.ones((1, 3))))
      ['Dense_0/bias', 'Dense_0/kernel', 'Dense_1/bias', 'Dense_1/kernel']
    """
    kind = _kind(model)
    if kind == "nnx_constructor":
        raise TypeError("`param_paths` needs a model instance; for an nnx constructor pass "
                        "`nnx.eval_shape(lambda: constructor(nnx.Rngs(0)))`.")
    if kind == "linen" and (not isinstance(variables, Mapping) or "params" not in variables):
        raise ValueError("a linen model needs `variables` with a 'params' collection, got "
                         f"{type(variables).__name__}.")
    return sorted(_flat_params(model, variables))


class MatchedParam(NamedTuple):
    """A parameter of a model and the rule that covers it (`matched_params`).

    Attributes:
      path: its '/'-joined path.
      value: its array (unboxed), in the model's layout.
      pattern, init: the first rule whose pattern is found in the path (None, None: no rule).
      rule_shape: the shape the rule draws, in jwinit's layout ((in, out) kernels); an Equinox
        Linear's (out, in) weight is drawn transposed.
      to_rule_layout: the value moved to jwinit's layout (the identity but for Equinox Linear and
        Conv weights).
    """

    path: str
    value: Any
    pattern: str | None
    init: Callable[..., Any] | None
    rule_shape: tuple[int, ...]
    to_rule_layout: Callable[[Any], Any]


def _identity(x: Any) -> Any:
    return x


def _equinox_to_rule_layout(layout: Callable[..., Any]) -> Callable[[Any], Any]:
    """The inverse of `layout` (which maps a value drawn in jwinit's layout to the layer's)."""
    if layout is _linear_layout:
        return lambda w: w.T
    return lambda w: jnp.transpose(w, (*range(2, w.ndim), 1, 0))


def matched_params(model: Any, variables: Mapping[str, Any] | None, rules: Any
                   ) -> list[MatchedParam]:
    """Every floating parameter of a model with the rule that covers it, in path order, as
    `init_params` matches them (every pattern must match a parameter).

    `model` is a linen module (with `variables`), an nnx or Equinox module (`variables` None), or
    None with `variables` a flat ``{path: array}`` mapping (a checkpoint's arrays).

    Examples:
      >>> model = jwinit.models.MLP(depth=1, width=4, output_dim=2)
      >>> v = model.init(jax.random.key(0), jnp.ones((1, 3)))
      >>> matched = jwinit.rules.matched_params(model, v, {'kernel$': jwinit.zeros()})
      >>> [(m.path, m.pattern) for m in matched]
      [('Dense_0/bias', None), ('Dense_0/kernel', 'kernel$'), ('Dense_1/bias', None), \
('Dense_1/kernel', 'kernel$')]
    """
    compiled = rules if _is_compiled(rules) else compile_rules(rules)
    layouts: dict[str, Any] = {}
    if model is None:
        if not isinstance(variables, Mapping) or not variables:
            raise TypeError("with `model` None, `variables` must be a flat {path: array} mapping "
                            f"(a checkpoint's arrays), got {type(variables).__name__}.")
        values = {str(p): v for p, v in variables.items()}
    else:
        kind = _kind(model)
        if kind == "nnx_constructor":
            raise TypeError("the parameters of a model are needed: pass the nnx module itself, "
                            "not its constructor.")
        if kind in ("nnx", "equinox") and variables is not None:
            raise ValueError(f"`variables` must be None for an {kind} model (its parameters are "
                             "inside it).")
        if kind == "linen" and (not isinstance(variables, Mapping) or "params" not in variables):
            raise ValueError("a linen model needs `variables`, the dict returned by "
                             f"`model.init(...)` with a 'params' collection; got "
                             f"{type(variables).__name__}.")
        values = {p: _unbox(v) for p, v in _flat_params(model, variables).items()}
        if kind == "nnx":
            values = {p: v.get_value() if isinstance(v, nnx.Variable) else v
                      for p, v in values.items()}
        if kind == "equinox":
            layouts = {p: layout for p, _, layout in _equinox_leaves(model) if layout is not None}
    values = {p: v for p, v in values.items()
              if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.inexact)}
    paths = sorted(values)
    chosen = _matches(compiled, paths)
    out = []
    for p in paths:
        shape = tuple(int(d) for d in np.shape(values[p]))
        layout = layouts.get(p)
        pattern, init = chosen.get(p, (None, None))
        out.append(MatchedParam(
            path=p, value=values[p], pattern=pattern, init=init,
            rule_shape=shape if layout is None else tuple(layout(shape, None)),
            to_rule_layout=_identity if layout is None else _equinox_to_rule_layout(layout)))
    return out


# ------------------------------------------------------------------------------------------------
# shardings


def _check_mesh(mesh: Any, axis_rules: Any) -> list[tuple[str, Any]] | None:
    if mesh is not None and not isinstance(mesh, Mesh):
        raise TypeError(f"`mesh` must be a jax.sharding.Mesh or None, got "
                        f"{type(mesh).__name__}.")
    if axis_rules is None:
        return None
    try:
        pairs = [(a, b) for a, b in axis_rules]
    except (TypeError, ValueError):
        raise TypeError(f"`axis_rules` must be a sequence of (logical name, mesh axis) pairs, as "
                        f"flax's logical axis rules, got {axis_rules!r}.") from None
    if mesh is None:
        raise ValueError("`axis_rules` needs a `mesh` to map the logical names onto.")
    for logical, axis in pairs:
        names = () if axis is None else (axis if isinstance(axis, tuple) else (axis,))
        for a in names:
            if a not in mesh.axis_names:
                raise ValueError(f"`axis_rules` maps {logical!r} to the mesh axis {a!r}, which "
                                 f"the mesh lacks; its axes are {tuple(mesh.axis_names)}.")
    return pairs


def _spec_for(path: str, shape: tuple[int, ...], names: Any, logical: bool,
              mesh: Mesh, axis_rules: list[tuple[str, Any]] | None) -> PartitionSpec:
    """The mesh PartitionSpec of a parameter annotated with `names`, validated."""
    names = tuple(names) if names is not None else ()
    if len(names) != len(shape):
        raise ValueError(f"the parameter {path!r} of shape {shape} is annotated with "
                         f"{len(names)} axis names {names}; it needs one per dimension.")
    entries: list[Any] = []
    used: set[str] = set()
    for name in names:
        if name is None:
            entries.append(None)
            continue
        if logical:
            # Flax's semantics: the first rule for the name whose mesh axes are still free
            options = [ax for lg, ax in (axis_rules or []) if lg == name]
            if not options:
                known = sorted({lg for lg, _ in (axis_rules or [])})
                raise ValueError(f"the logical axis name {name!r} of {path!r} has no rule in "
                                 f"`axis_rules` (rules for {known}); add ({name!r}, <mesh axis "
                                 "or None>).")
            rule = next((ax for ax in options if ax is None or not used & set(
                ax if isinstance(ax, tuple) else (ax,))), None)
            used.update(() if rule is None else (rule if isinstance(rule, tuple) else (rule,)))
            entries.append(rule)
        else:
            for a in (name if isinstance(name, tuple) else (name,)):
                if a not in mesh.axis_names:
                    raise ValueError(f"the parameter {path!r} is partitioned over the mesh axis "
                                     f"{a!r}, which the mesh lacks; its axes are "
                                     f"{tuple(mesh.axis_names)} (logical names need "
                                     "`axis_rules`).")
            entries.append(name)
    for d, e in enumerate(entries):
        size = 1 if e is None else int(np.prod([mesh.shape[a] for a in (
            e if isinstance(e, tuple) else (e,))]))
        if shape[d] % size:
            raise ValueError(f"the parameter {path!r} of shape {shape} cannot be sharded: its "
                             f"dimension {d} ({shape[d]}) is not divisible by the mesh axis "
                             f"{e!r} of size {size}.")
    return PartitionSpec(*entries)


def _box_sharding(path: str, box: Any, mesh: Mesh, axis_rules: Any) -> NamedSharding:
    value = _unbox(box)
    shape = tuple(value.shape)
    if isinstance(box, nn.LogicallyPartitioned):
        rules = axis_rules if axis_rules is not None else (
            list(box.rules) if box.rules else list(nn.get_logical_axis_rules()) or None)
        spec = _spec_for(path, shape, box.names, True, mesh, rules)
    elif isinstance(box, nn.Partitioned):
        spec = _spec_for(path, shape, box.names, False, mesh, axis_rules)
    else:
        spec = PartitionSpec()
    return NamedSharding(mesh, spec)


# ------------------------------------------------------------------------------------------------
# the entry point


def init_params(model: Any, key: Any, x: Any, rules: Any,
                variables: Mapping[str, Any] | None = None, *,
                init_kwargs: Mapping[str, Any] | None = None,
                mesh: Mesh | None = None, axis_rules: Any = None) -> Any:
    """Initialize a whole model's parameters by rules on their paths, abstractly and sharded.

    Args:
      model: a ``flax.linen.Module``; an ``nnx.Module`` (updated in place and returned); a
        constructor ``rngs -> nnx.Module`` (built abstractly, never run on concrete keys); or an
        ``equinox.Module`` (a new module is returned).
      key: PRNG key (typed or raw): ``model.init(key, x)`` / ``constructor(nnx.Rngs(key))`` give
        the unmatched parameters, and the matched ones follow the key-by-path contract.
      x: an input batch for ``model.init`` (linen; ignored otherwise, may be None); a
        ``jax.ShapeDtypeStruct`` (or a tree of them) stands for zeros of that shape.
      rules: ``{regular expression: initializer}`` (or a sequence of pairs); the first pattern
        found (``re.search``) in a parameter's '/'-joined path decides its initializer. A pattern
        that matches no parameter is an error.
      variables: linen only: existing variables (e.g. pretrained); then only matched parameters
        are replaced, every other leaf (and every other collection) is returned as given.
      init_kwargs: keyword arguments for ``model.init`` (e.g. ``{'train': False}``).
      mesh: a ``jax.sharding.Mesh``: every parameter is created with the sharding its annotation
        names, unannotated ones replicated (a model without annotations is allowed: all of it
        replicated). Without it, one device.
      axis_rules: Flax's ``(logical name, mesh axis)`` pairs for ``nn.with_logical_partitioning``
        (and nnx names when given); e.g. `jwinit.models.AXIS_RULES`.

    Returns:
      The variables dict (linen, with the same boxes and names as ``model.init``), the module
      (nnx, Equinox).

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
    compiled = compile_rules(rules)
    kind = _kind(model)
    pairs = _check_mesh(mesh, axis_rules)
    base = typed_key(key, "init_params")
    if base.shape != ():
        raise ValueError(f"`key` must be a single key, got shape {base.shape}.")
    if kind in ("nnx", "nnx_constructor", "equinox") and variables is not None:
        what = {"nnx": "an nnx model (its parameters are inside it)",
                "nnx_constructor": "an nnx constructor (it builds the parameters)",
                "equinox": "an Equinox module (its parameters are inside it)"}[kind]
        raise ValueError(f"`variables` must be None for {what}.")
    if kind == "linen":
        return _init_linen(model, base, x, compiled, variables, dict(init_kwargs or {}), mesh,
                           pairs)
    if kind == "equinox":
        return _init_equinox(model, base, compiled, mesh)
    return _init_nnx(model, base, compiled, mesh, pairs, constructor=kind == "nnx_constructor")


def _rngs(key: Any) -> dict[str, Any]:
    """``model.init``'s streams: 'params' (as ``model.init(key, x)``) and 'dropout' from the same
    key, so that a model in training mode (``init_kwargs={'train': True}``) can be initialized;
    `jwinit.train` starts its runs from the same."""
    return {"params": key, "dropout": key}


def _concrete(x: Any) -> Any:
    """`x` with every ShapeDtypeStruct leaf replaced by zeros (traceable)."""
    return jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype)
                        if isinstance(a, jax.ShapeDtypeStruct) else a, x)


#: Compiled whole-model init programs, reused when `init_params` is called again with the same
#: model, rules (the same initializer objects), input shapes, options and mesh: a loop over seeds
#: compiles once (a small MLP: about 3 s per call without it).
_PROGRAMS: collections.OrderedDict[Any, Any] = collections.OrderedDict()
_MAX_PROGRAMS = 32


def _program_key(*parts: Any) -> Any:
    """A hashable cache key from `parts`, or None when one of them cannot be hashed."""
    try:
        hash(parts)
    except TypeError:
        return None
    return parts


def _cached(key: Any, make: Callable[[], Any]) -> Any:
    if key is None:
        return make()
    try:
        found = _PROGRAMS.get(key)
    except Exception:  # noqa: BLE001 - an __eq__ that cannot compare (e.g. arrays in a field)
        return make()
    if found is None:
        found = make()
        _PROGRAMS[key] = found
        while len(_PROGRAMS) > _MAX_PROGRAMS:
            _PROGRAMS.popitem(last=False)
    else:
        _PROGRAMS.move_to_end(key)
    return found


def _init_linen(model, base, x, compiled, variables, kwargs, mesh, pairs):
    xs = jax.tree.map(lambda a: a if isinstance(a, jax.ShapeDtypeStruct) else jnp.asarray(a), x)
    static = all(jax.tree.leaves(jax.tree.map(lambda a: isinstance(a, jax.ShapeDtypeStruct), xs)))
    shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), xs)
    key = _program_key("linen", model, tuple((p, i) for p, _, i in compiled),
                       jax.tree.structure(shapes), tuple((a.shape, a.dtype) for a in
                                                         jax.tree.leaves(shapes)),
                       tuple(sorted(kwargs.items())), mesh, None if pairs is None else
                       tuple(map(tuple, pairs)), static, base.dtype)
    abstract, flat_abs, by_path, shardings, program, build = _cached(
        key, lambda: _linen_program(model, base, shapes, compiled, kwargs, mesh, pairs, static))
    if variables is not None:
        if not isinstance(variables, Mapping) or "params" not in variables:
            raise ValueError("`variables` must be a dict with a 'params' collection, got "
                             f"{type(variables).__name__}.")
        got = {"/".join(map(str, p)): tuple(np.shape(_unbox(v))) for p, v in
               traverse_util.flatten_dict(dict(variables["params"])).items()}
        want = {p: tuple(_unbox(flat_abs[k]).shape) for p, k in by_path.items()}
        if got != want:
            missing = sorted(set(want) ^ set(got)) or sorted(p for p in want if want[p] != got[p])
            raise ValueError(f"`variables` are not this model's: their parameters differ from "
                             f"`model.init`'s at {missing[:5]}.")
    given = None if variables is None else dict(variables)
    if shardings is not None and given is not None:
        replicated = NamedSharding(mesh, PartitionSpec())
        shardings = {c: shardings[c] if c in shardings else jax.tree.map(
            lambda _: replicated, given[c], is_leaf=_is_box) for c in given}
    if given is None:
        return program(base, None) if static else program(base, None, xs)
    if static:
        return jax.jit(lambda k, g: build(k, g), out_shardings=shardings)(base, given)
    return jax.jit(build, out_shardings=shardings)(base, given, xs)


def _linen_program(model, base, shapes, compiled, kwargs, mesh, pairs, static):
    """(abstract variables, flat abstract params, path -> key, shardings, the jitted build) for a
    linen model; the build's `given` is None (fresh variables) or existing variables."""
    try:
        abstract = jax.eval_shape(lambda k, xs: model.init(_rngs(k), _concrete(xs), **kwargs),
                                  base, shapes)
    except Exception as e:  # noqa: BLE001 - the model cannot be initialized on this batch
        raise ValueError(f"`model.init` failed on `x` of shape "
                         f"{jax.tree.map(lambda a: a.shape, shapes)}: "
                         f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
    if "params" not in abstract or not jax.tree.leaves(abstract["params"]):
        raise ValueError(f"`model` {type(model).__name__} has no parameters.")
    flat_abs = traverse_util.flatten_dict(dict(abstract["params"]))
    by_path = {"/".join(map(str, p)): p for p in flat_abs}
    chosen = _matches(compiled, list(by_path))
    shardings = None
    if mesh is not None:
        def shard(keypath, leaf):
            return _box_sharding(path_name(keypath), leaf, mesh, pairs)

        shardings = jax.tree_util.tree_map_with_path(shard, abstract, is_leaf=_is_box)
        flat_sh = traverse_util.flatten_dict(dict(shardings["params"]))
    else:
        flat_sh = {}

    def build(k, given, xs=None):
        xs = shapes if xs is None else xs
        v = model.init(_rngs(k), _concrete(xs), **kwargs) if given is None else given
        flat = traverse_util.flatten_dict(dict(v["params"]))
        items = []
        for path, (_, init) in chosen.items():
            p = by_path[path]
            value = _unbox(flat_abs[p])
            items.append((path, init, tuple(value.shape), value.dtype, flat_sh.get(p), None))
        for path, new in _sample_all(items, k).items():
            p = by_path[path]
            old = flat[p]
            flat[p] = old.replace_boxed(new) if _is_box(old) else new
        return {**v, "params": traverse_util.unflatten_dict(flat)}

    if static:
        jitted = jax.jit(lambda k, g: build(k, g), out_shardings=shardings)
    else:
        jitted = jax.jit(build, out_shardings=shardings)
    return abstract, flat_abs, by_path, shardings, jitted, build


def _nnx_names(var: Any) -> Any:
    meta = var.get_metadata() if hasattr(var, "get_metadata") else {}
    for name in ("out_sharding", "sharding_names", "sharding"):
        if meta.get(name) is not None:
            return meta[name]
    return None


def _init_nnx(model, base, compiled, mesh, pairs, *, constructor):
    if constructor:
        def make(k):
            with nnx.use_eager_sharding(False):
                m = model(nnx.Rngs(k))
            if not isinstance(m, nnx.Module):
                raise TypeError(f"`model` is called as a constructor rngs -> nnx.Module, but it "
                                f"returned {type(m).__name__}.")
            return m

        try:
            abstract = nnx.eval_shape(lambda: make(base))
        except TypeError:
            raise
        except Exception as e:  # noqa: BLE001 - the constructor failed
            raise ValueError(f"`model(nnx.Rngs(key))` failed: {type(e).__name__}: "
                             f"{str(e).splitlines()[0]}") from None
        graphdef, abs_state = nnx.split(abstract)
    else:
        graphdef, abs_state = nnx.split(model)
    flat = list(nnx.to_flat_state(abs_state))
    params = {"/".join(map(str, p)): v for p, v in flat if isinstance(v, nnx.Param)}
    if not params:
        raise ValueError(f"`model` {type(abstract if constructor else model).__name__} has no "
                         "parameters.")
    chosen = _matches(compiled, list(params))
    shardings = None
    if mesh is not None:
        logical = pairs is not None

        def shard(keypath, var):
            path = path_name(keypath)
            names = _nnx_names(var)
            value = var.get_value() if hasattr(var, "get_value") else var.value
            if names is None or not hasattr(value, "shape"):
                return NamedSharding(mesh, PartitionSpec())
            return NamedSharding(mesh, _spec_for(path, tuple(value.shape), names, logical, mesh,
                                                 pairs))

        shardings = jax.tree_util.tree_map_with_path(
            shard, abs_state, is_leaf=lambda v: isinstance(v, nnx.Variable))
    sh_by_path = {} if shardings is None else {
        path_name(p): s for p, s in jax.tree_util.tree_flatten_with_path(
            shardings, is_leaf=lambda v: isinstance(v, NamedSharding))[0]}

    def fill(state, k):
        variables = {"/".join(map(str, p)): var for p, var in nnx.to_flat_state(state)
                     if "/".join(map(str, p)) in chosen}
        items = []
        for path, var in variables.items():
            value = var.get_value() if hasattr(var, "get_value") else var.value
            items.append((path, chosen[path][1], tuple(value.shape), value.dtype,
                          sh_by_path.get(path), None))
        for path, new in _sample_all(items, k).items():
            variables[path].set_value(new)
        return state

    if constructor:
        def build(k):
            _, state = nnx.split(make(k))
            return fill(state, k)

        state = jax.jit(build, out_shardings=shardings)(base)
        return nnx.merge(graphdef, state)
    _, current = nnx.split(model)
    new_state = jax.jit(lambda s, k: fill(s, k), out_shardings=shardings)(current, base)
    nnx.update(model, new_state)
    return model


# ------------------------------------------------------------------------------------------------
# Equinox


def _equinox_leaves(model: Any) -> list[tuple[str, Any, Callable | None]]:
    """(path, leaf, layout) of every inexact array leaf; layout maps jwinit's weight layout to
    the layer's own for Linear and Conv weights."""
    eqx = _eqx()
    out = []
    leaves = jax.tree_util.tree_flatten_with_path(model)[0]
    for keypath, leaf in leaves:
        if not (eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)) or not \
                jnp.issubdtype(leaf.dtype, jnp.inexact):
            continue
        parent = model
        for k in keypath[:-1]:
            parent = _child(parent, k)
        name = getattr(keypath[-1], "name", None)
        layout = None
        if name == "weight" and isinstance(parent, eqx.nn.Linear) and leaf.ndim == 2:
            layout = _linear_layout
        elif name == "weight" and isinstance(parent, eqx.nn.Conv) and leaf.ndim >= 3:
            layout = _conv_layout
        out.append((path_name(keypath), leaf, layout))
    return out


def _child(obj: Any, k: Any) -> Any:
    if isinstance(k, jax.tree_util.GetAttrKey):
        return getattr(obj, k.name)
    if isinstance(k, jax.tree_util.SequenceKey):
        return obj[k.idx]
    if isinstance(k, jax.tree_util.DictKey):
        return obj[k.key]
    return obj


def _linear_layout(shape: tuple[int, ...], value: Any) -> Any:
    """(out, in) <-> jwinit's (in, out): the draw shape, or the drawn value transposed."""
    if value is None:
        return (shape[1], shape[0])
    return value.T


def _conv_layout(shape: tuple[int, ...], value: Any) -> Any:
    """(out, in, *window) <-> jwinit's (*window, in, out)."""
    n = len(shape) - 2
    if value is None:
        return (*shape[2:], shape[1], shape[0])
    return jnp.transpose(value, (n + 1, n, *range(n)))


def _init_equinox(model, base, compiled, mesh):
    leaves = _equinox_leaves(model)
    if not leaves:
        raise ValueError(f"`model` {type(model).__name__} has no floating array leaves.")
    chosen = _matches(compiled, [p for p, _, _ in leaves])
    replicated = None if mesh is None else NamedSharding(mesh, PartitionSpec())

    def build(k):
        new = _sample_all([(path, chosen[path][1], tuple(leaf.shape), leaf.dtype, replicated,
                            layout) for path, leaf, layout in leaves if path in chosen], k)
        return [new[path] for path, _, _ in leaves if path in chosen]

    values = iter(jax.jit(build)(base))
    new = {path: next(values) for path, _, _ in leaves if path in chosen}
    flat, treedef = jax.tree_util.tree_flatten_with_path(model)
    out = [new.get(path_name(p), leaf) if path_name(p) in new else leaf for p, leaf in flat]
    return jax.tree_util.tree_unflatten(treedef, out)
