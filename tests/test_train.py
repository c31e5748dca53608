"""jwinit.train: one compiled program for many runs, divergence, devices, resume, bad inputs."""

import functools
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jwinit
from jwinit import train as jtrain

SGD = functools.partial(optax.sgd, momentum=0.9)


@pytest.fixture(scope="module")
def digits():
    return jwinit.data.digits()


@pytest.fixture(scope="module")
def small(digits):
    # 400 training examples keep evaluations cheap
    return jwinit.data.Dataset(digits.x_train[:400], digits.y_train[:400], digits.x_test[:200],
                               digits.y_test[:200])


MLP = jwinit.models.MLP(depth=2, width=16, output_dim=10, activation="tanh")


def test_many_inits_learning_rates_and_seeds_are_one_program(small):
    r = jtrain.train(MLP, small, inits={"he": jwinit.he_normal(), "glorot": "glorot_normal",
                                        "pair": (1.5, 0.05)},
                     optimizer=SGD, learning_rates=[0.01, 0.1], steps=40, seeds=2,
                     eval_every=10)
    assert r.chunk_traces == 1  # 12 runs, 4 chunks: traced and compiled once
    assert len(r.runs) == 12 and r.runs[0] == ("he", 0.01, 0) and r.runs[-1] == ("pair", 0.1, 1)
    assert r.train_loss.shape == (12, 5) and list(r.eval_steps) == [0, 10, 20, 30, 40]
    assert np.all(r.diverged_step == -1)
    # training lowers the loss of every run
    assert np.all(r.train_loss[:, -1] < r.train_loss[:, 0])
    rows = r.rows()
    assert len(rows) == 12 * 5 and rows[0]["init"] == "he" and rows[0]["step"] == 0
    assert {"train_loss", "test_loss", "test_accuracy", "diverged"} <= set(rows[0])
    s = r.summaries(target_loss=1.0, target_accuracy=0.5)
    assert len(s) == 12 and "steps_to_target_loss" in s[0]


def test_runs_do_not_depend_on_the_number_of_inits(small):
    # the same run computed in a program of 1 init or of 3 inits is the same, bit for bit
    kw = dict(optimizer=SGD, learning_rates=[0.05], steps=20, seeds=2, eval_every=10,
              runs_per_group=1)
    alone = jtrain.train(MLP, small, inits={"he": "he_normal"}, **kw)
    many = jtrain.train(MLP, small, inits={"lecun": "lecun_normal", "he": "he_normal",
                                           "tiny": "normal(stddev=0.001)"}, **kw)
    idx = many.select(init="he")
    np.testing.assert_array_equal(many.train_loss[idx], alone.train_loss)
    np.testing.assert_array_equal(many.test_accuracy[idx], alone.test_accuracy)


def test_initial_parameters_are_the_initializers_draws(small):
    r = jtrain.train(MLP, small, inits={"he": jwinit.he_uniform(), "zero": jwinit.zeros()},
                     optimizer=SGD, learning_rates=[1e-9], steps=1, seeds=[3], eval_every=1)
    # after one step of lr 1e-9 the kernels are their initial values to ~1e-9
    k = r.params["Dense_1"]["kernel"]
    assert k.shape == (2, 16, 16)
    bound = np.sqrt(6 / 16)  # he_uniform
    assert np.all(np.abs(k[0]) <= bound + 1e-6) and np.abs(k[0]).max() > 0.8 * bound
    np.testing.assert_allclose(k[1], 0.0, atol=1e-6)
    np.testing.assert_allclose(r.params["Dense_1"]["bias"][0], 0.0, atol=1e-6)  # biases zero
    # one rule engine: seed s starts from init_params(model, fold_in(fold_in(key, s), 0), x, rules)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 3), 0)
    want = jwinit.init_params(MLP, key, small.x_train[:64],
                              {r"(^|/)kernel$": jwinit.he_uniform(), r"(^|/)bias$": jwinit.zeros()})
    np.testing.assert_allclose(k[0], np.asarray(want["params"]["Dense_1"]["kernel"]), atol=1e-6)


def test_a_run_starts_from_init_params(small):
    """One engine: the same draws as init_params. The trainer samples op by op (vmapped over
    seeds, no compile per init); under jit XLA folds an initializer's scale multiplications into
    one constant, so values agree to float32 rounding: within 4 ulps (relative 4.8e-7)."""
    inits = {"he": jwinit.he_normal(),
             "rules": {r"Dense_1/kernel$": jwinit.orthogonal(), r"kernel$": jwinit.lecun_normal()}}
    start = jtrain.initial_variables(MLP, small, inits=inits, seeds=[0, 5], key=7, batch_size=32)
    assert set(start) == {"he", "rules"}
    x = small.x_train[:32]
    rules = {"he": {r"(^|/)kernel$": jwinit.he_normal(), r"(^|/)bias$": jwinit.zeros()},
             "rules": inits["rules"]}
    for name in inits:
        params, _ = start[name]
        for i, s in enumerate([0, 5]):
            key = jax.random.fold_in(jax.random.fold_in(jax.random.key(7), s), 0)
            want = jwinit.init_params(MLP, key, x, rules[name])["params"]
            got = jax.tree.map(lambda a, i=i: a[i], params)
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                b = np.asarray(b)
                np.testing.assert_allclose(np.asarray(a), b, rtol=4 * 1.2e-7,
                                           atol=4 * 1.2e-7 * float(np.abs(b).max()))


def test_a_diverging_run_is_marked_frozen_and_harms_no_other(small):
    relu = jwinit.models.MLP(depth=3, width=16, output_dim=10, activation="relu")
    kw = dict(inits={"he": "he_normal"}, optimizer=SGD, steps=30, seeds=2, eval_every=10)
    wild = jtrain.train(relu, small, learning_rates=[0.05, 1e6], **kw)
    tame = jtrain.train(relu, small, learning_rates=[0.05, 1e-4], **kw)
    blown = wild.select(learning_rate=1e6)
    assert np.all(wild.diverged_step[blown] >= 0)
    assert np.all(wild.diverged_step[wild.select(learning_rate=0.05)] == -1)
    # metrics are NaN from the first evaluation after the divergence; the run is frozen, finite
    assert np.all(np.isnan(wild.train_loss[blown, -1]))
    assert all(np.all(np.isfinite(leaf[blown])) for leaf in jax.tree.leaves(wild.params))
    s = wild.summaries()
    assert [row["diverged"] for row in s] == [False, False, True, True]
    # the runs beside it are exactly those of a call without it
    good = wild.select(learning_rate=0.05)
    np.testing.assert_array_equal(wild.train_loss[good], tame.train_loss[good])


def test_same_results_on_one_and_eight_devices(small):
    assert jax.local_device_count() == 8
    kw = dict(inits={"he": "he_normal", "pair": (1.2, 0.05)}, optimizer=SGD,
              learning_rates=[0.01, 0.1], steps=20, seeds=3, eval_every=10, signal=True)
    one = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("runs",))
    r1 = jtrain.train(MLP, small, mesh=one, **kw)
    r8 = jtrain.train(MLP, small, **kw)  # 12 runs in groups of 8: 2 devices
    r8b = jtrain.train(MLP, small, runs_per_group=2, **kw)  # 6 groups over 6 devices
    r1b = jtrain.train(MLP, small, runs_per_group=2, mesh=one, **kw)
    for a, b in ((r1, r8), (r1b, r8b)):
        for m in jtrain.METRICS + ("signal",):
            np.testing.assert_array_equal(getattr(a, m), getattr(b, m), err_msg=m)
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
            np.testing.assert_array_equal(x, y)


def test_resume_after_a_kill_between_chunks(small, tmp_path):
    kw = dict(inits={"he": "he_normal", "lecun": "lecun_normal"}, optimizer=optax.adam,
              learning_rates=[1e-3], steps=50, seeds=2, eval_every=10)
    whole = jtrain.train(MLP, small, **kw)
    path = tmp_path / "state.npz"
    seen = []

    def kill_after_two_chunks(done, total):
        seen.append(done)
        if done == 20:
            raise KeyboardInterrupt  # the process dies between chunks

    with pytest.raises(KeyboardInterrupt):
        jtrain.train(MLP, small, checkpoint=path, progress=kill_after_two_chunks, **kw)
    assert path.exists() and seen == [0, 10, 20]
    calls = []
    again = jtrain.train(MLP, small, checkpoint=path, progress=lambda d, t: calls.append(d), **kw)
    assert calls == [20, 30, 40, 50]  # resumed at step 20: three chunks left
    for m in jtrain.METRICS:
        np.testing.assert_array_equal(getattr(again, m), getattr(whole, m))
    # another setup is refused rather than overwritten
    with pytest.raises(ValueError, match="different training setup"):
        jtrain.train(MLP, small, checkpoint=path, **{**kw, "steps": 60})



def test_a_damaged_checkpoint_restarts_its_run_and_a_foreign_file_is_left_alone(small, tmp_path):
    """A checkpoint cut in half (a full disk, a partial copy) or missing its arrays restarts the
    run from step 0 with a warning naming it, to the same result; a path that is a folder or a
    file that is not an .npz is refused before any compute, and the file is left as it was."""
    kw = dict(inits={"he": "he_normal"}, optimizer=optax.adam, learning_rates=[1e-3], steps=20,
              seeds=2, eval_every=10)
    whole = jtrain.train(MLP, small, **kw)
    path = tmp_path / "state.npz"

    def stop_at_10(done, total):
        if done == 10:
            raise KeyboardInterrupt

    for damage in ("cut", "arrays"):
        path.unlink(missing_ok=True)
        with pytest.raises(KeyboardInterrupt):
            jtrain.train(MLP, small, checkpoint=path, progress=stop_at_10, **kw)
        data = path.read_bytes()
        if damage == "cut":
            path.write_bytes(data[: len(data) // 2])
        else:
            np.savez(path, meta=np.asarray("{}"))
        calls: list[int] = []
        with pytest.warns(RuntimeWarning, match=r"state\.npz.*restarts from step 0"):
            again = jtrain.train(MLP, small, checkpoint=path,
                                 progress=lambda d, t, calls=calls: calls.append(d), **kw)
        assert calls == [0, 10, 20]  # trained from the start
        for m in jtrain.METRICS:
            np.testing.assert_array_equal(getattr(again, m), getattr(whole, m))
    mine = tmp_path / "notes.npz"
    mine.write_text("a user's file, not a checkpoint")
    calls = []
    with pytest.raises(ValueError, match=r"notes\.npz' is a file that is not a checkpoint"):
        jtrain.train(MLP, small, checkpoint=mine, progress=lambda d, t: calls.append(d), **kw)
    assert mine.read_text() == "a user's file, not a checkpoint" and calls == []
    with pytest.raises(ValueError, match="is a folder"):
        jtrain.train(MLP, small, checkpoint=tmp_path, **kw)
    with pytest.raises(TypeError, match="`checkpoint` must be None or a path"):
        jtrain.train(MLP, small, checkpoint=3, **kw)


def test_signal_statistics_match_signal_report_at_init(small):
    r = jtrain.train(MLP, small, inits={"he": "he_normal"}, optimizer=SGD,
                     learning_rates=[0.1], steps=10, seeds=1, eval_every=10, signal=True,
                     signal_batch=128)
    assert r.signal_layers == ["Dense_0", "Dense_1", "Dense_2"]
    assert r.signal.shape == (1, 2, 3, len(jtrain.SIGNAL_FIELDS))
    # rebuild the initial parameters and compare with jwinit.signal_report's forward moments
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 0), 0)
    from jwinit.train._inits import apply_rules, resolve_inits

    spec = resolve_inits({"he": "he_normal"})[0]
    params = apply_rules(spec, MLP.init(key, small.x_train[:64])["params"], key)
    report = jwinit.signal_report(MLP, small.x_train[:128], {"params": params})
    np.testing.assert_allclose(r.signal_of("output_second_moment")[0, 0],
                               report.second_moments, rtol=1e-5)
    # the first layer's input is the data, standardized
    assert r.signal_of("input_second_moment")[0, 0, 0] == pytest.approx(
        float(np.mean(small.x_train[:128] ** 2)), rel=1e-5)
    assert np.all(r.signal_of("grad_second_moment") > 0)


class NNXNet(nnx.Module):
    def __init__(self, rngs):
        self.a = nnx.Linear(64, 32, rngs=rngs)
        self.bn = nnx.BatchNorm(32, rngs=rngs)
        self.b = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.b(jax.nn.relu(self.bn(self.a(x))))


class LinenBN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(32)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(10)(nn.relu(x))


def test_nnx_and_batchnorm_models_train(small):
    kw = dict(inits={"he": "he_normal", "ortho": jwinit.orthogonal()}, optimizer=SGD,
              learning_rates=[0.05], steps=60, seeds=2, eval_every=30)
    r = jtrain.train(NNXNet(nnx.Rngs(0)), small, **kw)
    # learned: test accuracy above chance (1/10) by more than 5 binomial standard errors of the
    # 200 test examples
    above_chance = 0.1 + 5 * math.sqrt(0.1 * 0.9 / len(small.y_test))
    assert np.all(r.test_accuracy[:, -1] > above_chance)
    assert r.rest["bn"]["mean"][...].shape == (4, 32)  # batch statistics were updated
    assert np.all(np.abs(r.rest["bn"]["mean"][...]) > 0)
    lin = jtrain.train(LinenBN(), small, train_kwargs={"train": True},
                       eval_kwargs={"train": False}, **kw)
    assert np.all(lin.test_accuracy[:, -1] > above_chance)
    assert np.all(np.abs(lin.rest["batch_stats"]["BatchNorm_0"]["mean"]) > 0)


def test_data_dependent_and_rule_inits(small):
    def lsuv_init(key, x):
        variables = MLP.init(key, x)
        return jwinit.lsuv(MLP, x, variables)

    rules = {r"Dense_2/kernel$": jwinit.zeros(), r"kernel$": "orthogonal", r"bias$": "zeros"}
    r = jtrain.train(MLP, small, inits={"lsuv": jtrain.variables_fn(lsuv_init), "rules": rules},
                     optimizer=SGD,
                     learning_rates=[0.05], steps=40, seeds=2, eval_every=20)
    assert np.all(r.train_loss[:, -1] < r.train_loss[:, 0])
    w = r.params["Dense_1"]["kernel"][r.select(init="rules")[0]]
    assert w.shape == (16, 16)


@pytest.mark.parametrize("change, error, words", [
    (dict(inits={"x": "he_nromal"}), ValueError, ["he_nromal"]),
    (dict(inits={"x": jwinit.he_normal}), TypeError, ["factory", "jwinit.he_normal()"]),
    (dict(mesh="cpu"), TypeError, ["`mesh`", "'cpu'", "jax.sharding.Mesh"]),
    (dict(train_kwargs={"training": True}), TypeError, ["`train_kwargs`", "'training'"]),
    (dict(optimizer=optax.lbfgs), TypeError, ["`optimizer`", "line search", "optax.sgd"]),
    (dict(inits={"x": jax.nn.initializers.he_normal}), TypeError,
     ["factory `jax.nn.initializers.he_normal`", "jax.nn.initializers.he_normal()"]),
    (dict(inits={"x": {"kernel$": nn.initializers.zeros_init}}), TypeError,
     ["factory `flax.linen.initializers.zeros_init`"]),
    # a two-argument callable is not an initializer: a variables function must say so
    (dict(inits={"x": lambda key, x: MLP.init(key, x)}), TypeError,
     ["two arguments", "(key, shape, dtype)", "jwinit.train.variables_fn(fn)"]),
    (dict(inits={}), TypeError, ["`inits`"]),
    # a rule of the wrong shape: checked as init_params checks it, not at compile time
    (dict(inits={"x": {r"Dense_0/kernel$": lambda k, s, d=np.float32: jax.numpy.zeros((3, 3), d)}}),
     ValueError, ["`rules`", "'Dense_0/kernel'", "(3, 3)", "(64, 16)"]),
    (dict(inits={"x": {"Dense_9/": "he_normal"}}), ValueError, ["Dense_9/", "matches no"]),
    (dict(inits={"x": {"*kernel": "he_normal"}}), ValueError, ["*kernel", "regular expression",
                                                               "kernel$"]),
    (dict(optimizer=optax.sgd(0.1)), TypeError, ["`optimizer`", "factory"]),
    (dict(optimizer=lambda learning_rate: 3), TypeError, ["`optimizer", "GradientTransformation"]),
    (dict(learning_rates=[0.1, -1.0]), ValueError, ["`learning_rates`", "-1.0"]),
    (dict(steps=0), ValueError, ["`steps`", "0"]),
    (dict(batch_size=10**6), ValueError, ["`batch_size`"]),
    (dict(seeds=0), ValueError, ["`seeds`"]),
    (dict(model=jwinit.models.MLP(depth=1, width=8, output_dim=3)), ValueError,
     ["10 classes", "(64, 10)", "(64, 3)"]),
    (dict(data=(np.ones((10, 5)), np.zeros(9, np.int32), np.ones((4, 5)), np.zeros(4, np.int32))),
     ValueError, ["one entry per example"]),
    (dict(model="mlp"), TypeError, ["`model`"]),
    (dict(progress="yes"), TypeError, ["`progress`", "'yes'", "True, False", "callable"]),
    (dict(batching="grouped"), ValueError, ["`batching`", "'grouped'", "'unroll'"]),
])
def test_bad_inputs_fail_early_naming_the_argument(small, change, error, words):
    kw = dict(model=MLP, data=small, inits={"he": "he_normal"}, optimizer=SGD,
              learning_rates=[0.1], steps=20, eval_every=10)
    kw.update(change)
    model, data = kw.pop("model"), kw.pop("data")
    with pytest.raises(error) as e:
        jtrain.train(model, data, **kw)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_a_positional_optimizer_factory_and_numpy_numbers_are_accepted(small):
    """optax's own factories take the learning rate first: a lambda lr: ... works as
    functools.partial does, with the same rows; numpy scalars and arrays are numbers."""
    kw = dict(inits={"he": "he_normal"}, steps=4, eval_every=2, batch_size=16)
    a = jtrain.train(MLP, small, optimizer=lambda lr: optax.sgd(lr, momentum=0.9),
                     learning_rates=np.array([0.01, 0.05]), seeds=np.int64(2), **kw)
    b = jtrain.train(MLP, small, optimizer=functools.partial(optax.sgd, momentum=0.9),
                     learning_rates=[np.float32(0.01), 0.05], seeds=[0, np.int64(1)], **kw)
    assert a.runs == b.runs == [("he", 0.01, 0), ("he", 0.01, 1), ("he", 0.05, 0),
                                ("he", 0.05, 1)]
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    with pytest.raises(TypeError, match="`optimizer`.*first argument"):
        jtrain.train(MLP, small, optimizer=lambda: optax.sgd(0.1), learning_rates=[0.1], **kw)


class SmallCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], 8, 8, 1)
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("model", [MLP, SmallCNN()], ids=["mlp", "cnn"])
def test_scan_and_loop_stepping_compute_the_same_runs(small, model):
    """The steps in one lax.scan per evaluation interval, or one compiled step dispatched from
    Python: the same steps from the same keys. The rows agree to float32 rounding (XLA may fuse
    a step differently inside a loop than alone), and every run's parameters likewise."""
    kw = dict(inits={"he": "he_normal", "lecun": "lecun_normal"}, optimizer=SGD,
              learning_rates=[0.02, 0.05], steps=20, seeds=2, eval_every=10)
    scan = jtrain.train(model, small, stepping="scan", **kw)
    loop = jtrain.train(model, small, stepping="loop", **kw)
    assert (scan.stepping, loop.stepping) == ("scan", "loop")
    for m in jtrain.METRICS[::2]:
        np.testing.assert_allclose(getattr(loop, m), getattr(scan, m), rtol=2e-5, err_msg=m)
    for a, b in zip(jax.tree.leaves(loop.params), jax.tree.leaves(scan.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert np.all(scan.train_loss[:, -1] < scan.train_loss[:, 0])
    # 'auto': a step per call for a convolution on CPU (jax-ml/jax#12868), a scan otherwise
    auto = jtrain.train(model, small, **{**kw, "steps": 10, "eval_every": 10})
    assert auto.stepping == ("loop" if model is not MLP else "scan")
    legal = r"`stepping` must be one of \('auto', 'scan', 'loop'\), got 'unrolled'"
    with pytest.raises(ValueError, match=legal):
        jtrain.train(model, small, stepping="unrolled", **kw)


@pytest.mark.parametrize("model", [MLP, SmallCNN()], ids=["mlp", "cnn"])
def test_vmapped_and_unrolled_batching_compute_the_same_runs(small, model):
    """Runs vectorized (a convolution vmapped over its kernel is a grouped convolution) or with
    every convolution computed run by run: the same arithmetic per run, so the rows agree to
    float32 rounding (XLA fuses the two programs differently), and the parameters likewise."""
    kw = dict(inits={"he": "he_normal", "lecun": "lecun_normal"}, optimizer=SGD,
              learning_rates=[0.02, 0.05], steps=20, seeds=[0, 3], eval_every=10,
              stepping="loop")
    vmapped = jtrain.train(model, small, batching="vmap", **kw)
    unrolled = jtrain.train(model, small, batching="unroll", **kw)
    assert (vmapped.batching, unrolled.batching) == ("vmap", "unroll")
    assert vmapped.runs == unrolled.runs
    for m in jtrain.METRICS[::2]:
        np.testing.assert_allclose(getattr(unrolled, m), getattr(vmapped, m), rtol=2e-5,
                                   err_msg=m)
    for a, b in zip(jax.tree.leaves(unrolled.params), jax.tree.leaves(vmapped.params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    auto = jtrain.train(model, small, **{**kw, "steps": 10, "stepping": "auto"})
    on_cpu = jax.default_backend() == "cpu"
    assert auto.batching == ("unroll" if on_cpu and model is not MLP else "vmap")


@pytest.mark.parametrize("model,stepping", [(MLP, "scan"), (MLP, "loop"), (SmallCNN(), "loop")],
                         ids=["mlp-scan", "mlp-loop", "cnn-loop"])
def test_groups_run_from_host_threads_compute_the_same_runs_bit_for_bit(small, model, stepping,
                                                                      tmp_path):
    """On one device, groups of runs are calls of one compiled program from host threads, at
    once: each group computes what it computes as the group of a device of the 8-device mesh, bit
    for bit, and what ``lax.map`` over the groups computes (threads=1): bit for bit for the MLP,
    to float32 rounding for the CNN (a loop body with a convolution compiles differently on
    XLA:CPU, jax-ml/jax#12868). A checkpointed, killed and resumed threaded call continues
    exactly."""
    one = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("runs",))
    kw = dict(inits={"he": "he_normal", "lecun": "lecun_normal"}, optimizer=SGD,
              learning_rates=[0.02, 0.05, 0.1], steps=8, seeds=1, eval_every=4,
              runs_per_group=2, stepping=stepping, batching="vmap")
    mapped = jtrain.train(model, small, mesh=one, threads=1, **kw)  # 3 groups, lax.map
    threaded = jtrain.train(model, small, mesh=one, threads=2, **kw)  # 3 groups, 2 threads
    devices = jtrain.train(model, small, **kw)  # 3 groups on 3 of the 8 devices
    assert (mapped.threads, threaded.threads, devices.threads) == (1, 2, 1)
    assert "2 host threads" in repr(threaded)
    exact = model is MLP
    for other, ref in ((threaded, devices), (threaded, mapped)):
        for m in jtrain.METRICS:
            if exact or ref is devices:
                np.testing.assert_array_equal(getattr(other, m), getattr(ref, m), err_msg=m)
            else:
                np.testing.assert_allclose(getattr(other, m), getattr(ref, m), rtol=1e-6,
                                           err_msg=m)
        for a, b in zip(jax.tree.leaves(other.params), jax.tree.leaves(ref.params), strict=True):
            if exact or ref is devices:
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    if (model, stepping) != (MLP, "scan"):
        return  # the kill, the resume and the default: once
    # killed after the first chunk, then resumed
    ckpt = str(tmp_path / "state.npz")

    def kill(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        jtrain.train(model, small, mesh=one, threads=2, checkpoint=ckpt, progress=kill, **kw)
    resumed = jtrain.train(model, small, mesh=one, threads=2, checkpoint=ckpt, **kw)
    np.testing.assert_array_equal(resumed.train_loss, threaded.train_loss)
    # the default on one CPU device: a thread per core, for as many groups as there are
    auto = jtrain.train(model, small, mesh=one, **kw)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert auto.threads == (min(3, cores, 8) if jax.default_backend() == "cpu" else 1)
    np.testing.assert_array_equal(auto.train_loss, (threaded if auto.threads > 1 else
                                                    mapped).train_loss)


class MLP64(nn.Module):
    """A float64 model (parameters and compute), for calls under ``jax.enable_x64``."""

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(16, dtype=jnp.float64, param_dtype=jnp.float64)(x))
        return nn.Dense(10, dtype=jnp.float64, param_dtype=jnp.float64)(x)


def test_host_threads_trace_nothing_under_their_own_config(small):
    """The caller's JAX context (here float64 by ``jax.enable_x64``) is thread-local: the host
    threads only call programs compiled in the caller's thread, so a threaded call of a float64
    model under it gives the rows of the unthreaded call bit for bit (an uneven last chunk has
    its own program, compiled the same way)."""
    one = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("runs",))
    kw = dict(inits={"he": "he_normal", "lecun": "lecun_normal"}, optimizer=SGD,
              learning_rates=[0.05], steps=7, seeds=2, eval_every=3, runs_per_group=2,
              mesh=one)
    enable = getattr(jax, "enable_x64", None)
    if enable is None:
        from jax.experimental import enable_x64 as enable
    with enable(True):
        mapped = jtrain.train(MLP64(), small, threads=1, **kw)
        threaded = jtrain.train(MLP64(), small, threads=2, **kw)
    assert threaded.threads == 2
    assert all(p.dtype == np.float64 for p in jax.tree.leaves(threaded.params))
    for m in jtrain.METRICS:
        np.testing.assert_array_equal(getattr(threaded, m), getattr(mapped, m), err_msg=m)


@pytest.mark.parametrize("threads,mesh_devices,words", [
    (0, 1, ["`threads`", "0", ">= 1"]),
    (2.5, 1, ["`threads`", "2.5"]),
    (2, 8, ["`threads`", "8 devices", "got 2"]),
])
def test_bad_threads_fail_before_any_compute(small, threads, mesh_devices, words):
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:mesh_devices]), ("runs",))
    with pytest.raises((ValueError, TypeError)) as e:
        jtrain.train(MLP, small, inits={"he": "he_normal"}, optimizer=SGD, learning_rates=[0.1],
                     steps=2, mesh=mesh, threads=threads)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_unrolled_convolutions_are_the_runs_own_and_equal_vmap():
    """`vmap_unrolled_convs` computes a convolution batched on input and kernel as one plain
    convolution per run (no grouped convolution in the program), one batched on the input only
    as vmap does, and equals jax.vmap of the function (forward and gradients)."""
    from jwinit.train._batching import vmap_unrolled_convs

    def fn(state, x):
        def loss(w):
            h = jax.lax.conv_general_dilated(state["x"], w, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            g = jax.lax.conv_general_dilated(x, w, (2, 2), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            return jax.numpy.sum(jax.numpy.tanh(h) ** 2) + jax.numpy.sum(g ** 3)
        return jax.value_and_grad(loss)(state["w"])

    k = jax.random.split(jax.random.key(0), 3)
    runs = 5
    state = {"x": jax.random.normal(k[0], (runs, 2, 6, 6, 3)),
             "w": jax.random.normal(k[1], (runs, 3, 3, 3, 4))}
    x = jax.random.normal(k[2], (2, 6, 6, 3))
    want = jax.jit(jax.vmap(fn, in_axes=(0, None)))(state, x)
    got = jax.jit(vmap_unrolled_convs(fn, 1))(state, x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    text = jax.jit(vmap_unrolled_convs(fn, 1)).lower(state, x).as_text()
    grouped = jax.jit(jax.vmap(fn, in_axes=(0, None))).lower(state, x).as_text()
    assert "feature_group_count = 5" in grouped or "batch_group_count = 5" in grouped
    assert "group_count = 5" not in text
    # the conv batched on input and kernel, forward and kernel gradient (no input gradient is
    # asked for): 2 per run; the conv of the shared input x, forward and kernel gradient, stays
    # vmapped: 2
    assert text.count("stablehlo.convolution") == 2 * runs + 2


def test_progress_line_on_a_terminal_only(small, monkeypatch):
    """By default a progress line (steps, rate, ETA) is drawn on standard error when it is a
    terminal; not when it is not, nor with progress=False; progress=True draws it anyway."""
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    kw = dict(inits={"he": "he_normal"}, optimizer=SGD, learning_rates=[0.05], steps=20,
              seeds=1, eval_every=10)
    for stream, progress, drawn in [(Terminal(), None, True), (io.StringIO(), None, False),
                                    (Terminal(), False, False), (io.StringIO(), True, True)]:
        monkeypatch.setattr("sys.stderr", stream)
        jtrain.train(MLP, small, progress=progress, **kw)
        text = stream.getvalue()
        if drawn:
            assert text.startswith("\rtrain: 0/20 steps (0%), 1 runs") and text.endswith("\n")
            assert "train: 20/20 steps (100%), 1 runs" in text
        else:
            assert text == ""


def test_progress_line_rate_eta_and_update_rate():
    """The line is rewritten at most once per min_interval (and always at the last step); its
    rate and ETA count the time since the compile ended."""
    import io

    from jwinit.train._progress import ProgressLine

    now = [0.0]  # binary fractions: exact times
    out = io.StringIO()
    line = ProgressLine(4, out, min_interval=0.5, clock=lambda: now[0])
    line(0, 1000)
    assert out.getvalue() == "\rtrain: 0/1000 steps (0%), 4 runs, 0.0 s, compiling"
    now[0] += 3.0  # the compile
    line.started(0)
    drawn = []
    for step in range(100, 1100, 100):  # a chunk every 0.125 s: drawn when 0.5 s have passed
        now[0] += 0.125
        before = line.writes
        line(step, 1000)
        drawn += [step] if line.writes > before else []
    assert drawn == [100, 500, 900, 1000]  # and always the last
    lines = out.getvalue().split("\r")[1:]
    assert len(lines) == line.writes == 5
    assert lines[2] == "train: 500/1000 steps (50%), 4 runs, 800 steps/s, 3.6 s, ETA 0.6 s"
    assert lines[-1].startswith("train: 1000/1000 steps (100%), 4 runs, 800 steps/s, 4.2 s")
    assert lines[-1].endswith("\n") and "ETA" not in lines[-1]


@pytest.mark.parametrize("stepping", ["scan", "loop"])
def test_steps_not_a_multiple_of_eval_every_evaluate_at_the_last_step(small, stepping):
    """25 steps every 10: evaluations at 0, 10, 20 and 25. The first 20 steps are the same
    steps as in a run of 30 (bit for bit: the same programs); the last 5 run in a shorter
    program of their own ('scan'), so the final rows agree with a run evaluated every 5 steps
    to float32 rounding (XLA fuses a 5-step scan differently from a 10-step one)."""
    kw = dict(inits={"he": "he_normal"}, optimizer=SGD, learning_rates=[0.05], seeds=2,
              stepping=stepping)
    r25 = jtrain.train(MLP, small, steps=25, eval_every=10, **kw)
    r30 = jtrain.train(MLP, small, steps=30, eval_every=10, **kw)
    every5 = jtrain.train(MLP, small, steps=25, eval_every=5, **kw)
    np.testing.assert_array_equal(r25.eval_steps, [0, 10, 20, 25])
    np.testing.assert_array_equal(r25.train_loss[:, :3], r30.train_loss[:, :3])
    np.testing.assert_allclose(r25.train_loss[:, 3], every5.train_loss[:, 5], rtol=2e-5)
    assert r25.chunk_traces == 1


def test_an_nnx_model_with_dropout_trains_checkpoints_and_resumes(small, tmp_path):
    """Its RNG state is typed PRNG keys: they stay keys in the result and round-trip through the
    checkpoint (before, the finished run was lost to np.asarray of a key array)."""
    def model():
        return nnx.Sequential(nnx.Linear(64, 16, rngs=nnx.Rngs(0)), nnx.relu,
                              nnx.Dropout(0.5, rngs=nnx.Rngs(1)),
                              nnx.Linear(16, 10, rngs=nnx.Rngs(2)))

    kw = dict(inits={"he": "he_normal"}, optimizer=SGD, learning_rates=[0.05], steps=10,
              seeds=2, batch_size=16, eval_every=5, checkpoint=tmp_path / "c.npz")
    first = jtrain.train(model(), small, **kw)
    assert np.all(np.isfinite(first.train_loss))
    keys = [a for a in jax.tree.leaves(first.rest)
            if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)]
    assert keys and all(k.shape[0] == 2 for k in keys)
    again = jtrain.train(model(), small, **kw)  # read back from the checkpoint
    np.testing.assert_array_equal(again.train_loss, first.train_loss)
    def raw(a):
        return jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a

    for a, b in zip(jax.tree.leaves(again.rest), jax.tree.leaves(first.rest), strict=True):
        np.testing.assert_array_equal(raw(a), raw(b))


def test_a_closure_with_any_parameter_names_is_an_initializer(small):
    """(k, s, d) is an initializer whatever its parameters are called: the same weights as the
    same draw named (key, shape, dtype)."""
    kw = dict(optimizer=SGD, learning_rates=[0.05], steps=2, seeds=1, eval_every=2)
    a = jtrain.train(MLP, small, inits={"x": lambda k, s, d=np.float32: jax.random.normal(
        k, s, d) * 0.1}, **kw)
    b = jtrain.train(MLP, small, inits={"x": lambda key, shape, dtype=np.float32: jax.random.normal(
        key, shape, dtype) * 0.1}, **kw)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
