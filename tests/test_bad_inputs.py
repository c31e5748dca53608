"""The bad-input catalogue: what a careless user types, across the whole public surface.

Every case asserts the exception type and that the message names the argument (in backticks, or
the flag), the value given and, where there is a finite set, the legal values. Nothing here hangs,
returns a wrong value silently or dies with a traceback from deep inside jax.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jwinit
from jwinit import cli, presets, registry, theory
from jwinit.sweep import sweep

KEY = jax.random.key(0)
X = jnp.ones((4, 8))


def _dense_init(**kw):
    return nn.Dense(4, **kw).init(KEY, X)


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(x)


TINY = _Tiny()
TINY_VARS = TINY.init(KEY, X)


# (id, thunk, exception, words that must all appear in the message)
CASES = [
    # --- factories: scales, modes, distributions -------------------------------------------
    ("normal-stddev-0", lambda: jwinit.normal(0.0), ValueError, ["`stddev`", "0.0", "positive"]),
    ("normal-stddev-str", lambda: jwinit.normal("big"), TypeError, ["`stddev`", "big"]),
    ("normal-stddev-nan", lambda: jwinit.normal(math.nan), ValueError, ["`stddev`", "nan"]),
    ("normal-stddev-array", lambda: jwinit.normal(np.ones(2)), TypeError, ["`stddev`", "(2,)"]),
    ("normal-mean-inf", lambda: jwinit.normal(1.0, mean=math.inf), ValueError, ["`mean`", "inf"]),
    ("uniform-scale-neg", lambda: jwinit.uniform(-1.0), ValueError,
     ["`scale`", "-1.0", "positive"]),
    ("uniform-low-high", lambda: jwinit.uniform(low=2.0, high=1.0), ValueError,
     ["`low`", "`high`", "2.0"]),
    ("uniform-half", lambda: jwinit.uniform(low=0.0), ValueError, ["`low` and `high`"]),
    ("truncnorm-bounds", lambda: jwinit.truncated_normal(lower=1.0, upper=1.0), ValueError,
     ["`lower`", "`upper`", "1.0"]),
    ("truncnorm-nan", lambda: jwinit.truncated_normal(lower=math.nan), ValueError,
     ["`lower`", "nan"]),
    ("truncnorm-preserve", lambda: jwinit.truncated_normal(preserve_std="yes"), TypeError,
     ["`preserve_std`", "yes"]),
    ("constant-nan", lambda: jwinit.constant(math.nan), ValueError, ["`value`", "nan", "finite"]),
    ("constant-str", lambda: jwinit.constant("1"), TypeError, ["`value`", "'1'"]),
    ("constant-complex-real", lambda: jwinit.constant(1 + 1j)(KEY, (2,)), ValueError,
     ["`value`", "(1+1j)", "float32", "complex dtype"]),
    ("constant-broadcast", lambda: jwinit.constant([1.0, 2.0])(KEY, (3,)), ValueError,
     ["`value`", "(2,)", "(3,)"]),
    ("vs-mode", lambda: jwinit.variance_scaling(1.0, "fan", "normal"), ValueError,
     ["`mode`", "'fan'", "fan_in", "fan_geo_avg"]),
    ("vs-dist", lambda: jwinit.variance_scaling(1.0, "fan_in", "gauss"), ValueError,
     ["`distribution`", "'gauss'", "truncated_normal"]),
    ("vs-scale", lambda: jwinit.variance_scaling(-2.0, "fan_in", "normal"), ValueError,
     ["`scale`", "-2.0"]),
    ("he-mode", lambda: jwinit.he_normal(mode="fan_avg"), ValueError,
     ["`mode`", "he_normal", "'fan_avg'", "fan_out"]),
    ("he-nonlinearity", lambda: jwinit.kaiming_uniform(nonlinearity="gelu"), ValueError,
     ["`nonlinearity`", "'gelu'", "leaky_relu"]),
    ("he-slope", lambda: jwinit.he_uniform(negative_slope="a"), TypeError,
     ["`negative_slope`", "'a'"]),
    ("layout", lambda: jwinit.glorot_uniform(layout="keras"), ValueError,
     ["`layout`", "'keras'", "torch"]),
    ("groups", lambda: jwinit.he_normal(groups=0), ValueError, ["`groups`", "0", ">= 1"]),
    ("in-axis-type", lambda: jwinit.lecun_normal(in_axis="0"), TypeError,
     ["`in_axis`", "'0'", "int"]),
    ("allow-1d-type", lambda: jwinit.glorot_normal(allow_1d=1), TypeError,
     ["`allow_1d`", "1", "bool"]),
    ("fans-1d", lambda: jwinit.he_normal()(KEY, (7,)), ValueError, ["(7,)", "allow_1d"]),
    ("axis-range", lambda: jwinit.he_normal(in_axis=5)(KEY, (3, 4)), ValueError,
     ["`in_axis`", "5", "(3, 4)"]),
    ("einsum", lambda: jwinit.he_normal(einsum="ab->b"), ValueError, ["einsum"]),
    ("orth-scale", lambda: jwinit.orthogonal(scale=0), ValueError, ["`scale`", "0"]),
    ("orth-1d", lambda: jwinit.orthogonal()(KEY, (5,)), ValueError, ["orthogonal", "(5,)"]),
    ("orth-column", lambda: jwinit.orthogonal(column_axis=1.5), TypeError,
     ["`column_axis`", "1.5"]),
    ("delta-orth-shape", lambda: jwinit.delta_orthogonal()(KEY, (3, 4)), ValueError,
     ["delta_orthogonal", "(3, 4)"]),
    ("sparse", lambda: jwinit.sparse(-0.5), ValueError, ["`sparsity`", "-0.5"]),
    ("dirac-groups", lambda: jwinit.dirac(groups=0), ValueError, ["`groups`", "0"]),
    ("zer-o-constant", lambda: jwinit.zer_o(constant="x"), ValueError,
     ["`constant`", "'x'", "paper"]),
    ("random-walk", lambda: jwinit.random_walk("tanh"), ValueError,
     ["`activation`", "'tanh'", "relu"]),
    ("snn-dist", lambda: jwinit.snn(distribution="x"), ValueError, ["`distribution`", "'x'"]),
    ("gpt2", lambda: jwinit.gpt2_residual(0), ValueError, ["`num_layers`", "0", ">= 1"]),
    ("fixup-m", lambda: jwinit.fixup(8, 1), ValueError, ["`branch_layers`", "1", ">= 2"]),
    ("fixup-base-factory", lambda: jwinit.fixup(8, 2, base=jwinit.he_normal), TypeError,
     ["`base`", "jwinit.he_normal", "call it"]),
    ("t-fixup-stack", lambda: jwinit.t_fixup(6, 512, stack="middle"), ValueError,
     ["`stack`", "'middle'", "encoder"]),
    ("deepnet-stack", lambda: jwinit.deepnet(6, 6), ValueError, ["stack", "encoder"]),
    ("mup-width", lambda: jwinit.mup(128, 0), ValueError, ["`width`", "0", ">= 1"]),
    ("mup-lr-optimizer", lambda: jwinit.mup_lr_scales(64, 128, "rmsprop"), ValueError,
     ["`optimizer`", "'rmsprop'", "adam"]),
    ("glorot-gain", lambda: jwinit.glorot(gain=-1.0), ValueError, ["`gain`", "-1.0"]),
    ("he-gain-name", lambda: jwinit.he(gain="reluu"), ValueError, ["reluu", "relu"]),
    ("relu-bias", lambda: jwinit.relu_bias(math.inf), ValueError, ["`value`", "inf"]),
    ("dtype-int", lambda: jwinit.he_normal(dtype=jnp.int32), TypeError,
     ["`dtype`", "int32", "float32"]),
    ("dtype-call-int", lambda: jwinit.normal(1.0)(KEY, (3,), jnp.int8), TypeError,
     ["`dtype`", "int8", "bfloat16"]),
    # --- keys and shapes at call time --------------------------------------------------------
    ("key-int", lambda: jwinit.he_normal()(0, (3, 3)), TypeError, ["`key`", "int", "PRNG"]),
    ("key-batch", lambda: jwinit.he_normal()(jax.random.split(KEY, 3), (3, 3)), TypeError,
     ["`key`", "batch of keys", "(3,)"]),
    ("key-raw-shape", lambda: jwinit.normal()(jnp.zeros((4,), jnp.uint32), (3,)), TypeError,
     ["`key`", "(4,)", "(2,)"]),
    ("key-float", lambda: jwinit.normal()(jnp.zeros((2,)), (3,)), TypeError,
     ["`key`", "float32"]),
    ("shape-bool", lambda: jwinit.normal()(KEY, (True, 3)), TypeError,
     ["`shape`", "(True, 3)", "ints"]),
    ("shape-neg", lambda: jwinit.normal()(KEY, (-1, 3)), ValueError, ["`shape`", "(-1, 3)"]),
    ("shape-str", lambda: jwinit.normal()(KEY, "3x3"), TypeError, ["`shape`", "3x3"]),
    ("factory-as-closure", lambda: jwinit.zeros(KEY), TypeError,
     ["jwinit.zeros", "call it", "jwinit.zeros()"]),
    # --- factories passed where an initializer belongs (Flax linen and nnx) ------------------
    ("linen-kernel-factory", lambda: _dense_init(kernel_init=jwinit.he_normal), TypeError,
     ["jwinit.he_normal", "call it", "jwinit.he_normal()"]),
    ("linen-bias-factory", lambda: _dense_init(bias_init=jwinit.zeros), TypeError,
     ["jwinit.zeros", "call it"]),
    ("nnx-kernel-factory",
     lambda: nnx.Linear(8, 4, kernel_init=jwinit.glorot_uniform, rngs=nnx.Rngs(0)), TypeError,
     ["jwinit.glorot_uniform", "call it"]),
    ("preset-factory", lambda: nn.Embed(5, 3, embedding_init=presets.torch_embedding).init(
        KEY, jnp.zeros((2,), jnp.int32)), TypeError, ["presets.torch_embedding", "call it"]),
    ("describe-factory", lambda: jwinit.describe(jwinit.he_normal, (3, 3)), TypeError,
     ["`init`", "jwinit.he_normal", "call it"]),
    ("predict-factory", lambda: theory.predict(jwinit.he_normal, "relu", 4), TypeError,
     ["`kernel_init`", "jwinit.he_normal", "call it"]),
    ("lsuv-reinit-factory", lambda: jwinit.lsuv(TINY, X, TINY_VARS, reinit=jwinit.orthogonal,
                                                key=KEY), TypeError,
     ["`reinit`", "jwinit.orthogonal", "call it"]),
    ("probe-kernel-factory", lambda: jwinit.probe_mlp(0, jwinit.he_normal, "relu", depth=2,
                                                       width=4, batch_size=2), TypeError,
     ["`kernel_init`", "jwinit.he_normal", "call it"]),
    # --- describe ----------------------------------------------------------------------------
    ("describe-int-dtype", lambda: jwinit.describe(jwinit.he_normal(), (3, 3), jnp.int32),
     TypeError, ["`dtype`", "int32"]),
    ("describe-shape", lambda: jwinit.describe(jwinit.orthogonal(), (4,)), ValueError,
     ["(4,)"]),
    ("describe-not-callable", lambda: jwinit.describe(3.0, (2,)), TypeError, ["`init`", "3.0"]),
    # --- registry ----------------------------------------------------------------------------
    ("registry-name", lambda: registry.make("he_norml"), ValueError,
     ["'he_norml'", "he_normal"]),
    ("registry-kwarg", lambda: registry.make("normal", sdev=0.1), TypeError,
     ["sdev", "'normal'", "stddev"]),
    ("registry-type", lambda: registry.entry(3), TypeError, ["string", "int"]),
    # --- activations and gains ---------------------------------------------------------------
    ("activation-name", lambda: jwinit.get_activation("relu6"), ValueError,
     ["'relu6'", "leaky_relu"]),
    ("activation-param", lambda: jwinit.get_activation("leaky_relu:a"), ValueError,
     ["leaky_relu", "'a'", "number"]),
    ("activation-elu", lambda: jwinit.get_activation("elu:-1"), ValueError,
     ["`alpha`", "-1"]),
    ("activation-type", lambda: jwinit.get_activation(3), TypeError, ["`activation`", "3"]),
    ("activation-not-elementwise", lambda: jwinit.get_activation(lambda x: x.sum()), ValueError,
     ["`activation`", "elementwise", "(5, 3)"]),
    ("calculate-gain", lambda: jwinit.calculate_gain("gelu"), ValueError,
     ["`nonlinearity`", "'gelu'", "leaky_relu"]),
    ("gain-name", lambda: jwinit.gain("swishy"), ValueError, ["'swishy'", "silu"]),
    # --- fans --------------------------------------------------------------------------------
    ("compute-fans-rank", lambda: jwinit.compute_fans((3,)), ValueError, ["(3,)"]),
    ("fans-einsum", lambda: jwinit.fans_from_einsum("btd,dnh->btnh", (512, 8)), ValueError,
     ["rank"]),
    # --- theory ------------------------------------------------------------------------------
    ("q-map-neg", lambda: theory.q_map("tanh", -1.0, 0.0, 1.0), ValueError,
     ["`sigma_w2`", "-1.0", ">= 0"]),
    ("q-map-overflow", lambda: theory.q_map("relu", 1e39, 0.0, 1.0), ValueError,
     ["`sigma_w2`", "1e+39", "float32"]),
    ("q-map-str", lambda: theory.q_map("tanh", "big", 0.0, 1.0), TypeError,
     ["`sigma_w2`", "big"]),
    ("c-map-c", lambda: theory.c_map("tanh", 1.0, 0.0, 1.5), ValueError,
     ["`c`", "1.5", "[-1, 1]"]),
    ("chi1-array", lambda: theory.chi1("tanh", jnp.ones(2), jnp.array([0.0, -0.5])), ValueError,
     ["`sigma_b2`", "-0.5"]),
    ("degree", lambda: theory.q_map("tanh", 1.0, 0.0, 1.0, degree=0), ValueError,
     ["`degree`", "0", ">= 1"]),
    ("predict-depth", lambda: theory.predict((1.0, 0.0), "tanh", 0), ValueError,
     ["`depth`", "0"]),
    ("predict-width", lambda: theory.predict((1.0, 0.0), "tanh", 3, width=0), ValueError,
     ["`width`", "0", ">= 1"]),
    ("predict-pair", lambda: theory.predict((1.0, 0.0, 2.0), "tanh", 3), ValueError,
     ["pair", "(1.0, 0.0, 2.0)"]),
    ("predict-mean", lambda: theory.predict(jwinit.he_normal(), "relu", 3,
                                            bias_init=jwinit.relu_bias()), ValueError,
     ["`bias_init`", "mean", "zero-mean"]),
    ("jacobian-weights", lambda: theory.jacobian_spectrum("tanh", 1.0, 0.0, 3,
                                                          weights="haar"), ValueError,
     ["`weights`", "'haar'", "orthogonal"]),
    ("variances-width", lambda: theory.variances_of(jwinit.he_normal(), width=1.5), TypeError,
     ["`width`", "1.5"]),
    # --- probe -------------------------------------------------------------------------------
    ("probe-depth", lambda: jwinit.probe_mlp(0, jwinit.he_normal(), "relu", depth=0, width=4,
                                             batch_size=2), ValueError, ["`depth`", "0", ">= 1"]),
    ("probe-precision", lambda: jwinit.probe_mlp(0, jwinit.he_normal(), "relu", depth=2,
                                                 width=4, batch_size=2, precision="fp8"),
     ValueError, ["`precision`", "'fp8'", "tensorfloat32"]),
    ("probe-remat", lambda: jwinit.probe_mlp(0, jwinit.he_normal(), "relu", depth=2, width=4,
                                             batch_size=2, remat="all"), ValueError,
     ["`remat`", "'all'", "sqrt"]),
    ("probe-correlation", lambda: jwinit.probe_mlp(0, jwinit.he_normal(), "relu", depth=2,
                                                   width=4, batch_size=2, input_correlation=2.0),
     ValueError, ["`input_correlation`", "2.0", "[-1, 1]"]),
    ("probe-key-neg", lambda: jwinit.probe_mlp(-1, jwinit.he_normal(), "relu", depth=2,
                                               width=4, batch_size=2), ValueError, ["`key`", "-1"]),
    ("jacobian-output", lambda: jwinit.jacobian_singular_values(
        0, jwinit.he_normal(), "relu", depth=2, width=4, output="h"), ValueError,
     ["`output`", "'h'", "preactivation"]),
    # --- sweep -------------------------------------------------------------------------------
    ("sweep-seeds", lambda: sweep(["he_normal"], ["relu"], depths=2, widths=4, seeds=[1, 1]),
     ValueError, ["`seeds`", "[1, 1]", "distinct"]),
    ("sweep-seeds-str", lambda: sweep(["he_normal"], ["relu"], depths=2, widths=4, seeds="4"),
     TypeError, ["`seeds`", "'4'"]),
    ("sweep-scheme", lambda: sweep(["he_norml"], ["relu"], depths=2, widths=4), ValueError,
     ["`schemes`", "'he_norml'", "he_normal"]),
    ("sweep-scheme-args", lambda: sweep([("normal", {"sd": 1})], ["relu"], depths=2, widths=4),
     TypeError, ["`schemes`", "sd", "stddev"]),
    ("sweep-pair", lambda: sweep([(-1.0, 0.0)], ["relu"], depths=2, widths=4), ValueError,
     ["sigma_w2", "(-1.0, 0.0)"]),
    ("sweep-pairs-shape", lambda: sweep(pairs=["he_normal"], depths=2, widths=4), TypeError,
     ["`pairs`", "'he_normal'"]),
    ("sweep-mesh", lambda: sweep(["he_normal"], ["relu"], depths=2, widths=4, mesh="all"),
     TypeError, ["`mesh`", "str"]),
    ("sweep-resume", lambda: sweep(["he_normal"], ["relu"], depths=2, widths=4, seeds=1,
                                   batch_size=2, resume="yes"), TypeError, ["`resume`", "'yes'"]),
    ("sweep-bias-factory", lambda: sweep(["he_normal"], ["relu"], depths=2, widths=4,
                                         bias_init=jwinit.zeros), TypeError,
     ["`bias_init`", "jwinit.zeros", "call it"]),
    # --- presets -----------------------------------------------------------------------------
    ("torch-linear", lambda: presets.torch_linear(0), ValueError, ["`in_features`", "0"]),
    ("torch-linear-shape", lambda: presets.torch_linear(8).kernel_init(KEY, (4, 3)), ValueError,
     ["in_features=8", "(4, 3)"]),
    ("torch-conv-ks", lambda: presets.torch_conv(3, 3), TypeError,
     ["`kernel_size`", "torch_conv", "(3, 3)"]),
    ("torch-conv-groups", lambda: presets.torch_conv(6, (3, 3), groups=4), ValueError,
     ["`groups`", "4", "6"]),
    ("torch-mha-shape", lambda: presets.torch_multihead_attention(64).kernel_init(
        KEY, (64, 4, 8)), ValueError, ["embed_dim=64", "(64, 4, 8)"]),
    ("torch-embedding-pad", lambda: presets.torch_embedding(padding_idx=9)(KEY, (5, 3)),
     ValueError, ["`padding_idx`", "9", "(5, 3)"]),
    ("torch-bilinear-layout", lambda: presets.torch_bilinear(4, layout="equinox"), ValueError,
     ["`layout`", "'equinox'", "torch"]),
    ("torch-rnn", lambda: presets.torch_rnn(16, fuse_biases="no"), TypeError,
     ["`fuse_biases`", "'no'"]),
    # --- model tools -------------------------------------------------------------------------
    ("lsuv-variables", lambda: jwinit.lsuv(TINY, X), ValueError, ["`variables`", "model.init"]),
    ("lsuv-tol", lambda: jwinit.lsuv(TINY, X, TINY_VARS, tol=2.0), ValueError,
     ["`tol`", "2.0", "(0, 1)"]),
    ("lsuv-reinit-no-key", lambda: jwinit.lsuv(TINY, X, TINY_VARS, reinit=jwinit.orthogonal()),
     ValueError, ["`reinit`", "`key`"]),
    ("lsuv-nan-batch", lambda: jwinit.lsuv(TINY, X.at[0, 0].set(jnp.nan), TINY_VARS),
     ValueError, ["`x`", "NaN"]),
    ("lsuv-wrong-batch", lambda: jwinit.lsuv(TINY, jnp.ones((4, 5)), TINY_VARS), ValueError,
     ["`x`", "(4, 5)", "lsuv", "Dense_0"]),
    ("lsuv-other-variables", lambda: jwinit.lsuv(TINY, X, nn.Dense(3).init(KEY, X)),
     ValueError, ["`x`", "(4, 8)", "lsuv"]),
    ("weight-norm-wrong-batch", lambda: jwinit.weight_norm_init(TINY, jnp.ones((4, 5)),
                                                                TINY_VARS),
     ValueError, ["`x`", "(4, 5)", "weight_norm_init"]),
    ("report-model", lambda: jwinit.signal_report("mlp", X), TypeError,
     ["`model`", "str", "flax.linen.Module"]),
    ("report-batch", lambda: jwinit.signal_report(TINY, X[:1], TINY_VARS), ValueError,
     ["`x`", "(1, 8)"]),
    ("report-wrong-shape", lambda: jwinit.signal_report(TINY, jnp.ones((4, 5)), TINY_VARS),
     ValueError, ["`x`", "(4, 5)", "(5, 4)", "(8, 4)"]),
    ("report-other-variables", lambda: jwinit.signal_report(
        TINY, X, nn.Dense(3).init(KEY, X)), ValueError, ["`x`", "Dense_0"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case):
    _, thunk, error, words = case
    with pytest.raises(error) as info:
        thunk()
    message = str(info.value)
    for w in words:
        assert w in message, (w, message)


# --- the command line ----------------------------------------------------------------------

CLI_CASES = [
    (["describe", "nosuch", "3", "3"], ["'nosuch'", "he_normal"]),
    (["describe", "he_normal", "3", "3", "--arg", "foo=1"], ["foo", "negative_slope"]),
    (["describe", "normal", "3", "--arg", "stddev=-1"], ["`stddev`", "-1"]),
    (["describe", "he_normal", "3", "3", "--dtype", "int32"], ["`dtype`", "int32"]),
    (["describe", "he_normal", "3", "3", "--arg", "bad"], ["`--arg`", "name=value"]),
    (["probe", "he_normal+relu", "--depth", "0"], ["`--depth`", "0", ">= 1"]),
    (["probe", "he_norml+relu"], ["'he_norml'", "he_normal"]),
    (["probe", "he_normal+rel"], ["`activation`", "'rel'", "relu"]),
    (["probe", "he_normal"], ["scheme+activation", "'he_normal'"]),
    (["probe", "he_normal+relu", "--bias", "(1,2)"], ["`--bias`", "(1,2)"]),
    (["probe", "normal(sd=1)+relu"], ["sd", "stddev"]),
]


@pytest.mark.parametrize("argv, words", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_bad_input_is_one_line(argv, words, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("jwinit: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
