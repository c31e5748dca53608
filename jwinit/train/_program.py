"""The compiled training program: every run of one architecture advances together.

One call of the program trains all runs (stacked parameters, vmapped) for one chunk of `chunk`
optax steps in a ``lax.scan`` (or one step per call, dispatched `chunk` times), and a second
program then evaluates them; the runs axis is sharded over the devices
with ``shard_map`` (runs are independent: no communication). On a single CPU device the groups of
runs are instead dispatched from `threads` host threads at once, each group a call of the same
compiled program: XLA:CPU computes a small vmapped step on about one core, and two groups at once
keep two cores busy. A run whose loss, gradient or update
is not finite is marked diverged at that step and frozen (its parameters and optimizer state stop
changing); it cannot affect the other runs, which never read its values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jwinit.train._batching import vmap_unrolled_convs
from jwinit.train._model import Functional

__all__ = ["Program", "SIGNAL_FIELDS", "loss_function", "METRICS"]

#: Per-layer statistics recorded during training (``signal=True``), for each kernel layer in call
#: order, on a fixed batch of training examples.
SIGNAL_FIELDS = ("input_mean", "input_second_moment", "output_mean", "output_second_moment",
                 "grad_second_moment")
#: Metrics of every evaluation, per run.
METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def _PROMOTION():  # noqa: N802 - a context manager factory
    """Standard dtype promotion while tracing: optimizers (optax) mix int32 step counts with
    float32 values, which a user's ``jax_numpy_dtype_promotion='strict'`` would refuse."""
    return jax.numpy_dtype_promotion("standard")


def _cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), y))


def _squared_error(out: jax.Array, y: jax.Array) -> jax.Array:
    out = out.astype(jnp.float32)
    out = out.reshape(y.shape) if out.size == y.size else out
    return jnp.mean(jnp.square(out - y))


def loss_function(task: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Mean softmax cross-entropy (integer labels) or mean squared error, in float32 (the same
    function object for a task on every call, so compiled programs keyed by it are reused)."""
    return _cross_entropy if task == "classification" else _squared_error


def _accuracy(task: str, out: jax.Array, y: jax.Array) -> jax.Array:
    if task != "classification":
        return jnp.asarray(jnp.nan, jnp.float32)
    return jnp.mean((jnp.argmax(out, axis=-1) == y).astype(jnp.float32))


@dataclasses.dataclass
class Program:
    """The training program of one architecture; `chunk_fn` is compiled once and reused.

    Attributes:
      fm: the model as pure functions.
      optimizer: the optax factory (wrapped in ``optax.inject_hyperparams`` so that the learning
        rate is a per-run value in the optimizer state).
      task: 'classification' or 'regression'.
      batch_size, chunk: examples per step and steps per call.
      signal: record per-layer statistics at each evaluation.
      mesh: devices the runs are sharded over (None: one device).
      group: runs vmapped together; a device runs its groups one after the other (``lax.map``),
        so every run is computed with the same shapes whatever the number of devices, and the
        results do not depend on it.
      stepping: 'scan' (the `chunk` steps of a call in one ``lax.scan``, then the evaluation:
        one dispatch per chunk) or 'loop' (one compiled step dispatched `chunk` times, then the
        evaluation: XLA:CPU runs convolutions inside a scan far slower than outside one,
        jax-ml/jax#12868). Both compute the same steps from the same keys.
      batching: 'vmap' (the runs of a group vectorized) or 'unroll' (vectorized too, but every
        convolution computed run by run, unrolled in the program: XLA:CPU computes a
        convolution vmapped over its kernel as a grouped convolution, far slower than separate
        ones; `jwinit.train._batching`).
      device: where `place` puts everything when the runs' mesh was one device (then `mesh` is
        None: no shard_map for one device).
      threads: with more than 1 (no mesh), the programs are compiled for ONE group and each
        group is a call of them, `threads` calls at once from a pool of host threads (the same
        per-group computation as ``lax.map`` over the groups or one group per device).
    """

    fm: Functional
    optimizer: Callable[..., Any]
    task: str
    batch_size: int
    chunk: int
    signal: bool
    mesh: jax.sharding.Mesh | None
    group: int = 1
    stepping: str = "scan"  # 'scan': one program per chunk; 'loop': one per step
    batching: str = "vmap"  # 'vmap': runs of a group vectorized; 'unroll': convolutions per run
    threads: int = 1  # host threads dispatching groups at once (one CPU device)
    device: Any = None  # the one device of a one-device mesh (no mesh then)
    traces: int = 0  # how many times the chunk program was traced (compiled)

    def __post_init__(self) -> None:
        self.tx = optax.inject_hyperparams(self.optimizer)(learning_rate=0.0)
        self.loss = loss_function(self.task)
        self._chunk = self._build_chunk()
        self._init_opt = jax.jit(jax.vmap(self._opt_init))

    # -- optimizer state ------------------------------------------------------------------------

    def _opt_init(self, params: Any, lr: jax.Array) -> Any:
        return optax.inject_hyperparams(self.optimizer)(learning_rate=lr).init(params)

    def init_optimizer(self, params: Any, lrs: jax.Array) -> Any:
        """Stacked optimizer states for stacked `params` and per-run learning rates `lrs`."""
        with _PROMOTION():
            return self._init_opt(params, lrs)

    # -- one run --------------------------------------------------------------------------------

    def _evaluate(self, params: Any, rest: Any, data: dict[str, jax.Array]) -> dict[str, Any]:
        out_tr, _ = self.fm.apply(params, rest, data["x_eval"], train=False)
        out_te, _ = self.fm.apply(params, rest, data["x_test"], train=False)
        metrics = {
            "train_loss": self.loss(out_tr, data["y_eval"]),
            "train_accuracy": _accuracy(self.task, out_tr, data["y_eval"]),
            "test_loss": self.loss(out_te, data["y_test"]),
            "test_accuracy": _accuracy(self.task, out_te, data["y_test"]),
        }
        if self.signal:
            metrics["signal"] = self._signal(params, rest, data["x_signal"], data["y_signal"])
        return metrics

    def _signal(self, params: Any, rest: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        """(layers, len(SIGNAL_FIELDS)): kernel layers' input/output moments and the mean square
        of the loss gradient with respect to each layer's output."""
        _, layers = self.fm.recorded(params, rest, x)
        zeros = {p: jnp.zeros_like(out) for p, _, out in layers}

        def loss_of(deltas):
            out, _ = self.fm.recorded(params, rest, x, deltas)
            return self.loss(out, y)

        grads = jax.grad(loss_of)(zeros)
        rows = []
        for p, inp, out in layers:
            inp = inp.astype(jnp.float32)
            out = out.astype(jnp.float32)
            rows.append(jnp.stack([jnp.mean(inp), jnp.mean(jnp.square(inp)), jnp.mean(out),
                                   jnp.mean(jnp.square(out)),
                                   jnp.mean(jnp.square(grads[p].astype(jnp.float32)))]))
        return jnp.stack(rows)

    def _run_chunk(self, state: dict[str, Any], t0: jax.Array, data: dict[str, jax.Array]
                   ) -> dict[str, Any]:
        """One run: `chunk` steps from step t0 (the 'scan' stepping), no evaluation."""
        return self._advance(state, t0, data, self.chunk)

    def _run_step(self, state: dict[str, Any], t0: jax.Array, data: dict[str, jax.Array]
                  ) -> dict[str, Any]:
        """One run: one step at step t0 (the 'loop' stepping), no evaluation."""
        return self._advance(state, t0, data, 1)

    def _advance(self, state: dict[str, Any], t0: jax.Array, data: dict[str, jax.Array],
                 n: int) -> dict[str, Any]:
        """One run: `n` optimizer steps from step t0 (a ``lax.scan``; one step is no loop)."""
        n_train = data["x_train"].shape[0]

        def step(carry, t):
            params, rest, opt_state, diverged = carry
            k_run = jax.random.wrap_key_data(state["data_key"])  # raw: checkpoints are numpy
            k_batch, k_drop = jax.random.split(jax.random.fold_in(k_run, t))
            idx = jax.random.randint(k_batch, (self.batch_size,), 0, n_train)
            xb, yb = data["x_train"][idx], data["y_train"][idx]

            def loss_of(p):
                out, new_rest = self.fm.apply(p, rest, xb, train=True, key=k_drop)
                return self.loss(out, yb), new_rest

            (loss, new_rest), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
            updates, new_opt = self.tx.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            finite = (jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
                      & jnp.isfinite(optax.tree.norm(updates)))
            alive = diverged < 0
            keep = alive & finite

            def pick(new, old):
                return jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, old)

            carry = (pick(new_params, params), pick(new_rest, rest), pick(new_opt, opt_state),
                     jnp.where(alive & ~finite, t, diverged))
            return carry, None

        carry = (state["params"], state["rest"], state["opt_state"], state["diverged"])
        if n == 1:  # no loop at all: XLA:CPU runs a convolution in a loop body far slower
            (params, rest, opt_state, diverged), _ = step(carry, t0)
        else:
            steps = t0 + jnp.arange(n, dtype=jnp.int32)
            (params, rest, opt_state, diverged), _ = lax.scan(step, carry, steps)
        return {**state, "params": params, "rest": rest, "opt_state": opt_state,
                "diverged": diverged}

    def _run_eval(self, state: dict[str, Any], data: dict[str, jax.Array]) -> dict[str, Any]:
        return self._evaluate(state["params"], state["rest"], data)

    # -- all runs -------------------------------------------------------------------------------

    def _sharded(self, fn: Callable[..., Any], n_extra: int) -> Callable[..., Any]:
        """`fn(state, *extra)` over the runs of `state` (vmapped in groups of `group`, the groups
        one after the other), sharded over the mesh."""
        if self.batching == "unroll":
            vmapped = vmap_unrolled_convs(fn, n_extra)
        else:
            vmapped = jax.vmap(fn, in_axes=(0,) + (None,) * n_extra)
        g = self.group

        def batched(state, *extra):
            n = jax.tree.leaves(state)[0].shape[0]
            if n == 1:  # one run: no batch dimensions in the program (it compiles faster)
                out = fn(jax.tree.map(lambda a: a[0], state), *extra)
                return jax.tree.map(lambda a: a[None], out)
            if n == g:
                return vmapped(state, *extra)
            grouped = jax.tree.map(lambda a: a.reshape(n // g, g, *a.shape[1:]), state)
            out = lax.map(lambda s: vmapped(s, *extra), grouped)
            return jax.tree.map(lambda a: a.reshape(n, *a.shape[2:]), out)

        if self.mesh is None or self.threads > 1:
            return batched
        from jax.sharding import PartitionSpec as P

        runs = P(tuple(self.mesh.axis_names))
        return jax.shard_map(batched, mesh=self.mesh, in_specs=(runs,) + (P(),) * n_extra,
                             out_specs=runs, check_vma=False)

    def _build_chunk(self) -> Callable[..., Any]:
        body = self._sharded(self._run_step if self.stepping == "loop" else self._run_chunk, 2)

        def counted(state, t0, data):
            self.traces += 1
            return body(state, t0, data)

        return jax.jit(counted, donate_argnums=(0,))

    def _tail(self, n: int) -> Callable[..., Any]:
        """The 'scan' program of a last, shorter chunk of `n` steps (compiled once, on use)."""
        tails = self.__dict__.setdefault("_tails", {})
        if n not in tails:
            def run(state, t0, data):
                return self._advance(state, t0, data, n)

            tails[n] = jax.jit(self._sharded(run, 2), donate_argnums=(0,))
        return tails[n]

    def place(self, state: dict[str, Any], data: dict[str, jax.Array]
              ) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        """The state sharded over the mesh by runs, the data replicated (so that every chunk call
        sees the same input shardings and the program compiles once); or both on `device`."""
        if self.mesh is None:
            if self.device is None:
                return state, data
            return jax.device_put((state, data), self.device)
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        runs = NamedSharding(self.mesh, P(tuple(self.mesh.axis_names)))
        return (jax.device_put(state, runs),
                jax.device_put(data, NamedSharding(self.mesh, P())))

    # -- host threads (one CPU device) ---------------------------------------------------------

    def _groups(self, state: Any) -> int:
        return jax.tree.leaves(state)[0].shape[0] // self.group if self.threads > 1 else 1

    def _split(self, state: Any) -> list[Any]:
        """The groups of `state` (one jitted call, so that the slicing is one dispatch)."""
        n = self._groups(state)
        if n == 1:
            return [state]
        if not hasattr(self, "_splitter"):
            g = self.group

            def split(s: Any) -> list[Any]:
                n_runs = jax.tree.leaves(s)[0].shape[0]
                return [jax.tree.map(lambda a, i=i: a[i * g:(i + 1) * g], s)
                        for i in range(n_runs // g)]

            self._splitter = jax.jit(split)
        return self._splitter(state)

    def _merge(self, parts: list[Any]) -> Any:
        if len(parts) == 1:
            return parts[0]
        if not hasattr(self, "_merger"):
            self._merger = jax.jit(lambda ps: jax.tree.map(
                lambda *xs: jnp.concatenate(xs, axis=0), *ps))
        return self._merger(parts)

    def _pool(self) -> Any:
        if not hasattr(self, "_executor"):
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="jwinit-train")
        return self._executor

    def _each_group(self, fn: Callable[[Any], Any], state: Any) -> list[Any]:
        """[fn(group) for each group of `state`], `threads` groups at once (each call waits for
        its result in its thread, so the groups compute concurrently)."""
        parts = self._split(state)
        if len(parts) == 1:
            return [fn(parts[0])]

        def run(part: Any) -> Any:
            with _PROMOTION():
                return jax.block_until_ready(fn(part))

        return list(self._pool().map(run, parts))

    def close(self) -> None:
        """Shut the host threads down (a no-op without them)."""
        executor = self.__dict__.pop("_executor", None)
        if executor is not None:
            executor.shutdown(wait=True)

    # -- calls ----------------------------------------------------------------------------------

    def compile(self, state: dict[str, Any], data: dict[str, jax.Array]) -> float:
        """Compile the chunk program for these arguments ahead of time (for one group with host
        threads); returns the seconds."""
        import time

        start = time.perf_counter()
        t0 = jnp.asarray(0, jnp.int32)
        if self._groups(state) > 1:
            self._compiled = self._for_group(self._chunk, "chunk", state, t0, data)
        else:
            with _PROMOTION():
                self._compiled = self._chunk.lower(state, t0, data).compile()
        return time.perf_counter() - start

    def _for_group(self, jitted: Callable[..., Any], key: Any, state: Any, *extra: Any
                   ) -> Callable[..., Any]:
        """`jitted` compiled, here in the calling thread, for one group's state (so that the
        host threads only call compiled programs: no tracing under their own JAX config, which
        does not see the caller's context managers)."""
        cache = self.__dict__.setdefault("_group_programs", {})
        if key not in cache:
            abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct((self.group, *a.shape[1:]),
                                                                   a.dtype), state)
            with _PROMOTION():
                cache[key] = jitted.lower(abstract, *extra).compile()
        return cache[key]

    def run_chunk(self, state: dict[str, Any], t0: int, data: dict[str, jax.Array],
                  n: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Advance every run by `n` steps (default `chunk`) from step `t0`, then evaluate them
        (the evaluation is its own compiled program, the same one as at step 0); returns (state,
        metrics). With 'loop' stepping the compiled program is one step, dispatched `n` times
        from Python (asynchronously: the host does not wait between steps); with 'scan', a last
        chunk shorter than `chunk` (steps not a multiple of it) has its own program."""
        n = self.chunk if n is None else n
        if getattr(self, "_compiled", None) is None:
            self.compile(state, data)
        threaded = self._groups(state) > 1
        if self.stepping == "scan":
            t = jnp.asarray(t0, jnp.int32)
            program = self._compiled
            if n != self.chunk:
                program = (self._for_group(self._tail(n), ("tail", n), state, t, data)
                           if threaded else self._tail(n))

            def advance(part: Any) -> Any:
                return program(part, t, data)
        else:
            steps = [jnp.asarray(step, jnp.int32) for step in range(t0, t0 + n)]

            def advance(part: Any) -> Any:
                for step in steps:
                    part = self._compiled(part, step, data)
                return part

        if threaded:
            state = self._merge(self._each_group(advance, state))
        else:
            with _PROMOTION():
                state = advance(state)
        return state, self.evaluate(state, data)

    def evaluate(self, state: dict[str, Any], data: dict[str, jax.Array]) -> dict[str, Any]:
        """Metrics of every run at its current parameters (the step-0 evaluation)."""
        if not hasattr(self, "_eval"):
            self._eval = jax.jit(self._sharded(self._run_eval, 1))
        if self._groups(state) > 1:
            program = self._for_group(self._eval, "eval", state, data)
            return self._merge(self._each_group(lambda part: program(part, data), state))
        with _PROMOTION():
            return self._eval(state, data)
