"""Train many initializations of one Flax model at once: one compiled program, optax, shipped data.

`train` trains every (init, learning rate, seed) combination of one linen or nnx model on a
dataset (`jwinit.data`) and returns a `TrainResult` with their loss and accuracy curves,
divergences, optional per-layer signal statistics during training, and final parameters.

How it runs:

* every combination is a *run*; runs are stacked along a leading axis and vmapped, so one
  architecture is ONE compiled program whatever the number of inits, learning rates and seeds
  (the learning rate is a per-run value in the optimizer state, via ``optax.inject_hyperparams``);
* steps run in a ``lax.scan`` in chunks of `eval_every` steps; between chunks every run is
  evaluated, progress is reported and the state is checkpointed (a killed call resumes from the
  last chunk with the same `checkpoint` path);
* runs are sharded over the local devices (``shard_map``; runs never communicate), and the results
  are the same on one device and on several (bit for bit for the same `runs_per_group`; the
  default layouts, below, agree to float32 rounding); on ONE CPU device, every run is a call of one
  compiled program from a host thread per core, at once (XLA:CPU computes a call on about one
  core: on 2 cores a 12-run grid trains in about 0.5-0.6x the time of 12 plain runs, for an MLP,
  a CNN, a ResNet, a Transformer and an RNN; `threads`);
* the evaluations run in batches of `eval_batch_size` examples (256 on CPU, where a pass over a
  whole set is several times slower per example);
* a run whose loss or update is not finite is marked diverged at that step and frozen:
  it never crashes the call or touches the other runs;
* runs with the same seed see the same mini-batches (sampled with replacement from the training
  set) and, for the same initializer family, the same random draws: differences between inits and
  learning rates are not seed noise.

Examples:
  >>> import functools, optax, flax.linen as nn
  >>> data = jwinit.data.digits()
  >>> model = jwinit.models.MLP(depth=3, width=64, output_dim=10, activation='relu')
  >>> r = jwinit.train.train(model, data, inits={'he': jwinit.he_normal(),
  ...                                            'tiny': jwinit.normal(1e-3)},
  ...                        optimizer=functools.partial(optax.sgd, momentum=0.9),
  ...                        learning_rates=[0.05], steps=200, seeds=2, eval_every=100)
  >>> r.runs
  [('he', 0.05, 0), ('he', 0.05, 1), ('tiny', 0.05, 0), ('tiny', 0.05, 1)]
  >>> [round(float(v), 2) for v in r.test_accuracy[:, -1]]  # He learns; N(0, 1e-6) is stuck
  [0.97, 0.98, 0.12, 0.09]
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jwinit._checks import check_bool, check_choice, check_int, typed_key
from jwinit._programs import jit_few_outputs
from jwinit.data import Dataset, as_dataset
from jwinit.results import DamagedFileError, atomic_path, read_npz
from jwinit.train._inits import (
    ZERO,
    InitSpec,
    VariablesFn,
    apply_rules,
    check_patterns,
    resolve_inits,
    variables_fn,
)
from jwinit.train._model import Functional, leaf_paths
from jwinit.train._program import METRICS, SIGNAL_FIELDS, Program, loss_function
from jwinit.train._progress import ProgressLine, progress_callback
from jwinit.train._result import TrainResult, steps_to
from jwinit.writers import check_writers, run_name, write_hparams

__all__ = ["train", "initial_variables", "TrainResult", "SIGNAL_FIELDS", "METRICS", "STEPPINGS",
           "BATCHINGS", "EVAL_BATCH_CPU", "ProgressLine", "steps_to",
           "check_optimizer", "run_keys", "check_inits", "resolve_inits", "InitSpec",
           "loss_function", "ZERO", "variables_fn", "VariablesFn"]


# ------------------------------------------------------------------------------------------------
# argument checks (all before any compute)


def check_optimizer(optimizer: Any) -> Callable[..., Any]:
    """`optimizer` as a factory taking the learning rate by keyword (what
    ``optax.inject_hyperparams`` needs), from an optax factory called with the learning rate as
    its first argument, as optax's own factories take it: ``optax.sgd``,
    ``functools.partial(optax.sgd, momentum=0.9)``, ``lambda lr: optax.sgd(lr, momentum=0.9)``,
    ``optax.adam``, ..."""
    if isinstance(optimizer, optax.GradientTransformation):
        raise TypeError("`optimizer` must be an optax factory taking the learning rate (e.g. "
                        "optax.sgd or functools.partial(optax.sgd, momentum=0.9)), not an "
                        "optimizer already built with one: the learning rates come from "
                        "`learning_rates`.")
    if not callable(optimizer):
        raise TypeError(f"`optimizer` must be an optax factory such as optax.sgd, got "
                        f"{optimizer!r}.")

    def factory(learning_rate: Any) -> Any:
        return optimizer(learning_rate)

    factory.jwinit_optimizer = optimizer  # type: ignore[attr-defined]  # named in fingerprints
    try:
        built = optimizer(0.1)
        optax.inject_hyperparams(factory)(learning_rate=0.1)
    except Exception as e:  # noqa: BLE001 - any failure means it is not such a factory
        raise TypeError(f"`optimizer` must be an optax factory taking the learning rate as its "
                        f"first argument (e.g. optax.sgd); calling optimizer(0.1) failed with "
                        f"{type(e).__name__}: {e}") from None
    if not isinstance(built, optax.GradientTransformation):
        raise TypeError(f"`optimizer(0.1)` must return an optax GradientTransformation, got "
                        f"{type(built).__name__}.")
    try:  # an update from the gradient alone, as the trainer makes it (shapes only)
        p = {"w": jnp.zeros((2,), jnp.float32)}
        with jax.numpy_dtype_promotion("standard"):
            jax.eval_shape(lambda p: built.update(p, built.init(p), p), p)
    except TypeError as e:
        if "missing" in str(e) and "argument" in str(e):
            raise TypeError(f"`optimizer` needs more than the gradient at every update ({e}): "
                            f"a line search such as optax.lbfgs needs the loss function, and "
                            f"the trainer gives an optimizer the gradient only; use a "
                            f"first-order optax factory (optax.sgd, optax.adam, ...).") from None
    return factory


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, numpy arrays as lists (what users pass: np.float32(0.1),
    np.array([0.01, 0.05]), np.int64(2))."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.reshape(-1)] if value.ndim else _plain(value[()])
    if isinstance(value, np.floating):
        return float(str(value))  # the number as written: np.float32(0.05) is 0.05, not 0.050..1
    if isinstance(value, np.generic):
        return value.item()
    return value


def _learning_rates(value: Any) -> list[float]:
    value = _plain(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = [_plain(v) for v in value]
    values = [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        raise TypeError(f"`learning_rates` must be a positive number or a non-empty sequence of "
                        f"them, got {value!r}.")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not (
                math.isfinite(v) and v > 0):
            raise ValueError(f"`learning_rates` must be finite and > 0, got {v!r} in {value!r}.")
        out.append(float(v))
    if len(set(out)) != len(out):
        raise ValueError(f"`learning_rates` has repeated values: {value!r}.")
    return out


def _seeds(value: Any) -> list[int]:
    value = _plain(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return list(range(check_int(value, "seeds", minimum=1)))
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise TypeError(f"`seeds` must be a number of seeds or a non-empty sequence of seed ints, "
                        f"got {value!r}.")
    seeds = [check_int(s, "seeds", minimum=0) for s in value]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` has repeated values: {value!r}.")
    return seeds


def _default_eval_every(steps: int) -> int:
    every = max(1, steps // 10)
    while steps % every:
        every -= 1
    return every


def _data(data: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple | list) and len(data) == 4:
        return as_dataset(*data, source="`data`")
    raise TypeError("`data` must be a jwinit.data.Dataset or a tuple (x_train, y_train, x_test, "
                    f"y_test), got {type(data).__name__}.")


def _check_output(fm: Functional, params: Any, rest: Any, data: Dataset, batch: int) -> Any:
    """The model's output must fit the task: (batch, classes) logits or regression targets.
    Returns the jaxpr of the evaluation forward pass (traced once, for `_has_convolution`)."""
    x = jnp.asarray(data.x_train[:batch])
    try:
        closed = jax.make_jaxpr(lambda p, r: fm.apply(p, r, x, train=False)[0])(params, rest)
    except Exception as e:  # noqa: BLE001 - the model cannot take this data
        raise ValueError(f"`data`: the model cannot be applied to inputs of shape "
                         f"{data.x_train.shape[1:]}: {type(e).__name__}: {e}") from None
    outs = closed.out_avals
    shape = tuple(outs[0].shape) if len(outs) == 1 else ()
    if data.task == "classification":
        want = (batch, data.num_classes)
        if len(shape) != 2 or shape[0] != batch or shape[1] < data.num_classes:
            raise ValueError(f"`data` has {data.num_classes} classes: the model's output must be "
                             f"logits of shape {want}, got {shape}.")
    else:
        target = (batch, *data.y_train.shape[1:])
        if shape != target and not (shape == (batch, 1) and target == (batch,)):
            raise ValueError(f"`data` is a regression with targets of shape {target}: the "
                             f"model's output must have that shape (or (batch, 1)), got {shape}.")
    return closed


# ------------------------------------------------------------------------------------------------
# parameters of every run


def _stack(trees: Sequence[Any]) -> Any:
    if len(trees) == 1:  # one init and one learning rate: the seeds' arrays as they are
        return trees[0]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *trees)


def _assembled(per_spec: list[tuple[Any, Any]], data_keys: jax.Array, lrs: np.ndarray,
               n_seeds: int, padded: int) -> tuple[Any, Any, jax.Array, jax.Array]:
    """Every run's (params, rest, learning rate, raw data key), init-major, then learning rate,
    then seed, padded to `padded` runs with copies of the last (op by op: copies, every op
    compiled once per shape)."""
    n_specs, n_lrs = len(per_spec), len(lrs)
    blocks = [tree for tree in per_spec for _ in range(n_lrs)]
    params, rest = _stack([b[0] for b in blocks]), _stack([b[1] for b in blocks])
    lr_arr = jnp.tile(jnp.repeat(jnp.asarray(lrs), n_seeds), n_specs)
    keys = jnp.concatenate([data_keys] * (n_specs * n_lrs))
    extra = padded - n_seeds * n_specs * n_lrs
    if extra:
        params, rest, lr_arr, keys = jax.tree.map(
            lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], extra, 0)]),
            (params, rest, lr_arr, keys))
    return params, rest, lr_arr, keys


def _variables_from(spec: InitSpec, fm: Functional, key: jax.Array, x: jax.Array,
                    params0: Any, rest0: Any) -> tuple[Any, Any]:
    """Run a data-dependent init for one seed; the result must have the model's structure."""
    from flax import nnx

    out = spec.variables(key, x)
    if fm.kind == "nnx":
        if isinstance(out, nnx.Module):
            _, params, rest = nnx.split(out, nnx.Param, ...)
        else:
            params, rest = out, rest0
    else:
        out = dict(out)
        params = out.pop("params", None)
        rest = {**rest0, **out} if params is not None else rest0
        params = out if params is None else params
    if jax.tree.structure(params) != jax.tree.structure(params0):
        raise ValueError(f"`inits[{spec.name!r}]` returned variables whose parameters "
                         f"{leaf_paths(params)} are not the model's {leaf_paths(params0)}.")
    return params, rest


def _ruled(specs: list[InitSpec], fm: Functional, seed_keys: jax.Array,
           variables: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """For each spec, (params, rest) stacked over seeds (traceable): the model's own
    initialization with each rules spec's rules applied by the engine of `jwinit.init_params`;
    a variables spec's are `variables` (in order), computed beforehand."""
    params0, rest0 = jax.vmap(fm.default_variables)(seed_keys)
    given = iter(variables)
    return [(jax.vmap(lambda p, k, spec=spec: apply_rules(spec, p, k))(params0, seed_keys), rest0)
            if spec.kind == "rules" else next(given) for spec in specs]


def _given_variables(specs: list[InitSpec], fm: Functional, seed_keys: jax.Array,
                     x_batch: jax.Array) -> list[tuple[Any, Any]]:
    """The variables of each ``fn(key, x_batch)`` spec stacked over seeds: the user's function
    runs eagerly, once per seed (none without such specs)."""
    chosen = [spec for spec in specs if spec.kind != "rules"]
    if not chosen:
        return []
    first = jit_few_outputs(fm.default_variables)(seed_keys[0])
    out = []
    for spec in chosen:
        per_seed = [_variables_from(spec, fm, k, x_batch, *first) for k in seed_keys]
        out.append(jax.tree.map(lambda *xs: jnp.stack(xs), *per_seed))
    return out


def _initial_params(specs: list[InitSpec], fm: Functional, seed_keys: jax.Array,
                    x_batch: jax.Array) -> list[tuple[Any, Any]]:
    """For each spec, (params, rest) stacked over seeds.

    The model's own initialization, and each spec's rules applied by the same engine and
    key-by-path contract as `jwinit.init_params` (seed s of a rules spec starts from
    ``init_params(model, fold_in(fold_in(key, s), 0), x_batch, rules)``), vmapped over seeds, in
    one compiled program (`jit_few_outputs`: same-shape leaves compile as one output); XLA may
    fuse an initializer's scale multiplications differently from `init_params`' program, so a
    value can differ from it by float32 rounding (at most a few ulps); the draws are the same. A
    ``fn(key, x_batch)`` spec runs eagerly, once per seed.
    """
    variables = _given_variables(specs, fm, seed_keys, x_batch)
    return jit_few_outputs(lambda keys, v: _ruled(specs, fm, keys, v))(seed_keys, variables)


def run_keys(key: Any, seed: int) -> tuple[jax.Array, jax.Array]:
    """(init key, data key) of seed `seed`: ``fold_in(fold_in(key, seed), 0)`` and ``... 1)``."""
    base = jax.random.fold_in(typed_key(key, "key"), seed)
    return jax.random.fold_in(base, 0), jax.random.fold_in(base, 1)


def check_inits(inits: Mapping[str, Any], model: Any = None, x: Any = None, *,
                train_kwargs: Mapping[str, Any] | None = None) -> list[InitSpec]:
    """Resolve `inits` as `train` does and check it, without computing anything: every name,
    initializer and pattern; with `model` and an input batch `x`, every pattern must match a
    parameter of `model` (shapes only, by ``jax.eval_shape``). Returns the resolved entries in
    order (`InitSpec`: ``name``, ``kind`` 'rules' or 'variables', ``rules`` as (pattern,
    initializer or `ZERO`) with the first match winning, ``rule_for(path)``).

    Raises:
      ValueError, TypeError: naming the entry of `inits` (and the model's parameters, for a
        pattern that matches none).

    Examples:
      >>> model = jwinit.models.MLP(depth=2, width=16, output_dim=3)
      >>> spec, = jwinit.train.check_inits({'he': 'he_normal'}, model, jnp.zeros((4, 8)))
      >>> spec.kind, spec.rule_for('Dense_1/bias') is jwinit.train.ZERO
      ('rules', True)
    """
    specs = resolve_inits(inits)
    if model is not None:
        if x is None:
            raise TypeError("`check_inits`: a `model` needs its input batch `x` (an array or a "
                            "jax.ShapeDtypeStruct) to know its parameters.")
        fm = Functional(model, x, train_kwargs=train_kwargs)
        params, _ = fm.abstract_variables()
        check_patterns(specs, params)
    return specs


def initial_variables(model: Any, data: Any, *, inits: Mapping[str, Any], seeds: Any = 3,
                      key: Any = 0, batch_size: int = 64,
                      train_kwargs: Mapping[str, Any] | None = None) -> dict[str, tuple[Any, Any]]:
    """The variables every run of `train` starts from, without training: for each entry of
    `inits`, ``(params, rest)`` stacked over `seeds` (leading axis), in the order given.

    Seed s of a rules entry is exactly ``jwinit.init_params(model, run_keys(key, s)[0],
    x_train[:batch_size], rules)`` (an initializer alone stands for ``{r'(^|/)kernel$': init,
    r'(^|/)bias$': zeros}``). Arguments as in `train`.

    Examples:
      >>> data = jwinit.data.digits()
      >>> model = jwinit.models.MLP(depth=2, width=16, output_dim=10)
      >>> start = jwinit.train.initial_variables(model, data, inits={'he': 'he_normal'}, seeds=2)
      >>> start['he'][0]['Dense_1']['kernel'].shape
      (2, 16, 16)
    """
    dataset = _data(data)
    specs = resolve_inits(inits)
    seed_list = _seeds(seeds)
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=len(dataset.x_train))
    typed_key(key, "initial_variables")
    x_batch = jnp.asarray(dataset.x_train[:batch_size])
    fm = Functional(model, x_batch, train_kwargs=train_kwargs)
    params0, _ = fm.abstract_variables()
    check_patterns(specs, params0)
    init_keys = jnp.stack([run_keys(key, s)[0] for s in seed_list])
    per_spec = _initial_params(specs, fm, init_keys, x_batch)
    return {spec.name: tree for spec, tree in zip(specs, per_spec, strict=True)}


# ------------------------------------------------------------------------------------------------
# checkpoints


def _name_of(fn: Any) -> str:
    fn = getattr(fn, "jwinit_optimizer", fn)
    if isinstance(fn, functools.partial):
        args = ", ".join([_name_of(fn.func), *map(repr, fn.args),
                          *(f"{k}={v!r}" for k, v in sorted(fn.keywords.items()))])
        return f"partial({args})"
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _fingerprint(**fields: Any) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _is_key(a: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(a, "dtype", np.float32), jax.dtypes.prng_key)


def _host(a: Any) -> np.ndarray:
    """A state leaf as numpy; a typed PRNG key (an nnx model's RNG state) as its key data."""
    return np.asarray(jax.random.key_data(a) if _is_key(a) else a)


def _save(path: str, state: Any, evals: list[dict[str, np.ndarray]], chunks: int,
          fingerprint: str) -> None:
    leaves = jax.tree.leaves(jax.device_get(state))
    arrays = {f"state_{i}": _host(v) for i, v in enumerate(leaves)}
    for name in evals[0]:
        arrays[f"eval_{name}"] = np.stack([e[name] for e in evals])
    meta = json.dumps({"fingerprint": fingerprint, "chunks": chunks, "leaves": len(leaves)})
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, meta=np.asarray(meta), **arrays)


def _checkpoint_path(checkpoint: Any) -> str:
    """`checkpoint` as a path, refused before any compute if it names a folder or a file that is
    not an ``.npz`` (possibly a user's file, which a checkpoint must never overwrite)."""
    if not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(f"`checkpoint` must be None or a path to an .npz file, got "
                        f"{checkpoint!r}.")
    path = os.fspath(checkpoint)
    if os.path.isdir(path):
        raise ValueError(f"`checkpoint` {path!r} is a folder; pass a path to an .npz file.")
    if os.path.exists(path) and not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            if f.read(2) != b"PK":
                raise ValueError(f"`checkpoint` {path!r} is a file that is not a checkpoint (not "
                                 "an .npz archive); it is left as it is: remove it or pass "
                                 "another path.")
    return path


def _load(path: str, state: Any, fingerprint: str
          ) -> tuple[Any, list[dict[str, np.ndarray]], int] | None:
    """The state, evaluations and chunks done saved at `path`; None to start from step 0 (no
    file, or a damaged one: cut short, or not the arrays a checkpoint holds, with a warning
    saying so, the file is then overwritten by the next chunk's checkpoint)."""
    if not os.path.exists(path):
        return None
    like = jax.tree.leaves(state)
    try:
        f = read_npz(path, what="checkpoint")
        meta = json.loads(str(f["meta"]))
        fp, chunks, n_leaves = meta["fingerprint"], int(meta["chunks"]), int(meta["leaves"])
        leaves = [f[f"state_{i}"] for i in range(n_leaves)]
        names = [k[5:] for k in f if k.startswith("eval_")]
        stacked = {n: f[f"eval_{n}"] for n in names}
        if n_leaves != len(like) or not names:
            raise KeyError("a checkpoint of another state")
    except (DamagedFileError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, DamagedFileError) and not e.damaged:
            raise ValueError(str(e)) from None
        why = str(e) if isinstance(e, DamagedFileError) else (
            f"the checkpoint {path!r} does not hold what a checkpoint holds ({e})")
        warnings.warn(f"{why} The run restarts from step 0 (its checkpoint will be rewritten).",
                      RuntimeWarning, stacklevel=3)
        return None
    if fp != fingerprint:
        raise ValueError(f"`checkpoint` {path!r} was written by a different training setup "
                         "(model, data, inits, optimizer, learning rates, seeds, steps or "
                         "batch size); remove it or pass another path.")
    evals = [{n: stacked[n][j] for n in names} for j in range(len(stacked[names[0]]))]
    treedef = jax.tree.structure(state)
    restored = jax.tree.unflatten(treedef, [
        jax.random.wrap_key_data(jnp.asarray(v), impl=jax.random.key_impl(t)) if _is_key(t)
        else jnp.asarray(v) for v, t in zip(leaves, like, strict=True)])
    return restored, evals, chunks


# ------------------------------------------------------------------------------------------------
# the entry point


def _write_evaluation(writers: list[Any], names: list[str], step: int, metrics: Any,
                      diverged: np.ndarray) -> None:
    """One evaluation's metrics of every run to every writer (NaN for a run diverged before
    `step`, as `TrainResult.rows` has them)."""
    for i, name in enumerate(names):
        gone = 0 <= int(diverged[i]) < step
        scalars = {m: math.nan if gone else float(np.asarray(metrics[m])[i]) for m in METRICS}
        for w in writers:
            w.write_scalars(name, step, scalars)


def train(
    model: Any,
    data: Any,
    *,
    inits: Mapping[str, Any],
    optimizer: Callable[..., Any],
    learning_rates: Any,
    steps: int,
    seeds: Any = 3,
    batch_size: int = 64,
    eval_every: int | None = None,
    key: Any = 0,
    eval_examples: int = 4096,
    eval_batch_size: int | None = None,
    signal: bool = False,
    signal_batch: int = 256,
    checkpoint: str | os.PathLike[str] | None = None,
    train_kwargs: Mapping[str, Any] | None = None,
    eval_kwargs: Mapping[str, Any] | None = None,
    mesh: jax.sharding.Mesh | None = None,
    runs_per_group: int | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stepping: str = "auto",
    batching: str = "auto",
    threads: int | None = None,
    writers: Any = None,
) -> TrainResult:
    """Train every (init, learning rate, seed) run of one model in one compiled program.

    Args:
      model: a ``flax.linen.Module`` or an ``nnx.Module`` instance (its output: logits for
        classification data, the target's shape for regression).
      data: a `jwinit.data.Dataset` or ``(x_train, y_train, x_test, y_test)``.
      inits: display name -> initializer, registry name, mean-field pair, rules (a mapping of
        regular expression on the parameter path to initializer, as in `jwinit.init_params`),
        or ``variables_fn(fn)`` for ``fn(key, x_batch) -> variables`` (data-dependent inits).
      optimizer: an optax factory taking the learning rate as its first argument: ``optax.sgd``,
        ``functools.partial(optax.sgd, momentum=0.9)``, ``lambda lr: optax.sgd(lr, 0.9)``,
        ``optax.adam``, ...
      learning_rates: one or more learning rates (> 0).
      steps: optimizer steps per run (the last evaluation is at the last step, also when it is
        not a multiple of `eval_every`).
      seeds: a number of seeds (0, 1, ...) or the seeds themselves.
      batch_size: examples per step (sampled with replacement; at most the training set's size).
      eval_every: steps between evaluations (default: about steps / 10).
      key: the base PRNG key (or int seed): seed s initializes from ``fold_in(fold_in(key, s), 0)``
        and draws its batches from ``fold_in(fold_in(key, s), 1)``.
      eval_examples: the train metrics use the first `eval_examples` training examples.
      eval_batch_size: an evaluation's forward passes take this many examples at a time (the
        last batch padded with copies of the first examples, whose outputs are dropped); None
        (default): `EVAL_BATCH_CPU` (256) on CPU, where a pass over a set too large for the
        cache is several times slower per example, and each set at once on other backends. A
        model's evaluation output for an example must not depend on the other examples of its
        batch (batch statistics in evaluation mode); the metrics then agree with an evaluation
        at once to float32 rounding.
      signal: record per-layer statistics (`SIGNAL_FIELDS`) of the kernel layers at every
        evaluation, on the first `signal_batch` training examples.
      checkpoint: an ``.npz`` path: the state is saved there after every chunk and a call with
        the same setup resumes from it.
      train_kwargs / eval_kwargs: keyword arguments of the model's call in training and in
        evaluation (e.g. ``{'train': True}``).
      mesh: devices to shard the runs over (default: all local devices, as many as the groups).
      runs_per_group: runs vmapped together. Default: on one CPU device with host threads,
        1 (every run its own call, `threads` at once: XLA:CPU computes a vmapped step at a
        higher cost per run than the run's own); else groups of at most 8 runs, as equal as
        they can be (12 runs are 2 groups of 6), or with 'unroll' batching one group per
        device. A device computes its groups one after the other (or, with `threads`, at once).
        The results depend on the runs and this number only, not on the devices, the mesh or
        the threads (bit for bit, except that a model with a convolution computes a group in a
        loop over groups, on one device without threads, to float32 rounding of the others:
        XLA:CPU compiles a convolution in a loop body differently); so the default layouts of
        one CPU device (runs alone) and of several devices (vmapped groups) agree to float32
        rounding (XLA computes a lone and a vmapped step with different kernels).
      progress: None (default) draws a progress line with the rate and an ETA on standard
        error when it is a terminal (updated at most twice a second, after each evaluation
        interval); True always, False never; a callable is called as ``progress(done_steps,
        steps)`` instead, first with the steps a resume starts from.
      stepping: 'scan' runs the `eval_every` steps between evaluations in one compiled
        ``lax.scan`` (one dispatch per interval); 'loop' compiles one step and dispatches it from
        Python (XLA:CPU runs convolutions inside a scan several times slower than outside one,
        jax-ml/jax#12868); 'auto' (default) is 'loop' for a model with a convolution on CPU and
        'scan' otherwise. Both compute the same steps from the same keys (the rows agree to
        float32 rounding: XLA may fuse a step differently inside a loop); `TrainResult.stepping`
        says which ran.
      batching: how the runs on one device share a program: 'vmap' (the runs of a group
        vectorized, the groups one after the other), 'unroll' (all runs of the device vectorized
        in one group, except that every convolution is computed run by run, unrolled in the
        program: XLA:CPU computes a convolution vmapped over its kernel as a grouped
        convolution, several times slower than the separate ones) or 'auto' (default: 'unroll'
        for a model with a convolution on CPU, else 'vmap'). `TrainResult.batching` says which
        ran.
      threads: host threads that run groups of runs at once on ONE device (no mesh, or a mesh
        of one device): each group is a call of the same compiled program. None (default):
        the machine's cores (at most 8) on a CPU device, where XLA computes a small vmapped
        step on about one core, else 1. The runs' values do not depend on it.
        `TrainResult.threads` says how many ran.
      writers: metric writers (`jwinit.writers`: ``[jwinit.writers.TensorBoard(logdir)]``,
        `jwinit.writers.Wandb`, or any object with their three methods): every run's
        hyperparameters once, then its metrics at every evaluation as they are computed (the
        values of `TrainResult.rows`; NaN once diverged), closed at the end. A resumed call
        writes the evaluations it computes. Only process 0 writes.

    Returns:
      A `TrainResult`.

    Raises:
      ValueError, TypeError: a bad argument, before any compute.
    """
    t_start = time.perf_counter()
    dataset = _data(data)
    specs = resolve_inits(inits)
    optimizer = check_optimizer(optimizer)
    lrs = _learning_rates(learning_rates)
    seed_list = _seeds(seeds)
    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1,
                           maximum=len(dataset.x_train))
    every = _default_eval_every(steps) if eval_every is None else check_int(
        eval_every, "eval_every", minimum=1)
    eval_examples = check_int(eval_examples, "eval_examples", minimum=1)
    if eval_batch_size is None:  # on CPU, batches that keep a pass's activations in cache
        eval_batch = EVAL_BATCH_CPU if jax.default_backend() == "cpu" else None
    else:
        eval_batch = check_int(eval_batch_size, "eval_batch_size", minimum=1)
    signal = check_bool(signal, "signal")
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"`progress` must be None (a line on a terminal), True, False or a "
                        f"callable progress(done_steps, steps), got {progress!r}.")
    signal_batch = check_int(signal_batch, "signal_batch", minimum=2)
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"`mesh` must be None (all local devices) or a jax.sharding.Mesh, got "
                        f"{mesh!r}.")
    stepping = check_choice(stepping, "stepping", STEPPINGS)
    batching = check_choice(batching, "batching", BATCHINGS)
    if threads is not None:
        threads = check_int(threads, "threads", minimum=1)
        if threads > 1 and mesh is not None and mesh.devices.size > 1:
            raise ValueError(f"`threads` > 1 runs groups of runs at once on one device; with "
                             f"a mesh of {mesh.devices.size} devices the devices run them: "
                             f"pass threads=None or 1, got {threads}.")
    writers = check_writers(writers)
    base = typed_key(key, "train")
    if base.shape != ():
        raise ValueError(f"`key` must be a single key, got shape {base.shape}.")
    path = None if checkpoint is None else _checkpoint_path(checkpoint)

    x_batch = jnp.asarray(dataset.x_train[:batch_size])
    fm = Functional(model, x_batch, train_kwargs=train_kwargs, eval_kwargs=eval_kwargs)
    params0, rest0 = fm.abstract_variables()  # structure only
    check_patterns(specs, params0)
    forward = _check_output(fm, params0, rest0, dataset, batch_size)
    conv_on_cpu = "auto" in (stepping, batching) and jax.default_backend() == "cpu" and (
        _has_convolution(forward))
    if stepping == "auto":
        stepping = "loop" if conv_on_cpu else "scan"
    if batching == "auto":
        batching = "unroll" if conv_on_cpu else "vmap"

    # -- every run's initial state ---------------------------------------------------------------
    runs = [(s.name, lr, seed) for s in specs for lr in lrs for seed in seed_list]
    n_runs = len(runs)
    if runs_per_group is not None:
        runs_per_group = check_int(runs_per_group, "runs_per_group", minimum=1)
    mesh, device, group, workers, padded = _layout(n_runs, mesh, threads, batching,
                                                   runs_per_group)

    init_keys = jnp.stack([run_keys(base, s)[0] for s in seed_list])
    data_keys = jax.random.key_data(jnp.stack([run_keys(base, s)[1] for s in seed_list]))
    program = Program(fm, optimizer, dataset.task, batch_size, every, signal, mesh, group,
                      stepping, batching, workers, device, eval_batch)
    lr_values = np.asarray(lrs, np.float32)

    # every run's start: the initializations in one compiled program (same-shape leaves of all
    # inits one output: XLA folds them into the draws), the runs stacked op by op, the optimizer
    # states in a second program
    per_spec = _initial_params(specs, fm, init_keys, x_batch)
    params, rest, lr_arr, run_data_keys = _assembled(per_spec, data_keys, lr_values,
                                                     len(seed_list), padded)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts and float32
        opt_state = jit_few_outputs(jax.vmap(program.opt_init))(params, lr_arr)
    state = {"params": params, "rest": rest, "opt_state": opt_state,
             "diverged": jnp.full((padded,), -1, jnp.int32), "data_key": run_data_keys}
    n_eval = min(eval_examples, len(dataset.x_train))
    device_data = {
        "x_train": jnp.asarray(dataset.x_train), "y_train": jnp.asarray(dataset.y_train),
        # the evaluation's inputs: the first n_eval training examples, then the test set (one
        # forward pass to trace and compile for both)
        "x_evaluate": jnp.asarray(np.concatenate([dataset.x_train[:n_eval], dataset.x_test])),
        "y_eval": jnp.asarray(dataset.y_train[:n_eval]),
        "y_test": jnp.asarray(dataset.y_test),
        "x_signal": jnp.asarray(dataset.x_train[:signal_batch]),
        "y_signal": jnp.asarray(dataset.y_train[:signal_batch]),
    }

    # -- resume ----------------------------------------------------------------------------------
    total_chunks = -(-steps // every)  # the last may be shorter: evaluated at the last step
    ends = [min((c + 1) * every, steps) for c in range(total_chunks)]
    fingerprint = _fingerprint(
        model=repr(model) if fm.kind == "linen" else repr(fm.graphdef),
        params=[(p, list(v.shape)) for p, v in zip(leaf_paths(params0),
                                                        jax.tree.leaves(params0), strict=True)],
        data=[hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in dataset],
        inits=[(s.name, s.kind, s.label, [(p, _name_of(i)) for p, i in s.rules]) for s in specs],
        optimizer=_name_of(optimizer), learning_rates=lrs, seeds=seed_list, steps=steps,
        batch_size=batch_size, every=every, key=np.asarray(jax.random.key_data(base)).tolist(),
        eval_examples=n_eval, signal=signal, signal_batch=signal_batch,
        train_kwargs=sorted((train_kwargs or {}).items()),
        eval_kwargs=sorted((eval_kwargs or {}).items()), runs=padded, group=group)
    state, device_data = program.place(state, device_data)
    resumed = None if path is None else _load(path, state, fingerprint)
    if resumed is not None:
        resumed = (program.place(resumed[0], device_data)[0], *resumed[1:])
    if resumed is not None:
        state, evals, done = resumed
    held = program.hold(state)  # with host threads, the groups' states from here on
    if resumed is None:
        evals = [jax.device_get(program.evaluate(held, device_data))]
        done = 0
    names = [run_name(*r) for r in runs]
    if writers and resumed is None:
        for name, (init, lr, seed) in zip(names, runs, strict=True):
            for w in writers:
                write_hparams(w, name, {"init": init, "learning_rate": lr, "seed": seed},
                              METRICS)
        _write_evaluation(writers, names, 0, evals[0], np.full(n_runs, -1))
    progress, line = progress_callback(progress, n_runs)
    if progress is not None:
        progress(min(done * every, steps), steps)

    try:
        compile_seconds = program.compile(held, device_data) if done < total_chunks else math.nan
        if line is not None:
            line.started(min(done * every, steps))
        for chunk in range(done, total_chunks):
            t0 = chunk * every
            held, metrics = program.run_chunk(held, t0, device_data, ends[chunk] - t0)
            evals.append(jax.device_get(metrics))
            if writers:
                _write_evaluation(writers, names, ends[chunk], evals[-1],
                                  program.diverged(held)[:n_runs])
            if path is not None:
                _save(path, program.gather(held), evals, chunk + 1, fingerprint)
            if progress is not None:
                progress(ends[chunk], steps)

    finally:
        program.close()
    for w in writers:
        w.close()

    # -- the result ------------------------------------------------------------------------------
    state = program.gather(held)
    diverged = np.asarray(state["diverged"])[:n_runs]
    eval_steps = np.asarray([0, *ends])
    arrays = {m: np.stack([np.asarray(e[m])[:n_runs] for e in evals], axis=1) for m in METRICS}
    gone = (diverged[:, None] >= 0) & (diverged[:, None] < eval_steps[None, :])
    for m in METRICS:
        arrays[m] = np.where(gone, np.nan, arrays[m]).astype(np.float64)
    sig = None
    layers: list[str] = []
    if signal:
        sig = np.stack([np.asarray(e["signal"])[:n_runs] for e in evals], axis=1)
        sig = np.where(gone[..., None, None], np.nan, sig).astype(np.float64)
        layers = _signal_layers(fm, params0, rest0, device_data["x_signal"])
    # typed PRNG keys (an nnx model's RNG state) stay keys
    take = lambda tree: jax.tree.map(  # noqa: E731
        lambda a: a[:n_runs] if _is_key(a) else np.asarray(a)[:n_runs], tree)
    return TrainResult(
        runs=runs, eval_steps=eval_steps, diverged_step=diverged, signal=sig,
        signal_layers=layers, params=take(state["params"]), rest=take(state["rest"]),
        task=dataset.task, compile_seconds=compile_seconds,
        seconds=time.perf_counter() - t_start, chunk_traces=program.traces, stepping=stepping,
        batching=batching, threads=workers,
        **arrays)


#: Examples per forward pass of an evaluation on CPU by default (`train`'s `eval_batch_size`).
EVAL_BATCH_CPU = 256
#: How `train` steps: 'auto', 'scan' (a scan per evaluation interval) or 'loop' (a step per call).
STEPPINGS = ("auto", "scan", "loop")
#: How `train` lays out the runs of a device: 'auto', 'vmap' or 'unroll'.
BATCHINGS = ("auto", "vmap", "unroll")


def _layout(n_runs: int, mesh: jax.sharding.Mesh | None, threads: int | None, batching: str,
            runs_per_group: int | None) -> tuple[Any, Any, int, int, int]:
    """Where the runs go: (mesh or None, the one device of a one-device mesh or None, runs per
    group, host threads, runs padded to fill the groups of every device). Groups are
    `runs_per_group` runs; by default one run with host threads, else at most 8 runs, as equal
    as they can be, and 'unroll' batching makes one group per device. Without a mesh, the
    default mesh is as many local devices as there are groups; on one device the groups are run
    by host threads."""
    device = None
    if mesh is not None and mesh.devices.size == 1:  # one device: no shard_map needed
        device, mesh = mesh.devices.flat[0], None
    alone = mesh is None and (device is not None or jax.local_device_count() == 1)
    workers = _host_threads(threads, alone)
    if runs_per_group is not None:
        group = runs_per_group
        n_groups = -(-n_runs // group)
    elif alone and workers > 1:
        # host threads: every run its own call. On XLA:CPU a vmapped step costs more per run
        # than the run's own (batched matmuls, grouped convolutions) and a larger program
        # compiles longer: 12-run grids on 2 cores took 6.4 s instead of 7.7 s (the MLP), 9.7 s
        # instead of 12.0 s (the Transformer), 10.2 s instead of 14.7 s (the ResNet)
        group, n_groups = 1, n_runs
    elif batching == "unroll":  # one group per device or host thread (no loop over groups)
        slots = workers if alone else (mesh.devices.size if mesh is not None
                                       else jax.local_device_count())
        n_groups = max(1, min(slots, n_runs))
        group = -(-n_runs // n_groups)
    else:
        n_groups = -(-n_runs // 8)
        group = -(-n_runs // n_groups)
    if mesh is None and not alone:
        devices = jax.local_devices()[: max(1, min(jax.local_device_count(), n_groups))]
        mesh = jax.sharding.Mesh(np.asarray(devices), ("runs",)) if len(devices) > 1 else None
    n_dev = 1 if mesh is None else mesh.devices.size
    workers = min(workers, n_groups) if mesh is None else 1
    return mesh, device, group, workers, -(-n_groups // n_dev) * n_dev * group


def _host_threads(threads: int | None, alone: bool) -> int:
    """Host threads for groups of runs: `threads` as given, or (None) the usable cores (at most
    8) when the runs are on one CPU device, else 1."""
    if threads is not None:
        return threads
    if not alone or jax.default_backend() != "cpu":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _has_convolution(closed: Any) -> bool:
    """Whether a model's forward pass (its closed jaxpr) has a convolution (any nested jaxpr)."""
    def walk(jaxpr: Any) -> bool:
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                return True
            for value in eqn.params.values():
                for sub in value if isinstance(value, tuple | list) else (value,):
                    sub = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr's jaxpr
                    if hasattr(sub, "eqns") and walk(sub):
                        return True
        return False

    return walk(closed.jaxpr)


def _signal_layers(fm: Functional, params: Any, rest: Any, x: jax.Array) -> list[str]:
    names: list[str] = []

    def trace(p, r):
        _, layers = fm.recorded(p, r, x)
        names.extend(name for name, _, _ in layers)
        return 0

    jax.eval_shape(trace, params, rest)
    return names
