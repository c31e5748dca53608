"""jwinit.critical: the edge of chaos of every registered activation, or a reason why none."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jwinit
from jwinit import theory


@pytest.mark.parametrize("sigma_b2", [0.0, 0.05])
@pytest.mark.parametrize("name", jwinit.activation_names())
def test_every_activation_has_a_critical_point_or_a_reason(name, sigma_b2):
    # which activations have no edge of chaos, from the theory (see jwinit.critical): the smooth
    # ReLU-likes (chi1 < 1 wherever q* is finite) at both bias variances, and every positively
    # homogeneous one (ReLU family, identity) once a bias variance makes q* grow without bound
    smooth = {"gelu", "gelu_tanh", "silu", "softplus", "swish"}
    homogeneous = {"abs", "identity", "leaky_relu", "linear", "relu"}
    expect_none = name in smooth or (sigma_b2 > 0 and name in homogeneous)
    if expect_none:
        with pytest.raises(ValueError) as info:
            jwinit.critical(name, sigma_b2)
        msg = str(info.value)
        assert "no edge of chaos" in msg and repr(jwinit.get_activation(name).label) in msg
        return
    c = jwinit.critical(name, sigma_b2)
    assert math.isfinite(c.q_star) and abs(c.chi1 - 1) <= 1e-6 and c.xi_c == math.inf
    # the same numbers from the theory module directly
    assert float(theory.chi1(name, c.sigma_w2, sigma_b2)) == pytest.approx(1.0, abs=1e-4)
    kernel_init, bias_init = c
    d = jwinit.describe(kernel_init, (300, 200))
    assert d.variance == pytest.approx(c.sigma_w2 / 300, rel=1e-6)
    b = bias_init(jax.random.key(0), (20000,))
    if sigma_b2 == 0:
        assert np.all(np.asarray(b) == 0)
    else:  # N(0, sigma_b2): the sample variance within 5 standard errors (sqrt(2/n) relative)
        assert abs(float(jnp.var(b)) / sigma_b2 - 1) <= 5 * math.sqrt(2 / 20000)


def test_known_critical_points():
    assert jwinit.critical("tanh", 0.05).sigma_w2 == pytest.approx(1.76095, abs=1e-4)
    assert jwinit.critical("relu").sigma_w2 == 2.0
    assert jwinit.critical("leaky_relu:0.2").sigma_w2 == pytest.approx(2 / 1.04, rel=1e-6)
    # odd activations at sigma_b2 = 0: where the collapsed state q* = 0 loses stability,
    # sigma_w2 = 1 / phi'(0)^2 (Poole et al. 2016)
    assert jwinit.critical("erf").sigma_w2 == pytest.approx(math.pi / 4, rel=1e-6)
    assert jwinit.critical("tanh").sigma_w2 == pytest.approx(1.0, rel=1e-6)
    assert jwinit.critical("tanh").q_star == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name, sigma_b2", [
    ("gelu", 0.0), ("gelu", 0.05), ("silu", 0.0), ("silu", 0.05), ("silu", 0.3),
    ("softplus", 0.0), ("softplus", 0.05), ("softplus", 0.3),
])
def test_the_stated_reason_for_relu_like_smooth_activations_holds(name, sigma_b2):
    # "wherever the fixed point q* is finite, chi1 < 1; chi1 reaches 1 only as q* diverges"
    with pytest.raises(ValueError, match="no edge of chaos with a finite fixed point"):
        jwinit.critical(name, sigma_b2)
    finite = []
    for sw2 in np.linspace(0.5, 4.0, 36):
        q = float(theory.fixed_point(name, sw2, sigma_b2))
        if math.isfinite(q):
            finite.append(float(theory.chi1(name, sw2, sigma_b2)))
            assert finite[-1] < 1.0, (sw2, q, finite[-1])
        else:
            assert sw2 >= 1.9  # q* diverges only near and beyond the ReLU-like sigma_w2 = 2
    assert len(finite) >= 10


def test_gelu_with_a_larger_bias_variance_has_an_edge_of_chaos():
    c = jwinit.critical("gelu", 0.3)
    assert c.sigma_w2 == pytest.approx(1.956, abs=1e-3)
    assert c.q_star == pytest.approx(8.77, abs=0.01)


def test_relu_family_with_a_bias_variance_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="grows without bound"):
        jwinit.critical("relu", 0.1)


def test_orthogonal_weights_are_scaled_isometries():
    c = jwinit.critical("tanh", 1e-3, weights="orthogonal")
    w = np.asarray(c.kernel_init(jax.random.key(1), (128, 128)), np.float64)
    np.testing.assert_allclose(w @ w.T, c.sigma_w2 * np.eye(128), atol=1e-5)


@pytest.mark.parametrize("kwargs, words", [
    (dict(activation="tanh", weights="uniform"), ["`weights`", "uniform", "orthogonal"]),
    (dict(activation="tanh", sigma_b2=-0.1), ["`sigma_b2`", "-0.1"]),
    (dict(activation="tahn"), ["tahn"]),
])
def test_bad_arguments(kwargs, words):
    with pytest.raises((ValueError, TypeError)) as e:
        jwinit.critical(**kwargs)
    for w in words:
        assert w in str(e.value)
