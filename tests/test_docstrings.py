"""Every docstring example runs as written and prints what it says (doctest, as optax does).

Each module's examples run with its own globals plus ``jax``, ``jnp``, ``np``, ``flax``, ``jwinit``
and ``theory`` (the names the docstrings use without importing them). An example with no expected
output must print nothing; ELLIPSIS and NORMALIZE_WHITESPACE are the only options.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import flax
import flax.linen  # noqa: F401  (examples use flax.linen.Dense)
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jwinit
from jwinit import theory

MODULES = ["jwinit", *sorted(m.name for m in pkgutil.walk_packages(jwinit.__path__, "jwinit."))]


def _tests(name: str) -> list[doctest.DocTest]:
    mod = importlib.import_module(name)
    globs = {**vars(mod), "jax": jax, "jnp": jnp, "np": np, "flax": flax, "jwinit": jwinit,
             "theory": theory}
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(mod, name, globs=globs) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for t in _tests(name):
        runner.run(t, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)


def test_the_public_api_has_examples():
    # The entry points a newcomer reaches for first show an example that is checked above.
    documented = {t.name.rsplit(".", 1)[-1] for name in MODULES for t in _tests(name)}
    for api in ("probe_mlp", "sweep", "predict", "describe", "lsuv", "signal_report",
                "compute_fans", "q_map", "critical_sigma_w2", "get_activation"):
        assert api in documented, api
