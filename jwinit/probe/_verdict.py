"""The probe's verdict: is the signal preserved, vanishing or exploding through the network?"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["VERDICTS", "Assessment", "assess", "finite_width_tolerance"]

#: The three verdicts.
VERDICTS = ("preserved", "vanishing", "exploding")


def finite_width_tolerance(depth: int, width: int, num_seeds: int = 1) -> float:
    """Half-width of the band of log(second moment ratio) that counts as 'preserved'.

    ``log 2 + 2.5 (depth - 1) / width + 3 sqrt(5 (depth - 1) / (width * num_seeds))``: a factor
    of 2, plus the finite-width drift and three standard deviations of the finite-width spread of
    the log of a squared norm after ``depth - 1`` random layers. The constants are those of ReLU
    networks (per layer, Var log = 5 / width and the drift -Var / 2; Hanin & Nica 2019), the
    largest among the usual activations, so the band is conservative for smooth ones.
    """
    steps = max(depth - 1, 0)
    return math.log(2.0) + 2.5 * steps / width + 3.0 * math.sqrt(5.0 * steps / (width * num_seeds))


@dataclasses.dataclass(frozen=True)
class Assessment:
    """The verdict of one probe, with the numbers behind it.

    Attributes:
      verdict: 'preserved', 'vanishing' or 'exploding' (the worse of the two directions, exploding
        first; non-finite statistics count as exploding).
      forward, backward: the verdict of each direction.
      log_forward: seed mean of log(forward[:, -1] / forward[:, 0]).
      log_backward: seed mean of log(backward[:, 0] / backward[:, -1]).
      tolerance: the finite-width band (see `finite_width_tolerance`).
      transient_forward, transient_backward: the part of the predicted log ratio that is a transient
        (approach to a fixed point), not a per-layer trend; the band is centred there. 0 without a
        prediction.
      theory_forward, theory_backward: the predicted log ratios (None without a prediction).
      agrees_with_theory: whether both measured log ratios lie within `tolerance` of the prediction
        (None without a prediction).
    """

    verdict: str
    forward: str
    backward: str
    log_forward: float
    log_backward: float
    tolerance: float
    transient_forward: float = 0.0
    transient_backward: float = 0.0
    theory_forward: float | None = None
    theory_backward: float | None = None
    agrees_with_theory: bool | None = None


def _classify(log_ratio: float, centre: float, tol: float) -> str:
    if not math.isfinite(log_ratio):
        return "vanishing" if log_ratio == -math.inf else "exploding"
    if log_ratio - centre > tol:
        return "exploding"
    if log_ratio - centre < -tol:
        return "vanishing"
    return "preserved"


def _seed_log_ratio(num: np.ndarray, den: np.ndarray) -> float:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if not (np.all(np.isfinite(num)) and np.all(np.isfinite(den))):
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(num) - np.log(den)
    if np.any(np.isnan(r)):
        return math.nan
    return float(np.mean(r))


def _transient(pred: np.ndarray, reverse: bool) -> tuple[float, float]:
    """(total predicted log ratio, its transient part) of a predicted per-layer profile.

    The steady part is (depth - 1) times the per-layer rate where the profile has settled (the
    last layer of the forward pass, whose q is closest to the fixed point; for the backward pass
    the factor chi1(q^L) between the last two layers); the rest is the transient.
    """
    p = np.asarray(pred, np.float64)
    if p.size < 2 or not np.all(np.isfinite(p)) or np.any(p <= 0):
        return math.nan, 0.0
    if reverse:  # backward[l - 1] = chi(q^l) backward[l]: the steady rate is at the output end
        total = math.log(p[0] / p[-1])
        rate = math.log(p[-2] / p[-1])
    else:
        total = math.log(p[-1] / p[0])
        rate = math.log(p[-1] / p[-2])
    return total, total - (p.size - 1) * rate




def _all_finite(a: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(a)))


def _nan_as_inf(x: float) -> float:
    return math.inf if math.isnan(x) else x


def assess(result: Any, *, tolerance: float | None = None, theory: bool = True) -> Assessment:
    """The verdict of a `ProbeResult` with its numbers (see `Assessment`)."""
    tol = (
        finite_width_tolerance(result.depth, result.width, result.num_seeds)
        if tolerance is None else float(tolerance)
    )
    lf = _seed_log_ratio(result.forward[:, -1], result.forward[:, 0])
    lb = _seed_log_ratio(result.backward[:, 0], result.backward[:, -1])
    cf = cb = 0.0
    tf = tb = None
    agrees = None
    pred = result.prediction() if theory else None
    if pred is not None:
        tf, cf = _transient(pred[0], reverse=False)
        tb, cb = _transient(pred[1], reverse=True)
        tf = None if math.isnan(tf) else tf
        tb = None if math.isnan(tb) else tb
        if tf is not None and tb is not None and math.isfinite(lf) and math.isfinite(lb):
            agrees = abs(lf - tf) <= tol and abs(lb - tb) <= tol
    if not _all_finite(result.forward) or not _all_finite(result.backward):
        fv = "exploding" if not _all_finite(result.forward) else _classify(lf, cf, tol)
        bv = "exploding" if not _all_finite(result.backward) else _classify(lb, cb, tol)
        lf = lf if math.isfinite(lf) else math.nan
    else:
        fv, bv = _classify(_nan_as_inf(lf), cf, tol), _classify(_nan_as_inf(lb), cb, tol)
    if "exploding" in (fv, bv):
        overall = "exploding"
    elif "vanishing" in (fv, bv):
        overall = "vanishing"
    else:
        overall = "preserved"
    return Assessment(
        verdict=overall, forward=fv, backward=bv, log_forward=lf, log_backward=lb,
        tolerance=tol, transient_forward=cf, transient_backward=cb, theory_forward=tf,
        theory_backward=tb, agrees_with_theory=agrees,
    )
