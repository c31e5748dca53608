"""`jwinit.theory.kernel_fn`: the infinite-width NNGP and NTK of a fully-connected network.

Checked against neural-tangents' ``stax`` kernels (float64 values written by
``tests/reference/neural_tangents_kernels.py``, neural-tangents 0.6.5) for relu, erf and exact
gelu, three depths, three (sigma_w^2, sigma_b^2) pairs and both parameterizations; against the
empirical NTK (`jwinit.ntk`) of wide Flax MLPs at init, within the seeds' standard error; and
for its closed forms against its own quadrature (the activation as a callable).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jwinit
from jwinit import theory

REFERENCE = os.path.join(os.path.dirname(__file__), "reference", "neural_tangents_kernels.npz")


def x64():
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64()


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("activation", ["relu", "erf", "gelu"])
def test_kernels_equal_neural_tangents_stax_to_1e_6(reference, activation):
    x1, x2, width = reference["x1"], reference["x2"], int(reference["width"])
    checked = 0
    with x64():
        for depth in (1, 3, 10):
            for sw2, sb2 in ((2.0, 0.0), (1.5, 0.05), (0.8, 0.3)):
                for param in ("ntk", "standard"):
                    f = theory.kernel_fn(activation, depth, sw2, sb2, parameterization=param,
                                         width=width if param == "standard" else None)
                    k = f(x1, x2)
                    assert k.nngp.dtype == jnp.float64 and k.nngp.shape == (5, 4)
                    tag = f"{activation}/{depth}/{sw2}/{sb2}/{param}"
                    for name in ("nngp", "ntk"):
                        want = reference[f"{tag}/{name}"]
                        np.testing.assert_allclose(getattr(k, name), want, rtol=1e-6,
                                                   atol=1e-9 * np.abs(want).max(),
                                                   err_msg=f"{tag}/{name}")
                        checked += 1
    assert checked == 36


def test_closed_forms_equal_the_quadrature_for_inputs_of_different_norms():
    """relu and erf by their closed forms (unequal variances) and by quadrature of the same
    functions passed as callables: the same kernels (float64, 1e-8)."""
    rng = np.random.RandomState(1)
    x1 = rng.normal(size=(4, 6)) * np.array([[0.3], [1.0], [2.0], [5.0]])
    x2 = rng.normal(size=(3, 6))
    with x64():
        for name, fn in (("relu", jax.nn.relu), ("erf", jax.scipy.special.erf)):
            closed = theory.kernel_fn(name, 3, 1.7, 0.2)(x1, x2)
            quad = theory.kernel_fn(fn, 3, 1.7, 0.2)(x1, x2)
            np.testing.assert_allclose(closed.nngp, quad.nngp, rtol=1e-8, err_msg=name)
            np.testing.assert_allclose(closed.ntk, quad.ntk, rtol=1e-8, err_msg=name)


def test_the_diagonal_follows_the_length_map_and_x2_defaults_to_x1():
    """An input's NNGP variance is theory.q_map iterated from sigma_w2 |x|^2 / d + sigma_b2; the
    NTK diagonal of the 'ntk' parameterization is sum over layers of q^l prod chi (exact)."""
    x = np.random.RandomState(2).normal(size=(3, 5))
    with x64():
        f = theory.kernel_fn("tanh", 4, 1.3, 0.1)
        k = f(x)
        np.testing.assert_allclose(k.nngp, f(x, x).nngp, rtol=1e-12)
        np.testing.assert_allclose(k.nngp, k.nngp.T, rtol=1e-12)
        q = 1.3 * np.sum(x * x, axis=1) / 5 + 0.1
        ntk = q.copy()
        for _ in range(4):
            chi = np.asarray([theory.chi1("tanh", 1.3, 0.1, q=qi) for qi in q])
            q = np.asarray([theory.q_map("tanh", 1.3, 0.1, qi) for qi in q])
            ntk = q + chi * ntk
        np.testing.assert_allclose(np.diag(k.nngp), q, rtol=1e-9)
        np.testing.assert_allclose(np.diag(k.ntk), ntk, rtol=1e-9)


def test_standard_ntk_is_the_expected_empirical_ntk_of_a_wide_flax_mlp():
    """A jwinit.models.MLP (ReLU, depth 2, width 1024, He weights, N(0, 0.05) biases) at init:
    the empirical NTK (`jwinit.ntk`, averaged over its 3 outputs) over 6 seeds equals the
    'standard' kernel within 4 standard errors of the seed mean, entry by entry."""
    x = np.asarray(jwinit.data.digits().x_train[:6], np.float32)
    sw2, sb2, width = 2.0, 0.05, 1024
    model = jwinit.models.MLP(depth=2, width=width, output_dim=3, activation="relu")
    rules = {r"kernel$": jwinit.variance_scaling(sw2, "fan_in", "normal"),
             r"bias$": jwinit.normal(sb2 ** 0.5)}
    samples = []
    for seed in range(6):
        variables = jwinit.init_params(model, jax.random.key(seed), x[:1], rules)
        samples.append(np.asarray(jwinit.ntk(model, variables, x)))
    samples = np.stack(samples)
    mean, se = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(len(samples))
    want = np.asarray(theory.kernel_fn("relu", 2, sw2, sb2, parameterization="standard",
                                       width=width)(x).ntk)
    z = np.abs(mean - want) / se
    assert np.all(z < 4), (z.max(), mean, want)
    # the test has the power to tell parameterizations apart: the 'ntk' one is far off
    other = np.asarray(theory.kernel_fn("relu", 2, sw2, sb2)(x).ntk)
    assert np.max(np.abs(mean - other) / se) > 20


def test_an_input_layer_of_its_own_variance_orthogonal_on_a_rectangular_input_layer():
    """Orthogonal(gain sqrt 2) on every layer of a ReLU MLP from 64 digit features to width 1024:
    the input layer has Var = 2 / 1024 (orthonormal rows), so input_sigma_w2 = 2 x 64 / 1024;
    the empirical NTK over 12 seeds equals that kernel within 4 standard errors, entry by entry,
    and is far from the kernel that assumes sigma_w2 = 2 for the input layer too."""
    x = np.asarray(jwinit.data.digits().x_train[:6], np.float32)
    width, d = 1024, x.shape[1]
    model = jwinit.models.MLP(depth=2, width=width, output_dim=3, activation="relu")
    rules = {r"kernel$": jwinit.orthogonal(2 ** 0.5), r"bias$": jwinit.zeros()}
    samples = np.stack([np.asarray(jwinit.ntk(
        model, jwinit.init_params(model, jax.random.key(seed), x[:1], rules), x))
        for seed in range(12)])
    mean, se = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(len(samples))
    want = np.asarray(theory.kernel_fn("relu", 2, 2.0, 0.0, parameterization="standard",
                                       width=width, input_sigma_w2=2.0 * d / width)(x).ntk)
    z = np.abs(mean - want) / se
    assert np.all(z < 4), (z.max(), mean, want)
    same = np.asarray(theory.kernel_fn("relu", 2, 2.0, 0.0, parameterization="standard",
                                       width=width)(x).ntk)
    assert np.max(np.abs(mean - same) / se) > 20
    # the default is sigma_w2 itself
    np.testing.assert_array_equal(
        same, np.asarray(theory.kernel_fn("relu", 2, 2.0, 0.0, parameterization="standard",
                                          width=width, input_sigma_w2=2.0)(x).ntk))


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(input_sigma_w2=-2.0), ValueError, ["`input_sigma_w2`", "-2.0"]),
    (dict(activation="swishy"), ValueError, ["swishy"]),
    (dict(depth=-1), ValueError, ["`depth`", "-1"]),
    (dict(depth=2.5), TypeError, ["`depth`", "2.5"]),
    (dict(sigma_w2=-1.0), ValueError, ["`sigma_w2`", "-1.0"]),
    (dict(sigma_b2=[0.1, 0.2]), ValueError, ["`sigma_b2`", "scalar"]),
    (dict(parameterization="mup"), ValueError, ["`parameterization`", "'mup'", "'standard'"]),
    (dict(parameterization="standard"), TypeError, ["`width`", "'standard'"]),
    (dict(width=512), ValueError, ["`width`", "'standard'", "512"]),
    (dict(use_bias=1), TypeError, ["`use_bias`"]),
])
def test_bad_arguments_fail_in_the_factory(kwargs, error, words):
    args = dict(activation="relu", depth=2, sigma_w2=2.0, sigma_b2=0.0)
    args.update(kwargs)
    with pytest.raises(error) as e:
        theory.kernel_fn(args.pop("activation"), args.pop("depth"), args.pop("sigma_w2"),
                         args.pop("sigma_b2"), **args)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_bad_inputs_are_named():
    f = theory.kernel_fn("relu", 1, 2.0, 0.0)
    with pytest.raises(ValueError, match=r"`x1` and `x2` must have the same feature shape.*"
                                         r"\(5,\) and \(4,\)"):
        f(np.ones((3, 5)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"`x1` must be a batch.*\(5,\)"):
        f(np.ones(5))
    with pytest.raises(TypeError, match="`x2` must hold real numbers"):
        f(np.ones((2, 2)), np.ones((2, 2), bool))
