"""Published initialization recipes: random walk, SNN, IRNN, GPT-2, Fixup, T-Fixup, DeepNet, muP.

Each recipe is a factory built on the fan-based core (`jwinit.variance_scaling`) or on the
structured schemes, with the paper's formula in its docstring. Recipes that assign different
initializers to different parameter roles (T-Fixup, DeepNet, muP) return a ``dict`` from role name
to initializer; every initializer in it is a jwinit closure (``describe``, dtypes and
``out_sharding`` work as everywhere). All kernels are in Flax layout ``(..., in, out)`` unless
`layout` says otherwise.
"""

from jwinit.recipes.deep import random_walk, relu_bias, snn
from jwinit.recipes.depth import (
    DEPTH_ALPHAS,
    DepthMultipliers,
    depth_multipliers,
    depth_optimizer,
    depth_roles,
    depth_rules,
)
from jwinit.recipes.lasagne import glorot, he, resolve_gain
from jwinit.recipes.llm import (
    OLMO_CORE_METHODS,
    TRUNCATED_STD_3,
    gemma_embedding_rules,
    megatron_rules,
    neox_rules,
    olmo_core_rules,
    olmo_mitchell_rules,
    small_embedding_rules,
)
from jwinit.recipes.recurrent import irnn
from jwinit.recipes.residual import fixup, fixup_branch_output, fixup_classifier, fixup_scale
from jwinit.recipes.transformer import (
    DECODER_PATHS,
    TRANSFORMER_PATHS,
    DeepNormConstants,
    deepnet,
    deepnorm_constants,
    gpt2_residual,
    t_fixup,
)
from jwinit.recipes.unit import umup_lr_scales, umup_optimizer, umup_rules
from jwinit.recipes.width import mup, mup_lr_scales

__all__ = [
    "random_walk",
    "snn",
    "relu_bias",
    "irnn",
    "gpt2_residual",
    "fixup",
    "fixup_scale",
    "fixup_branch_output",
    "fixup_classifier",
    "t_fixup",
    "deepnet",
    "deepnorm_constants",
    "DeepNormConstants",
    "mup",
    "mup_lr_scales",
    "glorot",
    "he",
    "resolve_gain",
    "TRANSFORMER_PATHS",
    "DECODER_PATHS",
    "olmo_mitchell_rules",
    "megatron_rules",
    "olmo_core_rules",
    "OLMO_CORE_METHODS",
    "TRUNCATED_STD_3",
    "neox_rules",
    "small_embedding_rules",
    "gemma_embedding_rules",
    "DEPTH_ALPHAS",
    "DepthMultipliers",
    "depth_multipliers",
    "depth_rules",
    "depth_optimizer",
    "depth_roles",
    "umup_rules",
    "umup_lr_scales",
    "umup_optimizer",
]
