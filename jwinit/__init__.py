"""jwinit: weight initializers for JAX/Flax, mean-field theory, and a jit-compiled signal probe.

Every initializer is a factory returning ``init(key, shape, dtype=..., out_sharding=None)``::

    import flax.linen as nn, jwinit
    layer = nn.Dense(128, kernel_init=jwinit.he_uniform())
"""

from jwinit import data, models, presets, probe, registry, results, sweep, theory, train, writers
from jwinit._types import Initializer
from jwinit.activations import SELU_ALPHA, SELU_LAMBDA, Activation, activation_names, get_activation
from jwinit.data_dependent import LayerSignal, SignalReport, lsuv, signal_report, weight_norm_init
from jwinit.description import Description, describe
from jwinit.distributions import constant, normal, ones, truncated_normal, uniform, zeros
from jwinit.edge_of_chaos import Critical, critical
from jwinit.fans import compute_fans, fans_from_einsum
from jwinit.gains import calculate_gain, gain
from jwinit.learned_scales import GradInitResult, gradinit
from jwinit.parameter_audit import AuditReport, AuditRow, audit
from jwinit.pretraining import greedy_pretrain
from jwinit.probe import ProbeResult, jacobian_singular_values, probe_mlp
from jwinit.recipes import (
    DeepNormConstants,
    deepnet,
    deepnorm_constants,
    fixup,
    fixup_branch_output,
    fixup_classifier,
    fixup_scale,
    glorot,
    gpt2_residual,
    he,
    irnn,
    mup,
    mup_lr_scales,
    random_walk,
    relu_bias,
    resolve_gain,
    snn,
    t_fixup,
)
from jwinit.recipes.residual import fixup_rules
from jwinit.recipes.transformer import deepnet_rules, gpt2_rules, t_fixup_rules, transformer_rules
from jwinit.recipes.width import mup_optimizer, mup_roles, mup_rules
from jwinit.rules import init_params, param_paths
from jwinit.structured import (
    delta_orthogonal,
    dirac,
    eye,
    identity,
    orthogonal,
    sparse,
    zer_o,
    zero_hadamard,
)
from jwinit.tangent_kernel import (
    NTK_METHODS,
    TRAINABILITY_LOSSES,
    TrainabilityReport,
    ntk,
    trainability,
)
from jwinit.variance import (
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
)

__version__ = "0.1.0"

__all__ = [
    "data",
    "Critical",
    "critical",
    "models",
    "train",
    "ProbeResult",
    "jacobian_singular_values",
    "probe",
    "probe_mlp",
    "sweep",
    "results",
    "writers",
    "theory",
    "LayerSignal",
    "SignalReport",
    "lsuv",
    "signal_report",
    "weight_norm_init",
    "greedy_pretrain",
    "gradinit",
    "GradInitResult",
    "init_params",
    "param_paths",
    "audit",
    "ntk",
    "trainability",
    "TrainabilityReport",
    "TRAINABILITY_LOSSES",
    "NTK_METHODS",
    "AuditReport",
    "AuditRow",
    "fixup_rules",
    "mup_rules",
    "mup_roles",
    "mup_optimizer",
    "transformer_rules",
    "t_fixup_rules",
    "deepnet_rules",
    "gpt2_rules",
    "Activation",
    "Description",
    "Initializer",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "activation_names",
    "calculate_gain",
    "compute_fans",
    "constant",
    "describe",
    "fans_from_einsum",
    "gain",
    "get_activation",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "registry",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
    "DeepNormConstants",
    "deepnet",
    "deepnorm_constants",
    "fixup",
    "fixup_branch_output",
    "fixup_classifier",
    "fixup_scale",
    "glorot",
    "gpt2_residual",
    "he",
    "irnn",
    "mup",
    "mup_lr_scales",
    "random_walk",
    "relu_bias",
    "resolve_gain",
    "snn",
    "t_fixup",
    "delta_orthogonal",
    "dirac",
    "eye",
    "identity",
    "orthogonal",
    "sparse",
    "zer_o",
    "zero_hadamard",
    "presets",
]
