"""The compiled training program: every run of one architecture advances together.

One call of the program trains all runs (stacked parameters, vmapped) for one chunk of `chunk`
optax steps in a ``lax.scan`` (or one step per call, dispatched `chunk` times), and a second
program then evaluates them, `eval_batch` examples per forward pass; the runs axis is sharded over
the devices with ``shard_map`` (runs are independent: no communication). On a single CPU device
the groups of runs (by default single runs) are instead calls of the same compiled program from
`threads` host threads at once: XLA:CPU computes one call on about one core, and two calls at
once keep two cores busy. A run whose loss or update is not finite is marked diverged at that
step and frozen (its parameters and optimizer state stop changing); it cannot affect the other
runs, which never read its values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jwinit._programs import compiler_options
from jwinit.train._batching import vmap_unrolled_convs
from jwinit.train._model import Functional

__all__ = ["Program", "SIGNAL_FIELDS", "loss_function", "METRICS"]

#: Per-layer statistics recorded during training (``signal=True``), for each kernel layer in call
#: order, on a fixed batch of training examples.
SIGNAL_FIELDS = ("input_mean", "input_second_moment", "output_mean", "output_second_moment",
                 "grad_second_moment")
#: Metrics of every evaluation, per run.
METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def _concatenated(parts: list[Any]) -> Any:
    """Host trees (numpy leaves, or typed PRNG keys) joined along the runs axis."""
    def join(*xs: Any) -> Any:
        if jax.dtypes.issubdtype(xs[0].dtype, jax.dtypes.prng_key):
            return jnp.concatenate(xs)
        return np.concatenate([np.asarray(x) for x in xs])

    return jax.tree.map(join, *parts)


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
      eval_batch: an evaluation's forward passes take this many examples at a time (a
        ``lax.map`` over batches of the evaluation examples followed by the test set, the last
        padded with copies of the first examples, their outputs dropped); None: all at once.
        On XLA:CPU a pass over a set too large for the cache is several times slower per
        example (the benchmark's Transformer: 106 ms for 5120 sequences at once, 29 ms in
        batches of 256).
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
    eval_batch: int | None = None  # examples per forward pass of an evaluation (None: all)
    traces: int = 0  # how many times the chunk program was traced (compiled)

    def __post_init__(self) -> None:
        self.tx = optax.inject_hyperparams(self.optimizer)(learning_rate=0.0)
        self.loss = loss_function(self.task)
        self._chunk = self._build_chunk()

    # -- optimizer state ------------------------------------------------------------------------

    def opt_init(self, params: Any, lr: jax.Array) -> Any:
        """One run's optimizer state for learning rate `lr` (traceable; vmap it over runs)."""
        return optax.inject_hyperparams(self.optimizer)(learning_rate=lr).init(params)

    # -- one run --------------------------------------------------------------------------------

    def _output(self, state: dict[str, Any], x: jax.Array) -> jax.Array:
        """One run's evaluation-mode output for the inputs `x`."""
        return self.fm.apply(state["params"], state["rest"], x, train=False)[0]

    def _metrics(self, out_tr: jax.Array, out_te: jax.Array, data: dict[str, jax.Array]
                 ) -> dict[str, jax.Array]:
        """One run's metrics from its outputs on the evaluation and the test set."""
        return {
            "train_loss": self.loss(out_tr, data["y_eval"]),
            "train_accuracy": _accuracy(self.task, out_tr, data["y_eval"]),
            "test_loss": self.loss(out_te, data["y_test"]),
            "test_accuracy": _accuracy(self.task, out_te, data["y_test"]),
        }

    def _outputs(self, output: Callable[..., Any], state: dict[str, Any], x: jax.Array
                 ) -> jax.Array:
        """A group's outputs (runs first) on `x`, `eval_batch` examples per forward pass."""
        n, b = x.shape[0], self.eval_batch
        if b is None or n <= b:
            return output(state, x)
        m = -(-n // b)
        padded = jnp.concatenate([x, x[: m * b - n]]) if m * b > n else x
        out = lax.map(lambda xb: output(state, xb), padded.reshape(m, b, *x.shape[1:]))
        out = jnp.moveaxis(out, 0, 1)  # (runs, batches, b, ...)
        return out.reshape(out.shape[0], m * b, *out.shape[3:])[:, :n]

    def _group_eval(self, state: dict[str, Any], data: dict[str, jax.Array]) -> dict[str, Any]:
        """Metrics of a group of runs (stacked state)."""
        output = self._vectorized(self._output, 1)
        out = self._outputs(output, state, data["x_evaluate"])
        n_eval = data["y_eval"].shape[0]
        out_tr, out_te = out[:, :n_eval], out[:, n_eval:]
        metrics = jax.vmap(self._metrics, in_axes=(0, 0, None))(out_tr, out_te, data)
        if self.signal:
            metrics["signal"] = self._vectorized(self._run_signal, 1)(state, data)
        return metrics

    def _run_signal(self, state: dict[str, Any], data: dict[str, jax.Array]) -> jax.Array:
        return self._signal(state["params"], state["rest"], data["x_signal"], data["y_signal"])

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
            # the update, not the gradient: an optimizer may deal with a non-finite gradient
            # itself (optax.apply_if_finite skips the step), and its run goes on
            finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(updates))
            alive = diverged < 0
            # one conditional, not a select per leaf (XLA:CPU compiled those as a kernel each:
            # a 30-layer MLP's step 0.96 s against 0.77 s); under vmap it is the select
            params, rest, opt_state = lax.cond(alive & finite,
                                               lambda: (new_params, new_rest, new_opt),
                                               lambda: (params, rest, opt_state))
            return (params, rest, opt_state, jnp.where(alive & ~finite, t, diverged)), None

        carry = (state["params"], state["rest"], state["opt_state"], state["diverged"])
        if n == 1:  # no loop at all: XLA:CPU runs a convolution in a loop body far slower
            (params, rest, opt_state, diverged), _ = step(carry, t0)
        else:
            steps = t0 + jnp.arange(n, dtype=jnp.int32)
            (params, rest, opt_state, diverged), _ = lax.scan(step, carry, steps)
        return {**state, "params": params, "rest": rest, "opt_state": opt_state,
                "diverged": diverged}

    # -- all runs -------------------------------------------------------------------------------

    def _vectorized(self, fn: Callable[..., Any], n_extra: int) -> Callable[..., Any]:
        """`fn(state, *extra)` of one run as a function of a group's stacked state: vmapped, or
        with convolutions unrolled ('unroll'); a group of one run has no batch dimensions in
        the program (it compiles faster)."""
        if self.batching == "unroll":
            vmapped = vmap_unrolled_convs(fn, n_extra)
        else:
            vmapped = jax.vmap(fn, in_axes=(0,) + (None,) * n_extra)

        def group(state, *extra):
            if jax.tree.leaves(state)[0].shape[0] == 1:
                out = fn(jax.tree.map(lambda a: a[0], state), *extra)
                return jax.tree.map(lambda a: a[None], out)
            return vmapped(state, *extra)

        return group

    def _sharded(self, group_fn: Callable[..., Any], n_extra: int) -> Callable[..., Any]:
        """`group_fn(state, *extra)` over all runs of `state`: in groups of `group` runs, the
        groups one after the other, sharded over the mesh."""
        g = self.group

        def batched(state, *extra):
            n = jax.tree.leaves(state)[0].shape[0]
            if n <= g:
                return group_fn(state, *extra)
            grouped = jax.tree.map(lambda a: a.reshape(n // g, g, *a.shape[1:]), state)
            out = lax.map(lambda s: group_fn(s, *extra), grouped)
            return jax.tree.map(lambda a: a.reshape(n, *a.shape[2:]), out)

        if self.mesh is None or self.threads > 1:
            return batched
        from jax.sharding import PartitionSpec as P

        runs = P(tuple(self.mesh.axis_names))
        return jax.shard_map(batched, mesh=self.mesh, in_specs=(runs,) + (P(),) * n_extra,
                             out_specs=runs, check_vma=False)

    def _build_chunk(self) -> Callable[..., Any]:
        body = self._sharded(self._vectorized(
            self._run_step if self.stepping == "loop" else self._run_chunk, 2), 2)

        def counted(state, t0, data):
            self.traces += 1
            return body(state, t0, data)

        return jax.jit(counted, donate_argnums=(0,), compiler_options=compiler_options())

    def _tail(self, n: int) -> Callable[..., Any]:
        """The 'scan' program of a last, shorter chunk of `n` steps (compiled once, on use)."""
        tails = self.__dict__.setdefault("_tails", {})
        if n not in tails:
            def run(state, t0, data):
                return self._advance(state, t0, data, n)

            tails[n] = jax.jit(self._sharded(self._vectorized(run, 2), 2), donate_argnums=(0,),
                               compiler_options=compiler_options())
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

    def hold(self, state: dict[str, Any]) -> Any:
        """The state as the calls take it: with host threads, the list of the groups' states
        (sliced once, each group's calls then feed the next ones: no copies between chunks),
        else `state` itself."""
        n = self._groups(state)
        if n == 1:
            return state
        g = self.group
        return [jax.tree.map(lambda a, i=i: lax.dynamic_slice_in_dim(a, i * g, g), state)
                for i in range(n)]

    def gather(self, held: Any) -> Any:
        """The whole state from `hold`'s form, on the host (numpy; typed PRNG keys stay keys)."""
        if not isinstance(held, list):
            return jax.device_get(held)
        return _concatenated(jax.device_get(held))

    def diverged(self, held: Any) -> np.ndarray:
        """Every run's divergence step (-1: none) from `hold`'s form."""
        parts = held if isinstance(held, list) else [held]
        return np.concatenate([np.asarray(jax.device_get(p["diverged"])) for p in parts])

    def _pool(self) -> Any:
        if not hasattr(self, "_executor"):
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="jwinit-train")
        return self._executor

    def _each_group(self, fn: Callable[[Any], Any], parts: list[Any]) -> list[Any]:
        """[fn(part) for each group's part], `threads` groups at once (each call waits for its
        result in its thread, so the groups compute concurrently)."""

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

    def compile(self, held: Any, data: dict[str, jax.Array]) -> float:
        """Compile the chunk program for these arguments (`hold`'s form) ahead of time (for one
        group with host threads); returns the seconds."""
        import time

        start = time.perf_counter()
        t0 = jnp.asarray(0, jnp.int32)
        if isinstance(held, list):
            self._compiled = self._for_group(self._chunk, "chunk", held[0], t0, data)
        else:
            with _PROMOTION():
                self._compiled = self._chunk.lower(held, t0, data).compile()
        return time.perf_counter() - start

    def _for_group(self, jitted: Callable[..., Any], key: Any, part: Any, *extra: Any
                   ) -> Callable[..., Any]:
        """`jitted` compiled, here in the calling thread, for one group's state `part` (so that the
        host threads only call compiled programs: no tracing under their own JAX config, which
        does not see the caller's context managers)."""
        cache = self.__dict__.setdefault("_group_programs", {})
        if key not in cache:
            abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), part)
            with _PROMOTION():
                cache[key] = jitted.lower(abstract, *extra).compile()
        return cache[key]

    def run_chunk(self, held: Any, t0: int, data: dict[str, jax.Array],
                  n: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Advance every run by `n` steps (default `chunk`) from step `t0`, then evaluate them
        (the evaluation is its own compiled program, the same one as at step 0); takes and
        returns the state in `hold`'s form; returns (state, metrics). With 'loop' stepping the
        compiled program is one step, dispatched `n` times from Python (asynchronously: the host
        does not wait between steps); with 'scan', a last chunk shorter than `chunk` (steps not
        a multiple of it) has its own program."""
        n = self.chunk if n is None else n
        if getattr(self, "_compiled", None) is None:
            self.compile(held, data)
        threaded = isinstance(held, list)
        if self.stepping == "scan":
            t = jnp.asarray(t0, jnp.int32)
            program = self._compiled
            if n != self.chunk:
                program = (self._for_group(self._tail(n), ("tail", n), held[0], t, data)
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
            held = self._each_group(advance, held)
        else:
            with _PROMOTION():
                held = advance(held)
        return held, self.evaluate(held, data)

    def evaluate(self, held: Any, data: dict[str, jax.Array]) -> dict[str, Any]:
        """Metrics of every run at its current parameters (the step-0 evaluation), from the state
        in `hold`'s form (on the host with host threads)."""
        if not hasattr(self, "_eval"):
            self._eval = jax.jit(self._sharded(self._group_eval, 1),
                                 compiler_options=compiler_options())
        if isinstance(held, list):
            program = self._for_group(self._eval, "eval", held[0], data)
            parts = self._each_group(lambda part: program(part, data), held)
            return _concatenated(jax.device_get(parts))
        with _PROMOTION():
            return self._eval(held, data)
