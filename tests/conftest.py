"""Test configuration: 8 simulated CPU devices, strict dtype promotion, fixed seeds."""

import os


def _pin_xdist_worker():
    """Give each pytest-xdist worker its own share of the CPUs (worker i of n takes every n-th
    allowed core). XLA:CPU sizes its thread pools by the cores a process may use; two workers
    that both spread over the same cores fight for them, and a probe sweep measured 4.5x slower
    next to another worker than alone (61 s pinned, 215 s unpinned, on 2 cores). Set
    JWINIT_TEST_NO_PIN=1 to switch it off."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if (not worker.startswith("gw") or count < 2 or os.environ.get("JWINIT_TEST_NO_PIN")
            or not hasattr(os, "sched_setaffinity")):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if count > len(cpus):
        return
    share = cpus[int(worker[2:]) % count::count]
    os.sched_setaffinity(0, share)


_pin_xdist_worker()


def _session_compilation_cache():
    """One XLA compilation cache for the whole test session, shared by the xdist workers (the
    controller creates it before the workers start; they inherit the variable). Many tests compile
    the same programs again (the trainer's step for the same model in several tests, a fresh
    `jax.jit` of the same function): with the cache test_train.py took 170 s instead of 334 s on
    one core. The directory is new for every session (nothing carries over between CI runs); set
    JAX_COMPILATION_CACHE_DIR to choose one, or JWINIT_TEST_NO_CACHE=1 to switch it off."""
    import tempfile

    if os.environ.get("JWINIT_TEST_NO_CACHE") or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jwinit-test-xla-")
    os.environ["_JWINIT_TEST_CACHE_OWNER"] = str(os.getpid())
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.05")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


_session_compilation_cache()

# Must happen before JAX initializes its backends.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def key():
    return jax.random.key(0)


_SESSION_START = []


def pytest_configure(config):
    import time

    _SESSION_START.append(time.time())


def pytest_unconfigure(config):
    """Remove the session's compilation cache (in the process that created it)."""
    import shutil

    if os.environ.get("_JWINIT_TEST_CACHE_OWNER") == str(os.getpid()):
        shutil.rmtree(os.environ.get("JAX_COMPILATION_CACHE_DIR", ""), ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the wall time of every full config run in this session (tests/test_full_configs
    records them in pytest's cache, which xdist workers share with the controller)."""
    from jwinit.experiments.runner import shipped_configs

    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    if cache is None:
        return
    start = _SESSION_START[0] if _SESSION_START else 0.0
    rows = []
    for name in sorted(shipped_configs()):
        value = cache.get(f"jwinit/wall_time/{name}", None)
        if value and value[1] >= start:
            rows.append((name, value[0]))
    if rows:
        terminalreporter.write_sep("-", "full-config wall times (this session)")
        for name, seconds in rows:
            terminalreporter.write_line(f"{name:<32} {seconds:7.1f} s")


def pytest_collection_modifyitems(config, items):
    """The full-size configs first (their two halves, one class each: with --dist=loadscope and
    --no-loadscope-reorder each worker starts one half, the longest pieces of CI, and then takes
    the other files as it frees up; CI's wall time is then about half its work)."""
    items.sort(key=lambda item: item.get_closest_marker("full") is None)
