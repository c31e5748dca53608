"""`ProbeResult`: the per-layer statistics of a probed MLP, its theory prediction and its verdict.

The statistic fields of `ProbeResult` are generated from the statistics table
(`jwinit.probe._stats.TABLE`), so a new statistic appears here, in sweep rows and in the docs by
itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jwinit._display import treescope_repr
from jwinit.probe._stats import STATS, TABLE
from jwinit.probe._verdict import Assessment, assess

__all__ = ["ProbeResult", "make_result", "predict_profile"]

#: Every per-layer statistic of a result: the forward ones and 'backward'.
FIELDS: tuple[str, ...] = tuple(s.name for s in TABLE)


class _ProbeResultMethods:
    """Methods of `ProbeResult` (its fields are generated from the statistics table)."""

    forward: np.ndarray
    backward: np.ndarray
    depth: int
    width: int

    @property
    def num_seeds(self) -> int:
        return int(self.forward.shape[0])

    def stat(self, name: str) -> np.ndarray:
        """The (num_seeds, depth) array of statistic `name` (one of `STATS` or 'backward')."""
        if name not in FIELDS:
            raise ValueError(f"`name` must be one of {FIELDS}, got {name!r}.")
        return getattr(self, name)

    def prediction(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``theory.predict`` for this network: (forward, backward) per layer, or None.

        None when the theory cannot describe the activation or scheme (a custom activation, a
        foreign initializer, a bias with a nonzero mean).
        """
        return predict_profile(self)

    def assess(self, *, tolerance: float | None = None, theory: bool = True) -> Assessment:
        """The regime and the agreement with mean-field theory (see `jwinit.probe.Assessment`).

        Args:
          tolerance: the agreement tolerance in log units (default: `theory_tolerance` of the
            depth, width and number of seeds); it does not enter the regime.
          theory: compute the prediction, the phase and the agreement.
        """
        return assess(self, tolerance=tolerance, theory=theory)

    def verdict(self, *, tolerance: float | None = None, theory: bool = False) -> str:
        """The regime: 'preserved', 'vanishing' or 'exploding' (defined on
        `jwinit.probe.Assessment`: from the measurement alone, so neither `tolerance` nor
        `theory`, which only concern the agreement with the theory, changes it); never raises on
        NaN/inf.

        Examples:
          >>> r = jwinit.probe_mlp(jax.random.key(0), jwinit.he_normal(), 'relu', depth=32,
          ...                      width=256, batch_size=256, seeds=4)
          >>> r.verdict()
          'preserved'
        """
        return self.assess(tolerance=tolerance, theory=theory).verdict

    def __treescope_repr__(self, path: Any, subtree_renderer: Any) -> Any:
        """Treescope (notebooks): the verdict and its assessment, then the statistics."""
        a = self.assess()
        return treescope_repr(self, {
            "verdict": a.verdict, "assessment": a, "activation": self.activation,
            "depth": self.depth, "width": self.width, "seeds": self.num_seeds,
            "forward": self.forward, "backward": self.backward}, path, subtree_renderer)

    def mean_over_seeds(self) -> dict[str, np.ndarray]:
        """Every statistic averaged over seeds: {name: (depth,)}."""
        return {name: np.mean(self.stat(name), axis=0) for name in FIELDS}


_META: list[tuple[str, Any, Any]] = [
    ("scheme", str, ""),
    ("activation", str, ""),
    ("depth", int, 0),
    ("width", int, 0),
    ("batch_size", int, 0),
    ("input_dim", int, 0),
    ("precision", str | None, None),
    ("input_correlation", float, 0.5),
    ("sigma_w2", float | None, None),
    ("sigma_b2", float | None, None),
    ("seeds", tuple, ()),
    ("kernel_init", Callable | None, dataclasses.field(default=None, repr=False, compare=False)),
    ("bias_init", Callable | None, dataclasses.field(default=None, repr=False, compare=False)),
]

_DOC = """Per-layer statistics of a probed MLP; every array has shape (seeds, depth).

Column l describes the pre-activation h^{l+1} (the output of layer l + 1).

Attributes:
{stats}
  scheme, activation: labels.
  depth, width, batch_size, input_dim: the network.
  precision: the matmul precision.
  input_correlation: the correlation of the input pairs.
  sigma_w2, sigma_b2: the mean-field variances (width * Var(W) of a hidden layer and Var(b)) when
    the theory can describe the scheme (`jwinit.theory.variances_of`); the prediction uses them.
  seeds: the seed of each row.
""".replace("{stats}", "\n".join(f"  {s.name}: {s.doc}" for s in TABLE))

ProbeResult = dataclasses.make_dataclass(
    "ProbeResult",
    [(name, np.ndarray) for name in FIELDS] + _META,
    bases=(_ProbeResultMethods,),
    frozen=True,
    namespace={"__doc__": _DOC, "__module__": "jwinit.probe"},
)


def make_result(stats: np.ndarray, back: np.ndarray, *, cfg: Any, seeds: tuple[int, ...],
                scheme: str, activation: str, sigma_w2: float | None = None,
                sigma_b2: float | None = None, kernel_init: Callable[..., Any] | None = None,
                bias_init: Callable[..., Any] | None = None) -> Any:
    """A `ProbeResult` from (seeds, depth, len(STATS)) statistics and (seeds, depth) gradients."""
    fields = {name: np.asarray(stats[..., i], np.float64) for i, name in enumerate(STATS)}
    return ProbeResult(
        **fields, backward=np.asarray(back, np.float64), scheme=scheme, activation=activation,
        depth=cfg.depth, width=cfg.width, batch_size=cfg.batch, input_dim=cfg.input_dim,
        precision=cfg.precision, input_correlation=cfg.input_correlation, sigma_w2=sigma_w2,
        sigma_b2=sigma_b2, seeds=seeds, kernel_init=kernel_init, bias_init=bias_init,
    )



def predict_profile(result: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``theory.predict`` per layer for the network of `result`, or None."""
    from jwinit import theory

    if not result.depth or result.activation.startswith("custom"):
        return None
    kwargs: dict[str, Any] = {}
    if result.kernel_init is not None:
        scheme: Any = result.kernel_init
        kwargs["bias_init"] = result.bias_init
    elif result.sigma_w2 is not None and result.sigma_b2 is not None:
        scheme = (result.sigma_w2, result.sigma_b2)
    else:
        return None
    try:
        # in float64: a prediction that float32 would flush to 0 (a vanishing scheme deep down)
        # stays a positive number, so the theory never mistakes an underflow for a zero signal
        with jax.enable_x64(True):
            out = theory.predict(
                scheme, result.activation, result.depth, width=result.width,
                input_dim=result.input_dim or None, input_q=1.0, first_layer_bias=True,
                **kwargs,
            )
            out = (np.asarray(out.forward, np.float64), np.asarray(out.backward, np.float64))
    except (ValueError, TypeError):  # a scheme or activation the theory cannot describe
        return None
    fwd, bwd = out[0].reshape(-1), out[1].reshape(-1)
    if fwd.size != result.depth or bwd.size != result.depth:
        return None
    return fwd, bwd

