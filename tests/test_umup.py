"""u-muP: the unit-scaled ops (forward and backward scales written out), the residual weights'
exact variance shares, the Decoder's activations and gradients at init, and the learning rates."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jwinit
from jwinit import _unit_scaling as unit
from jwinit import theory
from jwinit.models import Decoder, DecoderBlock


def test_scale_fwd_and_scale_bwd_scale_one_pass_each():
    x = jnp.arange(1.0, 5.0)
    g = jnp.array([1.0, -2.0, 0.5, 3.0])
    y, back = jax.vjp(lambda v: unit.scale_fwd(v, 0.25), x)
    np.testing.assert_array_equal(y, 0.25 * x)
    np.testing.assert_array_equal(back(g)[0], g)
    y, back = jax.vjp(lambda v: unit.scale_bwd(v, 3.0), x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(back(g)[0], 3.0 * g)


@pytest.mark.parametrize("readout, constraint", [(False, "to_output_scale"), (False, None),
                                                 (True, None)])
def test_the_linear_op_is_the_formula_forward_and_backward(readout, constraint):
    """y = x W fan_in^-1/2 (readout: / fan_in); dx = g W^T times the forward scale
    ('to_output_scale') or fan_out^-1/2 (None); dW = x^T g tokens^-1/2."""
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (3, 5, 16))
    w = jax.random.normal(kw, (16, 24))
    y, back = jax.vjp(lambda a, b: unit.linear(a, b, readout=readout, constraint=constraint),
                      x, w)
    out_scale = 1 / 16 if readout else 16**-0.5
    np.testing.assert_allclose(y, out_scale * (x @ w), rtol=1e-6, atol=1e-6)
    g = jax.random.normal(kg, y.shape)
    dx, dw = back(g)
    grad_in = out_scale if constraint == "to_output_scale" else 24**-0.5
    np.testing.assert_allclose(dx, grad_in * (g @ w.T), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, 15**-0.5 * jnp.einsum("tbi,tbo->io", x, g), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("layers", [1, 2, 7, 32])
def test_the_residual_weights_give_embedding_attention_and_mlp_a_third_each(layers):
    """tau_k = 1 / sqrt(L + k): the embedding keeps prod_k 1 / (1 + tau_k^2) = 1/3 of the
    stream's variance, every branch tau_k^2 / (1 + tau_k^2) prod_(j>k) 1 / (1 + tau_j^2) =
    1 / (3L) (exact identities; uncorrelated unit-variance terms)."""
    taus = unit.residual_taus(layers)
    assert len(taus) == 2 * layers
    np.testing.assert_allclose(taus, [1 / math.sqrt(layers + k) for k in range(2 * layers)],
                               rtol=1e-12)
    keep = [1 / (1 + t * t) for t in taus]
    assert math.prod(keep) == pytest.approx(1 / 3, rel=1e-12)
    shares = [t * t / (1 + t * t) * math.prod(keep[k + 1:]) for k, t in enumerate(taus)]
    np.testing.assert_allclose(shares, 1 / (3 * layers), rtol=1e-12)
    # attention twice as strong as the MLP in amplitude: 4x the MLP branches' share in total
    taus = unit.residual_taus(layers, attn_ratio=2.0)
    keep = [1 / (1 + t * t) for t in taus]
    shares = [t * t / (1 + t * t) * math.prod(keep[k + 1:]) for k, t in enumerate(taus)]
    assert sum(shares[0::2]) / sum(shares[1::2]) == pytest.approx(4.0, rel=1e-12)
    # residual_mult 1: the attention and MLP totals average to the embedding's share
    assert sum(shares) / 2 / math.prod(keep) == pytest.approx(1.0, rel=1e-12)


def _unit_decoder(layers, dim):
    return Decoder(vocab_size=512, dim=dim, layers=layers, heads=4, mlp_dim=4 * dim,
                   unit_scaled=True)


def _captured(model, variables, tokens, kinds):
    """The outputs of the `kinds` submodules (one compiled program: eager op-by-op dispatch of
    the unrolled blocks is slower than compiling them)."""
    run = jax.jit(lambda v, t: model.apply(v, t, capture_intermediates=lambda m, _: isinstance(
        m, kinds))[1]["intermediates"])
    return run(variables, tokens)


def test_each_block_joins_its_branches_as_the_formula_says():
    """The stream after block i is (h' + tau_mlp down) / sqrt(1 + tau_mlp^2) with
    h' = (h + tau_attn out) / sqrt(1 + tau_attn^2), h the block's input."""
    from jwinit.models import _UnitDense

    model = _unit_decoder(2, 32)
    tokens = jax.random.randint(jax.random.key(1), (2, 16), 0, 512)
    v = jax.jit(model.init)(jax.random.key(0), tokens)
    got = _captured(model, v, tokens, (DecoderBlock, _UnitDense))
    taus = unit.residual_taus(2)
    h = v["params"]["embed"]["embedding"].value[tokens]
    for i in range(2):
        blk = got[f"layer_{i}"]
        ta, tm = taus[2 * i], taus[2 * i + 1]
        mid = (h + ta * blk["out"]["__call__"][0]) / math.sqrt(1 + ta * ta)
        h = (mid + tm * blk["down"]["__call__"][0]) / math.sqrt(1 + tm * tm)
        np.testing.assert_allclose(blk["__call__"][0], h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dim", [64, 256])
def test_activations_start_at_unit_scale_where_u_mup_says_exactly(dim):
    """At init: the embedding's rows are N(0, 1) (RMS 1), every dense op of a block whose input
    is RMS-normed has RMS 1 (x W / sqrt(fan_in), W ~ N(0, 1)), the MLP branch's RMS^2 is
    2^(3/2) E[silu(g)^2] (the reference's SwiGLU scale 2^(3/4)), and the logits' RMS is
    dim^-1/2 (muP's readout / fan_in): each within 6 standard errors of the mean square over
    the 1024 tokens' coordinates (columns of one weight draw are independent)."""
    from jwinit.models import _UnitDense

    model = _unit_decoder(2, dim)
    tokens = jax.random.randint(jax.random.key(3), (4, 256), 0, 512)
    v = jax.jit(model.init)(jax.random.key(2), tokens)
    got = _captured(model, v, tokens, (_UnitDense,))

    def check(a, expect):
        a = np.asarray(a, np.float64).reshape(-1, a.shape[-1])
        per_unit = np.mean(a * a, axis=0)  # the mean square of each output unit
        se = per_unit.std(ddof=1) / math.sqrt(per_unit.size)
        assert abs(per_unit.mean() - expect) < 6 * se + 1e-3 * expect, (per_unit.mean(),
                                                                       expect, se)

    silu2 = float(theory.q_map("silu", 1.0, 0.0, 1.0))
    for i in range(2):
        blk = got[f"layer_{i}"]
        for name in ("query", "key", "value", "gate", "up"):
            check(blk[name]["__call__"][0], 1.0)
        check(blk["down"]["__call__"][0], 2**1.5 * silu2)
    logits = got["head"]["__call__"][0]
    check(logits, 1.0 / dim)


@pytest.mark.parametrize("layers", [3, 12])
def test_the_residual_stream_stays_near_unit_scale_where_standard_scaling_explodes(layers):
    """Unit Scaling keeps every tensor within a small factor of RMS 1 (FP8's range is about
    2^+-8): the stream after every block is within [1/2, 2] at every depth (measured 1.0 to 1.9:
    the reference's attention scale assumes the positions' values independent, and the stack
    correlates them). (The same N(0, 1) weights without the unit-scaled ops would grow the
    stream by about sqrt(fan_in) per layer.)"""
    model = _unit_decoder(layers, 128)
    tokens = jax.random.randint(jax.random.key(5), (4, 64), 0, 512)
    v = model.init(jax.random.key(4), tokens)
    _, state = model.apply(v, tokens, capture_intermediates=lambda m, _: isinstance(
        m, DecoderBlock))  # eagerly: compiling 12 unrolled blocks takes longer
    got = state["intermediates"]
    rms = [float(jnp.sqrt(jnp.mean(got[f"layer_{i}"]["__call__"][0] ** 2)))
           for i in range(layers)]
    assert all(0.5 <= r <= 2.0 for r in rms), rms


def test_weight_gradients_start_near_unit_scale():
    """With a unit-RMS cotangent on the logits, the gradient of the embedding, the head and
    every block's value, out, gate, up and down kernel has RMS within [1/4, 4] at init (the
    backward scales: fan_out^-1/2 or the forward scale for inputs, tokens^-1/2 for weights;
    measured 0.67 to 2.3). The query and key kernels' are below 1/4 (measured 0.05 to 0.13):
    muP's logits q.k / head_dim make the softmax nearly flat at init, and its Jacobian small."""
    model = _unit_decoder(3, 128)
    tokens = jax.random.randint(jax.random.key(7), (4, 64), 0, 512)
    v = jax.jit(model.init)(jax.random.key(6), tokens)
    g = jax.random.normal(jax.random.key(8), (4, 64, 512))
    grads = jax.jit(lambda p: jax.vjp(lambda q: model.apply({"params": q}, tokens), p)[1](g)[0])(
        v["params"])
    rms = {jax.tree_util.keystr(k): float(jnp.sqrt(jnp.mean(x**2)))
           for k, x in jax.tree_util.tree_leaves_with_path(grads)}
    logits = {k: r for k, r in rms.items() if "'query'" in k or "'key'" in k}
    others = {k: r for k, r in rms.items() if ("kernel" in k or "embedding" in k)
              and k not in logits}
    assert len(others) == 3 * 5 + 2 and len(logits) == 3 * 2
    assert all(0.25 <= r <= 4 for r in others.values()), others
    assert all(r < 0.25 for r in logits.values()), logits


def test_the_learning_rates_are_the_table():
    """Adam's first step from unit gradients is -eta s: s = fan_in^-1/2 L^-1/2 for a block's
    kernel, L^-1/2 for its norm gain, dim^-1/2 for the embedding, 1 for the head and the final
    norm; weight decay wd w is added unscaled by eta."""
    layers, dim, mlp = 2, 32, 128
    model = Decoder(vocab_size=100, dim=dim, layers=layers, heads=4, mlp_dim=mlp,
                    unit_scaled=True)
    tokens = jnp.zeros((1, 4), jnp.int32)
    params = jax.jit(model.init)(jax.random.key(0), tokens)["params"]
    params = jax.tree.map(lambda x: getattr(x, "value", x), params,
                          is_leaf=lambda x: hasattr(x, "value"))
    eta, wd = 0.3, 0.01
    tx = jwinit.recipes.umup_optimizer(eta, layers, eps=0.0, weight_decay=wd)
    grads = jax.tree.map(jnp.ones_like, params)
    with jax.numpy_dtype_promotion("standard"):
        updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    expect = {"embed/embedding": dim**-0.5, "head/kernel": 1.0, "final_norm/scale": 1.0,
              "layer_1/attn_norm/scale": layers**-0.5, "layer_0/query/kernel":
              (dim * layers) ** -0.5, "layer_1/down/kernel": (mlp * layers) ** -0.5,
              "layer_1/gate/kernel": (dim * layers) ** -0.5}
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): (u, w)
            for (path, u), w in zip(jax.tree_util.tree_leaves_with_path(updates),
                                    jax.tree.leaves(params), strict=True)}
    for path, s in expect.items():
        u, w = flat[path]
        # Adam's first normalized step from unit gradients is 1 to float32 rounding (1e-5)
        np.testing.assert_allclose(u, -eta * s - wd * w, rtol=0, atol=2e-5 * eta * s)
    assert len(flat) == 3 + layers * 9  # embedding, head, final norm; 9 per block


def test_bad_input():
    with pytest.raises(TypeError, match=r"`num_layers`.*is None"):
        jwinit.recipes.umup_optimizer(0.1, None)
    with pytest.raises(TypeError, match=r"`num_layers`.*is None"):
        jwinit.recipes.umup_lr_scales({}, None)
    with pytest.raises(ValueError, match="`learning_rate`"):
        jwinit.recipes.umup_optimizer(0.0, 2)
    bad = Decoder(vocab_size=8, dim=8, layers=1, heads=2, mlp_dim=8, unit_scaled=True,
                  branch_multiplier=0.5)
    with pytest.raises(ValueError, match=r"u-muP.*branch_multiplier=1.0.*0.5"):
        bad.init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32))
    assert optax is not None
