"""The probe's verdict, defined in one place.

Two separate statements are made about a probed network, and reported side by side:

**The regime** (``'preserved'``, ``'vanishing'`` or ``'exploding'``), for the forward signal (the
second moment q^l of the pre-activations) and for the backward one (the second moment of the
gradients), from the measurement alone:

* the *steady rate* rho is the per-layer slope of log E[.] over the last half of the network (the
  least-squares slope of the log of the seed-mean second moment over the layers
  ``l >= depth // 2``), where transients (the approach of q to its fixed point) are over; for the
  backward signal, the growth per layer as it travels back towards the input, measured over the
  same layers (its per-layer factor chi1(q^l) depends on the settled forward q^l);
* the signal is **vanishing** if, at that rate, it would shrink by more than a factor
  `REGIME_FACTOR` = 10 over the whole depth (rho (depth - 1) < -log 10), **exploding** if it would
  grow by more than 10, **preserved** otherwise;
* at a finite width the measured rate is noisy: the log second moment of a width-n network is a
  random walk over the layers (per-layer variance at most 5 / n for the usual activations, ReLU's
  constant, Hanin & Nica 2019; divided by S for the mean of S seeds), and the least-squares slope of
  a random walk over m layers has variance 6/5 of the per-layer variance over m. So the change
  rho (depth - 1) must exceed log 10 by `rate_margin` = 3 of its standard errors, plus the drift
  2.5 (depth - 1) / n, to be called vanishing or exploding; and the total measured ratio must
  agree in direction (a signal whose last layer is below its first is not exploding). At large
  widths the margin vanishes; at width 128 and depth 50 a random walk is not called a trend.

So an exponential trend with a depth scale 1 / |rho| well below the depth is vanishing or
exploding, while a fixed point, a transient or a power law (tanh at sigma_w2 = 1, sigma_b2 = 0,
whose q^l ~ 1 / (2 l)) is preserved, whatever the width: the threshold does not narrow as the width
grows, and the measured rate converges to the mean-field one. A signal that reaches exactly 0
(zero weights, or a float32 underflow) is vanishing; one that overflows to inf or NaN is
exploding, and so is the backward direction of a network whose forward pass overflowed (its
gradients are meaningless, not small). The overall verdict is the worse of the two directions
(exploding, then vanishing, then preserved).

**Agreement with mean-field theory**, a number with its tolerance: the measured total log ratios
log(q^L / q^1) and log(g^1 / g^L) minus those `jwinit.theory.predict` gives for the network, each
within the finite-width tolerance `theory_tolerance` (drift and four standard deviations of the
log of a squared norm after L - 1 random layers of width n, Hanin & Nica 2019, averaged over the
seeds). The theory also gives the phase of the scheme (ordered: chi1 < 1, critical, chaotic:
chi1 > 1, with chi1 at the fixed point q*) and its depth scale -1 / log(chi1).

`numerics` names float32 trouble: 'underflow' (a second moment that reached exactly 0 although
the weights are not zero: it fell below float32's smallest number), 'zero' (exactly 0 by
construction: zero weights and biases), 'zero or underflow' (a scheme the theory cannot read),
'overflow' (inf or NaN), or 'ok'.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jwinit._checks import renamed

__all__ = ["VERDICTS", "PHASES", "REGIME_FACTOR", "Assessment", "assess", "steady_rate",
           "regime", "rate_margin", "theory_tolerance", "finite_width_tolerance"]

#: The three verdicts.
VERDICTS = ("preserved", "vanishing", "exploding")
#: The mean-field phases.
PHASES = ("ordered", "critical", "chaotic")
#: A signal that would change by more than this factor over the depth at its steady rate is
#: vanishing or exploding.
REGIME_FACTOR = 10.0


@renamed(num_seeds="seeds")
def theory_tolerance(depth: int, width: int, seeds: int = 1) -> float:
    """How far (in log units) a measured total log ratio may lie from the mean-field prediction.

    ``2.5 (L - 1) / n + 4 sqrt(5 (L - 1) / (n S))``: after L - 1 random layers of width n the log
    of a squared norm has a drift of about -2.5 (L - 1) / n and a standard deviation of about
    sqrt(5 (L - 1) / n) (ReLU's constants, the largest among the usual activations; Hanin & Nica
    2019); the seed mean of S networks divides the deviation by sqrt(S). Four standard deviations,
    plus 1e-3 for float32 rounding.
    """
    steps = max(depth - 1, 0)
    return 2.5 * steps / width + 4.0 * math.sqrt(5.0 * steps / (width * seeds)) + 1e-3


@renamed(num_seeds="seeds")
def finite_width_tolerance(depth: int, width: int, seeds: int = 1) -> float:
    """Alias of `theory_tolerance` (kept for code written against earlier versions)."""
    return theory_tolerance(depth, width, seeds)


def _log_profile(values: np.ndarray) -> np.ndarray:
    """log of the seed mean per layer ((seeds, depth) -> (depth,)); -inf at 0, nan if not finite."""
    v = np.asarray(values, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = np.mean(v, axis=0) if v.ndim == 2 else v
        return np.log(m)


def steady_rate(log_profile: np.ndarray) -> float:
    """Least-squares slope of a per-layer log profile over its last half (layers >= depth // 2).

    -inf when the profile reaches 0 (log -inf) in that half, +inf when it reaches inf, nan when it
    holds NaN. A depth-1 profile has rate 0.
    """
    p = np.asarray(log_profile, np.float64)
    tail = p[len(p) // 2:] if len(p) > 3 else p
    if tail.size < 2:
        return 0.0
    if np.any(np.isnan(tail)):
        return math.nan
    if np.any(tail == -np.inf):
        return -math.inf
    if np.any(tail == np.inf):
        return math.inf
    x = np.arange(tail.size, dtype=np.float64)
    x -= x.mean()
    return float(np.sum(x * (tail - tail.mean())) / np.sum(x * x))


def rate_margin(depth: int, width: int | None, seeds: int = 1) -> float:
    """The finite-width noise allowance (log units) on the change rho (depth - 1) of a steady rate.

    ``3 (L - 1) sqrt(6 / 5 * 5 / (n S m)) + 2.5 (L - 1) / n`` with m = the number of layers the
    rate is fitted over (the last half): three standard errors of the least-squares slope of a
    random walk whose per-layer variance is 5 / (n S) (the log second moment of S width-n
    networks; ReLU's constant, Hanin & Nica 2019), plus its drift. 0 for an infinite width (None),
    a theory profile.

    >>> round(rate_margin(50, 128, 1), 2)  # a single network of width 128: a factor ~ e^7
    7.32
    >>> round(rate_margin(50, 4096, 8), 2)  # wide and several seeds: small
    0.43
    """
    if width is None or depth < 2:
        return 0.0
    steps = depth - 1
    m = max(depth - depth // 2 if depth > 3 else depth, 2)
    se = steps * math.sqrt(1.2 * 5.0 / (width * max(seeds, 1) * m))
    return 3.0 * se + 2.5 * steps / width


def regime(rate: float, depth: int, margin: float = 0.0, total: float | None = None) -> str:
    """'vanishing' / 'exploding' when the steady rate changes the signal by more than
    `REGIME_FACTOR` (and `margin`, log units, for finite-width noise: `rate_margin`) over the
    depth, and the total log ratio `total` (when given) has the same sign; 'preserved' otherwise
    (NaN counts as exploding)."""
    if math.isnan(rate):
        return "exploding"
    change = rate * max(depth - 1, 1) if math.isfinite(rate) else rate
    bound = math.log(REGIME_FACTOR) + (margin if math.isfinite(rate) else 0.0)
    agrees = lambda sign: (total is None or not math.isfinite(rate)  # noqa: E731
                           or math.isnan(total) or sign * total > 0)
    if change < -bound and agrees(-1):
        return "vanishing"
    if change > bound and agrees(1):
        return "exploding"
    return "preserved"


@dataclasses.dataclass(frozen=True)
class Assessment:
    """The regime of one probe and its agreement with mean-field theory.

    The regime of a direction (forward: the second moment q^l of the pre-activations; backward:
    that of the gradients) is read off its *steady rate* rho, the least-squares per-layer slope of
    the log of the seed-mean second moment over the last half of the layers: 'vanishing' if
    rho (depth - 1) < -log 10 (the signal would shrink more than 10 times over the depth at that
    rate), 'exploding' if rho (depth - 1) > log 10, 'preserved' otherwise. Exponential trends
    whose depth scale 1 / |rho| is short compared with the depth are vanishing or exploding; fixed
    points, transients and power laws are preserved; the rule does not depend on the width. A
    signal at exactly 0 is vanishing; inf or NaN is exploding (and so is the backward direction of
    a network whose forward pass overflowed). The agreement with `jwinit.theory.predict` is a
    separate statement: the measured total log ratios within `theory_tolerance` of the predicted
    ones.

    Attributes:
      verdict: the overall regime: 'preserved', 'vanishing' or 'exploding' (the worse direction).
      forward, backward: the regime of each direction.
      forward_rate, backward_rate: the steady per-layer rates (log units; -inf for a signal that
        reached 0).
      log_forward: seed mean of log(forward[:, -1] / forward[:, 0]).
      log_backward: seed mean of log(backward[:, 0] / backward[:, -1]).
      numerics: 'ok', 'underflow', 'zero', 'zero or underflow' or 'overflow' (float32 trouble,
        named).
      theory_forward, theory_backward: the predicted total log ratios (None without a prediction).
      theory_regime: the regime the prediction has by the same rule (None without one).
      tolerance: the finite-width tolerance of the agreement (`theory_tolerance`).
      agrees_with_theory: both measured log ratios within `tolerance` of the prediction (None
        without a prediction or with non-finite measurements).
      phase: 'ordered', 'critical' or 'chaotic' from chi1 at q* (None without a prediction).
      chi1: chi1 at the fixed point q* (None without a prediction).
      depth_scale: -1 / log(chi1) in layers (inf at criticality; None without a prediction).
    """

    verdict: str
    forward: str
    backward: str
    forward_rate: float
    backward_rate: float
    log_forward: float
    log_backward: float
    numerics: str = "ok"
    theory_forward: float | None = None
    theory_backward: float | None = None
    theory_regime: str | None = None
    tolerance: float = 0.0
    agrees_with_theory: bool | None = None
    phase: str | None = None
    chi1: float | None = None
    depth_scale: float | None = None


def _worst(a: str, b: str) -> str:
    return "exploding" if "exploding" in (a, b) else "vanishing" if "vanishing" in (a, b) else (
        "preserved")


def _seed_log_ratio(num: np.ndarray, den: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.log(np.asarray(num, np.float64)) - np.log(np.asarray(den, np.float64))
    return float(np.mean(r)) if r.size else math.nan


def _direction(values: np.ndarray, reverse: bool, depth: int, margin: float = 0.0
               ) -> tuple[str, float, float]:
    """(regime, steady rate, total log ratio) of one direction's (seeds, depth) statistic.

    Both rates are measured over the last half of the layer indices, where the forward signal
    has settled (the backward per-layer factor chi1(q^l) depends on the forward q^l there); the
    backward rate is the growth per layer as the gradient travels towards the input.
    """
    mean = np.mean(np.asarray(values, np.float64), axis=0)
    if np.any(np.isnan(mean)):
        rate = math.nan
    elif np.any(np.isinf(mean)):
        rate = math.inf  # overflow, in either direction: exploding
    elif np.any(mean == 0):
        rate = -math.inf  # a signal that reached exactly 0 anywhere is dead: vanishing
    else:
        rate = steady_rate(_log_profile(values))
        rate = -rate if reverse else rate
    v = np.asarray(values, np.float64)
    total = _seed_log_ratio(v[:, 0], v[:, -1]) if reverse else _seed_log_ratio(v[:, -1], v[:, 0])
    if np.any(~np.isfinite(v)):
        total = math.nan
    return regime(rate, depth, margin, total), rate, total


def _numerics(result: Any) -> str:
    f = np.asarray(result.forward, np.float64)
    b = np.asarray(result.backward, np.float64)
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(b))):
        return "overflow"
    if not (np.any(f == 0) or np.any(b == 0)):
        return "ok"
    sw, sb = getattr(result, "sigma_w2", None), getattr(result, "sigma_b2", None)
    if sw is None:  # nothing tells an exact zero from a flush to zero
        return "zero or underflow"
    return "zero" if sw == 0 and not sb else "underflow"


def assess(result: Any, *, tolerance: float | None = None, theory: bool = True) -> Assessment:
    """The regime of a `ProbeResult` and its agreement with the theory (see the module doc).

    Args:
      result: a `ProbeResult`.
      tolerance: the agreement tolerance in log units (default: `theory_tolerance` of the
        result's depth, width and number of seeds). It does not enter the regime.
      theory: compute the prediction, the phase and the agreement.
    """
    depth = result.depth
    margin = rate_margin(depth, result.width, result.num_seeds)
    fwd, f_rate, lf = _direction(result.forward, False, depth, margin)
    bwd, b_rate, lb = _direction(result.backward, True, depth, margin)
    if not np.all(np.isfinite(np.asarray(result.forward, np.float64))):
        bwd = "exploding"  # the gradients of an overflowed network are meaningless, not small
    tol = (theory_tolerance(depth, result.width, result.num_seeds) if tolerance is None
           else float(tolerance))
    pred = result.prediction() if theory else None
    tf = tb = th_regime = agrees = None
    if pred is not None:
        pf, pb = (np.asarray(p, np.float64) for p in pred)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            tf = float(np.log(pf[-1]) - np.log(pf[0]))
            tb = float(np.log(pb[0]) - np.log(pb[-1]))
            th_f = regime(-math.inf if np.any(pf == 0) else steady_rate(np.log(pf)), depth)
            th_b = regime(-math.inf if np.any(pb == 0) else -steady_rate(np.log(pb)), depth)
        th_regime = _worst(th_f, th_b)
        tf = tf if math.isfinite(tf) else None
        tb = tb if math.isfinite(tb) else None
        if tf is not None and tb is not None and math.isfinite(lf) and math.isfinite(lb):
            agrees = abs(lf - tf) <= tol and abs(lb - tb) <= tol
    phase = chi1 = scale = None
    sw, sb = getattr(result, "sigma_w2", None), getattr(result, "sigma_b2", None)
    if theory and sw is not None and sb is not None and not result.activation.startswith("custom"):
        phase, chi1, scale = _phase(result.activation, sw, sb)
    return Assessment(
        verdict=_worst(fwd, bwd), forward=fwd, backward=bwd, forward_rate=f_rate,
        backward_rate=b_rate, log_forward=lf, log_backward=lb,
        numerics=_numerics(result), theory_forward=tf, theory_backward=tb,
        theory_regime=th_regime, tolerance=tol, agrees_with_theory=agrees, phase=phase,
        chi1=chi1, depth_scale=scale,
    )


def _phase(activation: str, sigma_w2: float, sigma_b2: float
           ) -> tuple[str | None, float | None, float | None]:
    """(phase, chi1 at q*, depth scale -1 / log chi1) by `jwinit.theory`, or Nones."""
    from jwinit import theory

    try:
        chi = float(theory.chi1(activation, sigma_w2, sigma_b2))
    except (ValueError, TypeError):
        return None, None, None
    if not math.isfinite(chi):
        return None, None, None
    if abs(chi - 1.0) <= 1e-5:
        return "critical", chi, math.inf
    scale = -1.0 / math.log(chi) if chi > 0 else 0.0
    return ("ordered" if chi < 1 else "chaotic"), chi, abs(scale)
