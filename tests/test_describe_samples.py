"""`describe()` against samples, for every registered initializer (and every role of the role
recipes): the mean and variance it states equal those of many independent draws.

Each scheme is drawn with K = 64 independent keys. Per draw d the statistics are the entry mean
m_d and the second moment about the stated mean s_d = mean((w - mean)^2), whose expectations are
exactly the stated mean and variance whatever the correlations inside a draw (orthogonal,
sparse, ...). The averages over draws are compared with the statement within 5 standard errors
of the average (the spread of m_d, s_d across draws over sqrt(K); 5 sigma keeps the family-wise
false-alarm rate of the ~100 comparisons below 1e-4), plus float32 rounding for the
deterministic schemes (spread 0).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jwinit
from jwinit import registry

K = 64


def _cases():
    out = []
    for e in registry.entries():
        made = e.factory(**e.example)
        shape = (3, 3, 16, 32) if e.kind == "conv" else (64, 32)
        if isinstance(made, dict):
            out += [(f"{e.name}.{role}", init, shape) for role, init in made.items()
                    if callable(init)]
        else:
            out.append((e.name, made, shape))
    return out


CASES = _cases()


@pytest.mark.parametrize("name,init,shape", CASES, ids=[c[0] for c in CASES])
def test_describe_matches_the_samples(name, init, shape):
    d = jwinit.describe(init, shape)
    assert d.variance is not None and d.mean is not None, name
    keys = jax.random.split(jax.random.key(11), K)
    w = np.asarray(jax.jit(jax.vmap(lambda k: init(k, shape, jnp.float32)))(keys), np.float64)
    w = w.reshape(K, -1)
    mean, var = float(np.real(d.mean)), float(d.variance)
    scale = max(abs(mean), math.sqrt(var), 1e-12)
    tiny = 1e-6 * scale  # float32 rounding of a deterministic draw
    m = w.mean(axis=1)
    assert abs(m.mean() - mean) <= 5 * m.std(ddof=1) / math.sqrt(K) + tiny, (
        name, m.mean(), mean)
    s = ((w - mean) ** 2).mean(axis=1)
    assert abs(s.mean() - var) <= 5 * s.std(ddof=1) / math.sqrt(K) + tiny * scale, (
        name, s.mean(), var)


def test_every_registered_scheme_is_covered():
    names = {c[0].split(".")[0] for c in CASES}
    assert names == {e.name for e in registry.entries()}
    assert len(CASES) >= len(registry.entries())
