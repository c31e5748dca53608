"""`jwinit.audit(model, variables, rules)`: every parameter of an initialized model against the rule
meant for it.

Initialization bugs in large models are silent: a residual scaling whose name check never
matched, truncation bounds given in absolute units (so nothing is truncated), a block copied
from another, a key reused, a table at the wrong scale, a leaf in the wrong dtype. The audit
reads what the rules *mean* exactly (`jwinit.describe`: the variance, mean and support of each
rule's initializer at the parameter's shape, fans and truncation included) and measures what
the parameters *are*, with the standard errors of their sample sizes.

Per parameter with n entries w_1..w_n, measured in float32: the mean m, the variance
s^2 = mean((w - m)^2), the fourth central moment m4, min and max, the number of non-finite
entries. Against the rule's exact mean mu and variance sigma^2:

* mean: z = (m - mu) / sqrt(s^2 / n);
* std: z = (s^2 - sigma^2) / sqrt((m4 - s^4) / n) (the sample variance's standard error,
  whatever the distribution: normal, truncated, uniform, orthogonal);
* tail: an entry outside the rule's support (a truncated or uniform rule: an impossible value,
  beyond rounding), or for a Gaussian rule max|w - mu| / sigma beyond the largest of n normal
  draws at the audit's false-alarm level;
* spectrum (orthogonal-family rules: the matrix, or a convolution's centre tap): the spread
  sigma_max / sigma_min - 1 of its singular values beyond max(1e-3, 32 eps(dtype));
* duplicate: two random parameters of the same size whose strided samples (up to 2048 entries,
  the same positions) correlate with |r| > 0.99 and beyond chance (Fisher's z at the
  false-alarm level): a block copied from another, or the same key used twice;
* dtype: a parameter whose dtype differs from the model's declared one (linen with `x`: the
  dtype `model.init` gives it; otherwise the dtype most of the parameters have);
* nonfinite: any NaN or infinity.

The z thresholds are Bonferroni-corrected: with m tests in the whole audit (3 per parameter a rule
covers, one per pair of same-size parameters) a correct model raises a flag with probability at
most `alpha` (default 1e-3), so z* = Phi^-1(1 - alpha / (2 m)): 4.9 for 100 parameters.
Deterministic rules (zeros, ones, identity, ZerO: variance 0 or no randomness) are compared
with their exact moments to within rounding instead.

A parameter no rule covers is listed in `AuditReport.unmatched` and not flagged for it; the
rule-free checks (nonfinite, dtype, duplicate) apply to every parameter.

The statistics are computed by one jitted program over the parameter tree, so sharded
parameters are never gathered (only their strided samples, and an orthogonal matrix's singular
values); under ``jax.jit`` the report is a pytree of those arrays, returned from the jitted
function like any other, and its flags are read once it is concrete.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from jwinit._display import treescope_repr
from jwinit.description import Description, describe
from jwinit.rules import matched_params

__all__ = ["audit", "AuditReport", "AuditRow", "FLAG_KINDS", "read_variables", "load_rules"]

#: the kinds of flag an audit raises
FLAG_KINDS = ("std", "mean", "tail", "spectrum", "duplicate", "dtype", "nonfinite")

#: the distributions whose entries are independent draws (z-tests apply)
_RANDOM = {"normal", "truncated_normal", "uniform", "orthogonal", "delta_orthogonal", "sparse"}
_ORTHOGONAL = {"orthogonal", "delta_orthogonal"}
_SKETCH = 2048
_DUPLICATE_R = 0.99


@dataclasses.dataclass(frozen=True)
class AuditRow:
    """One parameter's audit.

    Attributes:
      path: the '/'-joined parameter path (as `jwinit.param_paths` gives it).
      shape, dtype: the parameter's.
      pattern: the rule that covers it (None: no rule does).
      scheme: the rule's initializer, as `describe` names it.
      distribution: its distribution ('normal', 'truncated_normal', 'orthogonal', ...).
      expected_mean, expected_std: the rule's exact moments at this shape (None: no rule).
      mean, std: measured.
      z_mean, z_std: the measured moments' distance from the expected ones in standard errors
        (None where no z-test applies: no rule, or a deterministic rule).
      max_over_std: max|w - expected mean| / expected std.
      bound_over_std: the rule's truncation bound in the same units (None: unbounded).
      spectrum_spread: sigma_max / sigma_min - 1 of an orthogonal-family parameter's matrix.
      nonfinite: the number of NaN/inf entries.
      exact: False when the rule's moments were estimated from one draw (a foreign initializer
        `describe` does not know); its z-scores then include that draw's standard error.
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    pattern: str | None
    scheme: str | None
    distribution: str | None
    expected_mean: float | None
    expected_std: float | None
    mean: float
    std: float
    z_mean: float | None
    z_std: float | None
    max_over_std: float | None
    bound_over_std: float | None
    spectrum_spread: float | None
    nonfinite: int
    exact: bool


@dataclasses.dataclass(frozen=True)
class _Leaf:
    """What an audit knows of a parameter before measuring it (static under jit)."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    declared: str
    pattern: str | None
    description: Description | None
    spectrum: str | None  # None, 'matrix' or 'centre' (a convolution's centre tap)


def _z_star(alpha: float, tests: int) -> float:
    """Phi^-1(1 - alpha / (2 tests)): a two-sided Bonferroni threshold."""
    return float(special.ndtri(1.0 - alpha / (2.0 * max(tests, 1))))


class AuditReport:
    """The audit of every parameter: `rows`, `flags`, `unmatched` (see `jwinit.audit`).

    Attributes:
      rows: one `AuditRow` per parameter path, in path order.
      flags: ``[(path, kind), ...]`` with kind in `FLAG_KINDS`, in path order.
      unmatched: the paths no rule covers.
      alpha: the family-wise false-alarm probability the thresholds were set for.
      z_threshold: the Bonferroni z threshold of the mean and std tests.
    """

    def __init__(self, leaves: Sequence[_Leaf], stats: Mapping[str, Any], alpha: float):
        self._leaves = tuple(leaves)
        self._stats = dict(stats)
        self.alpha = alpha
        matched = sum(leaf.pattern is not None for leaf in self._leaves)
        by_size = Counter(int(np.prod(leaf.shape)) for leaf in self._leaves)
        self._pairs = sum(k * (k - 1) // 2 for k in by_size.values())
        self.z_threshold = _z_star(alpha, 3 * matched + self._pairs)
        self._tests = 3 * matched + self._pairs
        self._rows: list[AuditRow] | None = None
        self._flags: list[tuple[str, str]] | None = None

    # -- a pytree, so that the report can leave a jitted function --------------------------------
    def tree_flatten(self) -> tuple[tuple[Any], tuple[Any, ...]]:
        return (self._stats,), (self._leaves, self.alpha)

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: tuple[Any]) -> AuditReport:
        return cls(aux[0], children[0], aux[1])

    def _concrete(self) -> None:
        if any(isinstance(v, jax.core.Tracer) for v in jax.tree.leaves(self._stats)):
            raise ValueError("an AuditReport's rows and flags are read from concrete values: "
                             "return the report from the jitted function and read them there.")

    @property
    def unmatched(self) -> list[str]:
        return [leaf.path for leaf in self._leaves if leaf.pattern is None]

    @property
    def rows(self) -> list[AuditRow]:
        if self._rows is None:
            self._concrete()
            self._rows = [self._row(leaf) for leaf in self._leaves]
        return self._rows

    @property
    def flags(self) -> list[tuple[str, str]]:
        if self._flags is None:
            self._flags = self._find_flags()
        return self._flags

    def flagged(self, kind: str | None = None) -> list[str]:
        """The flagged paths (of one `kind`, or of any)."""
        return sorted({p for p, k in self.flags if kind is None or k == kind})

    # -- rows ------------------------------------------------------------------------------------
    def _row(self, leaf: _Leaf) -> AuditRow:
        s = {k: np.asarray(v[leaf.path]) if leaf.path in v else None
             for k, v in self._stats.items()}
        n = int(np.prod(leaf.shape))
        mean, var, m4 = float(s["mean"]), float(s["var"]), float(s["m4"])
        d = leaf.description
        z_mean = z_std = max_over = bound_over = spread = None
        exp_mean = exp_std = None
        if d is not None:
            exp_mean = float(np.real(d.mean))
            exp_std = d.std
            random = _is_random(d)
            if random and exp_std is not None and exp_std > 0:
                widen = 1.0 if d.exact else math.sqrt(2.0)
                se_mean = math.sqrt(max(var, 0.0) / n) * widen
                se_var = math.sqrt(max(m4 - var * var, 0.0) / n) * widen
                z_mean = (mean - exp_mean) / se_mean if se_mean > 0 else (
                    0.0 if mean == exp_mean else math.inf)
                z_std = (var - exp_std**2) / se_var if se_var > 0 else (
                    0.0 if var == exp_std**2 else math.inf)
            if exp_std is not None and exp_std > 0:
                far = max(abs(float(s["min"]) - exp_mean), abs(float(s["max"]) - exp_mean))
                max_over = far / exp_std
                if d.bounds is not None and all(math.isfinite(b) for b in d.bounds):
                    bound_over = max(abs(d.bounds[0] - exp_mean),
                                     abs(d.bounds[1] - exp_mean)) / exp_std
            if s.get("sv") is not None and s["sv"].size:
                sv = np.asarray(s["sv"], np.float64)
                spread = float(sv.max() / sv.min() - 1.0) if sv.min() > 0 else math.inf
        return AuditRow(path=leaf.path, shape=leaf.shape, dtype=leaf.dtype, pattern=leaf.pattern,
                        scheme=None if d is None else d.name,
                        distribution=None if d is None else d.distribution,
                        expected_mean=exp_mean, expected_std=exp_std, mean=mean,
                        std=math.sqrt(max(var, 0.0)), z_mean=z_mean, z_std=z_std,
                        max_over_std=max_over, bound_over_std=bound_over,
                        spectrum_spread=spread, nonfinite=int(s["nonfinite"]),
                        exact=True if d is None else d.exact)

    # -- flags -----------------------------------------------------------------------------------
    def _find_flags(self) -> list[tuple[str, str]]:
        rows = self.rows
        z = self.z_threshold
        flags: list[tuple[str, str]] = []
        for leaf, row in zip(self._leaves, rows, strict=True):
            eps = float(jnp.finfo(leaf.dtype).eps) if jnp.issubdtype(
                leaf.dtype, jnp.inexact) else 0.0
            if row.nonfinite:
                flags.append((row.path, "nonfinite"))
            if leaf.dtype != leaf.declared:
                flags.append((row.path, "dtype"))
            d = leaf.description
            if d is None or row.nonfinite:
                continue
            n = int(np.prod(leaf.shape))
            if _is_random(d) and row.z_std is not None:
                if abs(row.z_mean) > z:
                    flags.append((row.path, "mean"))
                if abs(row.z_std) > z:
                    flags.append((row.path, "std"))
            else:  # deterministic: the exact moments, to within rounding
                scale = max(abs(row.expected_mean or 0.0), row.expected_std or 0.0, 1e-30)
                tol = 8 * max(eps, 1e-7) * scale
                if abs(row.mean - row.expected_mean) > tol:
                    flags.append((row.path, "mean"))
                if abs(row.std - (row.expected_std or 0.0)) > tol:
                    flags.append((row.path, "std"))
            if row.max_over_std is not None:
                if row.bound_over_std is not None:
                    # outside the support: impossible for the rule (beyond rounding)
                    if row.max_over_std > row.bound_over_std * (1 + 4 * max(eps, 1e-7)) + 1e-6:
                        flags.append((row.path, "tail"))
                elif d.distribution == "normal":
                    limit = float(special.ndtri(1.0 - self.alpha / (2.0 * n * self._tests)))
                    if row.max_over_std > limit:
                        flags.append((row.path, "tail"))
            if row.spectrum_spread is not None and row.spectrum_spread > max(1e-3, 32 * eps):
                flags.append((row.path, "spectrum"))
        flags.extend(self._duplicates())
        order = {leaf.path: i for i, leaf in enumerate(self._leaves)}
        return sorted(set(flags), key=lambda f: (order[f[0]], FLAG_KINDS.index(f[1])))

    def _duplicates(self) -> list[tuple[str, str]]:
        sketches = self._stats["sketch"]
        groups: dict[int, list[str]] = {}
        for leaf, row in zip(self._leaves, self.rows, strict=True):
            if leaf.path not in sketches or row.nonfinite or not row.std > 0:
                continue
            if leaf.description is not None and not _is_random(leaf.description):
                continue
            groups.setdefault(int(np.prod(leaf.shape)), []).append(leaf.path)
        out = []
        z = self.z_threshold
        for paths in groups.values():
            if len(paths) < 2:
                continue
            x = np.stack([np.asarray(sketches[p], np.float64) for p in paths])
            x = x - x.mean(axis=1, keepdims=True)
            norms = np.linalg.norm(x, axis=1)
            keep = norms > 0
            x = x[keep] / norms[keep, None]
            kept = [p for p, k in zip(paths, keep, strict=True) if k]
            r = np.clip(x @ x.T, -1.0, 1.0)
            size = x.shape[1]
            for i in range(len(kept)):
                for j in range(i + 1, len(kept)):
                    rij = abs(r[i, j])
                    fisher = math.atanh(min(rij, 1 - 1e-15)) * math.sqrt(max(size - 3, 1))
                    if rij > _DUPLICATE_R and fisher > z:
                        out += [(kept[i], "duplicate"), (kept[j], "duplicate")]
        return out

    # -- display ---------------------------------------------------------------------------------
    def summary(self) -> str:
        """One line: how many parameters, matched, flagged, and the threshold."""
        kinds = Counter(k for _, k in self.flags)
        said = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
        covered = len(self._leaves) - len(self.unmatched)
        return (f"audit of {len(self._leaves)} parameters ({covered} covered by a rule, "
                f"{len(self.unmatched)} not): flags: {said} "
                f"(z threshold {self.z_threshold:.2f} for a false-alarm probability "
                f"{self.alpha:g})")

    def table(self) -> Any:
        """A ``rich.table.Table`` of every row, flagged rows marked."""
        from rich.markup import escape
        from rich.table import Table

        flags: dict[str, list[str]] = {}
        for p, k in self.flags:
            flags.setdefault(p, []).append(k)
        t = Table(title=self.summary(), title_justify="left")
        for col in ("path", "shape", "dtype", "rule", "std (expected)", "z std", "mean z",
                    "max/std (bound)", "flags"):
            t.add_column(col, justify="left" if col in ("path", "rule", "flags") else "right")

        def num(v: float | None, fmt: str = ".3g") -> str:
            return "-" if v is None else format(v, fmt)

        for row in self.rows:
            bound = "" if row.bound_over_std is None else f" ({row.bound_over_std:.2f})"
            t.add_row(escape(row.path), str(row.shape), row.dtype,
                      "-" if row.pattern is None else escape(f"{row.scheme}  [{row.pattern}]"),
                      f"{row.std:.4g} ({num(row.expected_std, '.4g')})", num(row.z_std, ".1f"),
                      num(row.z_mean, ".1f"), num(row.max_over_std, ".2f") + bound,
                      ", ".join(flags.get(row.path, [])),
                      style="bold red" if row.path in flags else None)
        return t

    def __rich__(self) -> Any:
        return self.table()

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=160, record=True, file=_Null())
        console.print(self.table())
        return console.export_text().rstrip()

    def __repr__(self) -> str:
        try:
            return f"AuditReport({self.summary()})"
        except ValueError:  # traced
            return f"AuditReport({len(self._leaves)} parameters, traced)"

    def __treescope_repr__(self, path: Any, subtree_renderer: Any) -> Any:
        return treescope_repr(self, {"summary": self.summary(), "flags": self.flags,
                                     "unmatched": self.unmatched, "rows": self.rows}, path,
                              subtree_renderer)


jax.tree_util.register_pytree_node(AuditReport, AuditReport.tree_flatten,
                                   AuditReport.tree_unflatten)


class _Null:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


def _is_random(d: Description) -> bool:
    if d.distribution in _RANDOM:
        return True
    return not d.exact and (d.variance or 0.0) > 0


# ------------------------------------------------------------------------------------------------
# the measurement: one jitted program over the tree


def _strided(n: int) -> np.ndarray:
    """Up to `_SKETCH` positions spread evenly over n entries (the same for every size-n leaf)."""
    if n <= _SKETCH:
        return np.arange(n)
    return (np.arange(_SKETCH, dtype=np.int64) * n) // _SKETCH


def _measure(values: Mapping[str, Any], spectra: Mapping[str, Any],
             spec: tuple[tuple[str, str | None], ...]) -> dict[str, Any]:
    """Every leaf's statistics; `spectra` holds the orthogonal-family parameters in jwinit's
    layout, `spec` the (path, spectrum) of each (static)."""
    out: dict[str, dict[str, Any]] = {k: {} for k in ("mean", "var", "m4", "min", "max",
                                                       "nonfinite", "sketch", "sv")}
    for path, spectrum in spec:
        w = jnp.asarray(values[path])
        if jnp.issubdtype(w.dtype, jnp.complexfloating):
            w = jnp.abs(w)
        w = w.astype(jnp.float32)
        m = jnp.mean(w)
        c = w - m
        out["mean"][path] = m
        out["var"][path] = jnp.mean(c * c)
        out["m4"][path] = jnp.mean((c * c) ** 2)
        out["min"][path] = jnp.min(w)
        out["max"][path] = jnp.max(w)
        out["nonfinite"][path] = jnp.sum(~jnp.isfinite(w))
        out["sketch"][path] = w.reshape(-1)[_strided(w.size)]
        if spectrum is not None:
            mat = jnp.asarray(spectra[path]).astype(jnp.float32)
            if spectrum == "centre":
                mat = mat[tuple(s // 2 for s in mat.shape[:-2])]
            mat = mat.reshape(-1, mat.shape[-1])
            out["sv"][path] = jnp.linalg.svd(mat, compute_uv=False)
    return out


_MEASURE = jax.jit(_measure, static_argnums=2)


# ------------------------------------------------------------------------------------------------
# the entry point


def _declared_dtypes(model: Any, x: Any, values: Mapping[str, Any],
                     init_kwargs: Mapping[str, Any]) -> dict[str, str]:
    """The dtype the model declares for every parameter (see the module docstring)."""
    if isinstance(model, nn.Module) and x is not None:
        from flax import traverse_util

        abstract = jax.eval_shape(lambda k: model.init(k, x, **init_kwargs), jax.random.key(0))
        flat = traverse_util.flatten_dict(nn.unbox(dict(abstract.get("params", {}))))
        declared = {"/".join(map(str, p)): np.dtype(v.dtype).name for p, v in flat.items()}
        missing = sorted(set(values) - set(declared))
        extra = sorted(set(declared) - set(values))
        if missing or extra:
            raise ValueError(f"`variables` are not this model's on `x`: parameters "
                             f"{(missing or extra)[:5]} are {'extra' if missing else 'missing'} "
                             f"(the model on x of shape {getattr(x, 'shape', None)} has "
                             f"{len(declared)} parameters, the variables {len(values)}).")
        shapes = {"/".join(map(str, p)): tuple(v.shape) for p, v in flat.items()}
        for p, shape in shapes.items():
            if tuple(np.shape(values[p])) != shape:
                raise ValueError(f"`variables` are not this model's on `x`: {p!r} has shape "
                                 f"{tuple(np.shape(values[p]))}.")
        return declared
    dtypes = Counter(np.dtype(v.dtype).name for v in values.values())
    majority = dtypes.most_common(1)[0][0]
    return {p: majority for p in values}


def _spectrum(d: Description | None, shape: tuple[int, ...]) -> str | None:
    if d is None or d.distribution not in _ORTHOGONAL or len(shape) < 2:
        return None
    return "centre" if d.distribution == "delta_orthogonal" else "matrix"


def audit(model: Any, variables: Mapping[str, Any] | None, rules: Any, *, x: Any = None,
          alpha: float = 1e-3, init_kwargs: Mapping[str, Any] | None = None) -> AuditReport:
    """Compare every parameter of an initialized model with the rule meant for it.

    Args:
      model: a ``flax.linen.Module`` (with `variables`), an ``nnx.Module`` or an
        ``equinox.Module`` (`variables` None: the parameters are inside it), or None with
        `variables` a flat ``{path: array}`` mapping (a checkpoint's arrays).
      variables: linen: the variables dict (boxed by ``nn.with_partitioning`` or not, sharded or
        not); None for nnx and Equinox.
      rules: the rules the model was meant to be initialized with, as `jwinit.init_params` takes
        them (``{regular expression: initializer}``, first match wins); every pattern must match
        a parameter (rules of another model are refused, naming the pattern and the paths).
      x: linen only, optional: an input batch (or ``jax.ShapeDtypeStruct``); with it, the
        variables are checked against the model's own parameters (paths and shapes) and the
        declared dtypes are the model's.
      alpha: the probability that a correctly initialized model raises any flag (the tests'
        thresholds are Bonferroni-corrected for the number of tests).
      init_kwargs: keyword arguments of ``model.init`` (with `x`).

    Returns:
      An `AuditReport`: `rows` (one `AuditRow` per parameter), `flags` (``(path, kind)``),
      `unmatched`; ``print(report)`` shows the table, ``report.summary()`` one line.

    Raises:
      ValueError, TypeError: rules that match no parameter, variables that are not the model's,
      a rule that cannot produce a parameter's shape, a bad argument.

    Examples:
      >>> model = jwinit.models.MLP(depth=2, width=256, output_dim=10)
      >>> x = jnp.ones((4, 64))
      >>> rules = {r'kernel$': jwinit.he_normal(), r'bias$': jwinit.zeros()}
      >>> v = jwinit.init_params(model, jax.random.key(0), x, rules)
      >>> jwinit.audit(model, v, rules).flags
      []
      >>> k = v['params']['Dense_1']['kernel']
      >>> v['params']['Dense_1']['kernel'] = 0.5 * k  # a layer at half its scale
      >>> jwinit.audit(model, v, rules).flags
      [('Dense_1/kernel', 'std')]

    References:
      The bugs it is built to catch: huggingface/transformers #47458 (GPT-2's depth-scaled
      ``c_proj`` init never applied), foundation-model-stack #289 and pytorch #155588
      (truncation bounds in absolute units), allenai/OLMo #607 (extra factors found in an init).
    """
    if not (isinstance(alpha, float | int) and not isinstance(alpha, bool) and 0 < alpha < 1):
        raise ValueError(f"`alpha` must be a probability in (0, 1), got {alpha!r}.")
    matched = matched_params(model, variables, rules)
    if not matched:
        raise ValueError("`model`/`variables` have no floating parameters to audit.")
    values = {m.path: m.value for m in matched}
    declared = _declared_dtypes(model, x, values, dict(init_kwargs or {}))
    leaves, spectra = [], {}
    for m in matched:
        shape = tuple(int(d) for d in np.shape(m.value))
        dtype = np.dtype(m.value.dtype).name
        description = None
        if m.init is not None:
            try:
                description = describe(m.init, m.rule_shape, dtype)
            except (ValueError, TypeError) as e:
                raise ValueError(f"`rules`: the rule {m.pattern!r} cannot give {m.path!r} of "
                                 f"shape {shape} ({e}); are these rules for another "
                                 "model?") from None
        spectrum = _spectrum(description, m.rule_shape)
        if spectrum is not None:
            spectra[m.path] = m.to_rule_layout(m.value)
        leaves.append(_Leaf(path=m.path, shape=shape, dtype=dtype, declared=declared[m.path],
                            pattern=m.pattern, description=description, spectrum=spectrum))
    stats = _MEASURE(values, spectra, tuple((leaf.path, leaf.spectrum) for leaf in leaves))
    return AuditReport(leaves, stats, float(alpha))


# ------------------------------------------------------------------------------------------------
# files: what `jwinit audit` reads


def read_variables(path: str) -> dict[str, np.ndarray]:
    """A checkpoint's parameters as a flat ``{path: array}`` mapping, for ``audit(None, ...)``.

    An ``.npz`` file: its arrays by name, the names being '/'-joined parameter paths (as
    ``np.savez(f, **{p: v for p, v in flat.items()})`` writes them); a leading ``params/`` is
    dropped. An orbax checkpoint (a folder): restored with
    ``orbax.checkpoint.PyTreeCheckpointer``, flattened to '/'-joined paths, and its ``params``
    collection taken if it has one. Never unpickles.
    """
    import os

    if os.path.isdir(path):
        import orbax.checkpoint as ocp
        from flax import traverse_util

        try:
            tree = ocp.PyTreeCheckpointer().restore(os.path.abspath(path))
        except Exception as e:  # orbax raises many kinds for a folder that is not a checkpoint
            raise ValueError(f"`variables`: {path!r} is a folder but not an orbax checkpoint "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:200]}).") from None
        if isinstance(tree, Mapping) and "params" in tree:
            tree = tree["params"]
        flat = traverse_util.flatten_dict(nn.unbox(dict(tree))) if isinstance(tree, Mapping) \
            else {}
        arrays = {"/".join(map(str, k)): np.asarray(v) for k, v in flat.items()}
    else:
        from jwinit.results import read_npz

        arrays = read_npz(path, what="variables file")
        if arrays and all(k.startswith("params/") for k in arrays):
            arrays = {k[len("params/"):]: v for k, v in arrays.items()}
    arrays = {k: v for k, v in arrays.items() if np.issubdtype(v.dtype, np.inexact)
              or v.dtype.name == "bfloat16"}
    if not arrays:
        raise ValueError(f"`variables`: {path!r} holds no floating arrays to audit.")
    return arrays


def load_rules(spec: str) -> Any:
    """Rules from a Python file or module: ``rules.py`` (its ``RULES``), ``rules.py:NAME`` (a
    dict, or a function of no arguments returning one), or ``package.module:NAME``."""
    import importlib
    import importlib.util
    import os

    target, _, name = spec.partition(":")
    if target.endswith(".py"):
        if not os.path.isfile(target):
            raise FileNotFoundError(f"`rules`: no rules file {target!r}.")
        module_spec = importlib.util.spec_from_file_location("_jwinit_rules", target)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ValueError(f"`rules`: cannot import {target!r} ({e}); give a file rules.py, "
                             "rules.py:NAME or package.module:NAME.") from None
    name = name or "RULES"
    if not hasattr(module, name):
        raise ValueError(f"`rules`: {target!r} defines no {name!r}; define RULES = {{pattern: "
                         "initializer}} or name the dict (or function) after a colon.")
    rules = getattr(module, name)
    if callable(rules) and not isinstance(rules, Mapping):
        rules = rules()
    return rules
