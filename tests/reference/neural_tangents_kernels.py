"""Reference infinite-width kernels from neural-tangents, for `tests/test_kernels.py`.

Writes ``neural_tangents_kernels.npz`` next to this file: the NNGP and NTK of fully-connected
networks (``stax.serial(Dense, phi, ..., Dense, phi, Dense)``: `depth` hidden layers and a
readout, in neural-tangents' 'ntk' and 'standard' parameterizations, with biases) for relu, erf
and (exact) gelu, three depths and three (sigma_w^2, sigma_b^2) pairs, on fixed inputs, in
float64. neural-tangents is not a dependency of jwinit; this script is run once, by hand, in an
environment that has it (neural-tangents 0.6.5 needs jax < 0.5; its TensorFlow-only
``experimental`` package is not needed and is stubbed out)::

    python tests/reference/neural_tangents_kernels.py
"""

import os
import sys
import types

import numpy as np

sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import neural_tangents  # noqa: E402
from neural_tangents import stax  # noqa: E402

ACTIVATIONS = {"relu": stax.Relu, "erf": stax.Erf, "gelu": lambda: stax.Gelu(approximate=False)}
DEPTHS = (1, 3, 10)
VARIANCES = ((2.0, 0.0), (1.5, 0.05), (0.8, 0.3))
WIDTH = 512  # hidden width of the 'standard' parameterization


def inputs():
    rng = np.random.RandomState(0)
    return rng.normal(size=(5, 7)), rng.normal(size=(4, 7))


def main():
    x1, x2 = inputs()
    out = {"x1": x1, "x2": x2, "width": np.asarray(WIDTH)}
    for name, act in ACTIVATIONS.items():
        for depth in DEPTHS:
            for sw2, sb2 in VARIANCES:
                for param in ("ntk", "standard"):
                    layers = []
                    for _ in range(depth):
                        layers += [stax.Dense(WIDTH, W_std=sw2**0.5, b_std=sb2**0.5,
                                              parameterization=param), act()]
                    layers.append(stax.Dense(1, W_std=sw2**0.5, b_std=sb2**0.5,
                                             parameterization=param))
                    kernel_fn = stax.serial(*layers)[2]
                    k = kernel_fn(x1, x2, ("nngp", "ntk"))
                    tag = f"{name}/{depth}/{sw2}/{sb2}/{param}"
                    out[f"{tag}/nngp"] = np.asarray(k.nngp)
                    out[f"{tag}/ntk"] = np.asarray(k.ntk)
    out["versions"] = np.asarray(f"neural-tangents {neural_tangents.__version__}, "
                                 f"jax {jax.__version__}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "neural_tangents_kernels.npz")
    np.savez(path, **out)
    print(f"wrote {len(out)} arrays to {path}")


if __name__ == "__main__":
    main()
