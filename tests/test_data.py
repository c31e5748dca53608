"""jwinit.data: shapes, the fixed split, standardization, the teacher and the adding problem."""

import math

import numpy as np
import pytest

import jwinit
from jwinit import data as jdata


def test_digits_split_is_fixed_disjoint_and_complete():
    from sklearn.datasets import load_digits

    d = jdata.digits(standardize=False)
    assert d.x_train.shape == (1438, 64) and d.x_test.shape == (359, 64)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert d.task == "classification" and d.num_classes == 10 and d.output_dim == 10
    raw = load_digits()
    order = np.random.default_rng(0).permutation(1797)  # the documented split
    np.testing.assert_array_equal(d.x_train, raw.data[order[:1438]].astype(np.float32))
    np.testing.assert_array_equal(d.y_test, raw.target[order[1438:]])
    # every example exactly once
    both = np.concatenate([d.x_train, d.x_test])
    assert len({row.tobytes() for row in both}) == len({r.tobytes() for r in
                                                         raw.data.astype(np.float32)})
    again = jdata.digits(standardize=False)
    np.testing.assert_array_equal(again.x_test, d.x_test)


def test_digits_ship_with_jwinit_and_need_no_scikit_learn(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` now fails
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    d = jdata.digits(standardize=False)
    assert d.x_train.shape == (1438, 64) and set(np.unique(d.y_train)) == set(range(10))


def test_digits_standardized_with_training_statistics():
    raw = jdata.digits(standardize=False)
    d = jdata.digits()
    mean, std = raw.x_train.mean(0), raw.x_train.std(0)
    varying = std > 0
    assert (~varying).sum() >= 1  # the always-blank corner pixels
    np.testing.assert_allclose(d.x_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(d.x_train[:, varying].std(0), 1.0, rtol=1e-4)
    np.testing.assert_allclose(d.x_train[:, ~varying], 0.0, atol=1e-6)  # centred only
    # the test set uses the training set's statistics, not its own
    expected = (raw.x_test[:, varying] - mean[varying]) / std[varying]
    np.testing.assert_allclose(d.x_test[:, varying], expected, rtol=1e-5, atol=1e-5)


def test_digits_as_an_autoencoder_task():
    """target='inputs': y is x (standardized as x is), a 64-output regression task whose mean
    squared error at output 0 is the mean pixel variance (1 per pixel, 0 for constant pixels)."""
    labels = jwinit.data.digits()
    auto = jwinit.data.digits(target="inputs")
    np.testing.assert_array_equal(auto.x_train, labels.x_train)
    np.testing.assert_array_equal(auto.y_train, auto.x_train)
    np.testing.assert_array_equal(auto.y_test, auto.x_test)
    assert auto.y_train is not auto.x_train and auto.y_train.dtype == np.float32
    assert (auto.task, auto.output_dim) == ("regression", 64)
    constant = int((labels.x_train.std(axis=0) == 0).sum())
    assert np.mean(auto.y_train**2) == pytest.approx((64 - constant) / 64, rel=1e-5)
    raw = jwinit.data.load("digits", target="inputs", standardize=False)
    assert raw.y_train.max() == 16.0
    with pytest.raises(ValueError, match=r"`target`.*\('labels', 'inputs'\).*'pixels'"):
        jwinit.data.digits(target="pixels")


def test_teacher_classification_and_regression():
    d = jdata.teacher(n_train=600, n_test=200, input_dim=8, width=16, depth=2, output_dim=4)
    assert d.x_train.shape == (600, 8) and d.y_test.shape == (200,)
    assert d.num_classes == 4 and d.y_train.dtype == np.int32
    counts = np.bincount(np.concatenate([d.y_train, d.y_test]), minlength=4)
    assert counts.min() > 0  # a random teacher uses every class
    np.testing.assert_array_equal(jdata.teacher(n_train=600, n_test=200, input_dim=8, width=16,
                                                depth=2, output_dim=4).x_train, d.x_train)
    r = jdata.teacher(n_train=1000, n_test=10, task="regression", output_dim=1, noise=0.0)
    assert r.task == "regression" and r.y_train.shape == (1000,) and r.output_dim == 1
    # the readout is normalized to unit standard deviation over all the data
    ally = np.concatenate([r.y_train, r.y_test])
    assert float(ally.std()) == pytest.approx(1.0, rel=1e-5)
    r3 = jdata.teacher(task="regression", output_dim=3)
    assert r3.y_train.shape == (2048, 3) and r3.output_dim == 3


def test_adding_problem_follows_its_definition():
    d = jdata.adding_problem(50, 4000, seed=1)
    assert d.x_train.shape == (4000, 50, 2) and d.x_test.shape == (1000, 50, 2)
    x, y = d.x_train, d.y_train
    markers = x[..., 1]
    assert np.all(markers.sum(1) == 2)
    assert np.all(markers[:, :25].sum(1) == 1) and np.all(markers[:, 25:].sum(1) == 1)
    np.testing.assert_allclose(y, (x[..., 0] * markers).sum(1), rtol=1e-6)
    # predicting 1 gives MSE Var(U1 + U2) = 1/6; its standard error over n examples is
    # sqrt(Var((S - 1)^2) / n) with Var((S-1)^2) = E(S-1)^4 - (1/6)^2 = 1/15 - 1/36.
    mse = float(np.mean((y - 1.0) ** 2))
    se = math.sqrt((1 / 15 - 1 / 36) / len(y))
    assert abs(mse - 1 / 6) <= 5 * se


def test_majority_labels_are_the_strict_most_frequent_token():
    d = jdata.majority(vocab=5, length=9, n=3000, seed=2)
    assert d.x_train.shape == (3000, 9) and d.x_test.shape == (750, 9)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    x = np.concatenate([d.x_train, d.x_test]).astype(int)
    y = np.concatenate([d.y_train, d.y_test])
    counts = (x[:, :, None] == np.arange(5)).sum(axis=1)
    top = np.sort(counts, axis=1)
    assert np.all(top[:, -1] > top[:, -2])  # no ties
    np.testing.assert_array_equal(counts[np.arange(len(y)), y], top[:, -1])
    # the classes are balanced by symmetry: each frequency within 5 binomial standard errors
    freq = np.bincount(y, minlength=5) / len(y)
    assert np.all(np.abs(freq - 0.2) <= 5 * math.sqrt(0.2 * 0.8 / len(y)))
    again = jdata.load("majority", vocab=5, length=9, n=3000, seed=2)
    np.testing.assert_array_equal(again.x_train, d.x_train)


def test_npz_round_trip_and_errors(tmp_path):
    d = jdata.teacher(n_train=50, n_test=20, input_dim=3, output_dim=2)
    path = tmp_path / "mine.npz"
    np.savez(path, **d._asdict())
    back = jdata.load(str(path))
    for a, b in zip(back, d, strict=True):
        np.testing.assert_array_equal(a, b)
    np.savez(tmp_path / "bad.npz", x_train=d.x_train, y_train=d.y_train)
    with pytest.raises(ValueError, match="lacks the array"):
        jdata.load(str(tmp_path / "bad.npz"))
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        jdata.load(str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "short.npz", x_train=d.x_train, y_train=d.y_train[:-1],
             x_test=d.x_test, y_test=d.y_test)
    with pytest.raises(ValueError, match="one entry per example"):
        jdata.load(str(tmp_path / "short.npz"))
    with pytest.raises(ValueError, match="`data` must be one of"):
        jdata.load("mnist")



def test_a_file_that_is_not_a_dataset_is_named_and_never_unpickled(tmp_path):
    """A text file, a folder, an archive cut short and one holding a pickled object array: one
    error naming the file and what is wrong, never numpy's advice to load pickles."""
    d = jdata.teacher(n_train=50, n_test=20, input_dim=3, output_dim=2)
    (tmp_path / "text.npz").write_text("x_train,y_train\n1,2\n")
    (tmp_path / "folder.npz").mkdir()
    np.savez(tmp_path / "whole.npz", **d._asdict())
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    np.savez(tmp_path / "objects.npz", x_train=np.array([{"a": 1}], dtype=object),
             y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
    for name, error, words in (("text", ValueError, "is not an .npz file"),
                               ("folder", IsADirectoryError, "is a folder"),
                               ("cut", ValueError, "is damaged"),
                               ("objects", ValueError, "never unpickles")):
        path = str(tmp_path / f"{name}.npz")
        with pytest.raises(error) as e:
            jdata.load(path)
        assert words in str(e.value) and path in str(e.value), str(e.value)
        assert "allow_pickle" not in str(e.value) and "\n" not in str(e.value)
    assert isinstance(pytest.raises(ValueError, jdata.load, str(tmp_path / "cut.npz")).value,
                      jwinit.results.DamagedFileError)


@pytest.mark.parametrize("call, match", [
    (lambda: jdata.digits(test_fraction=1.5), "test_fraction"),
    (lambda: jdata.teacher(task="ranking"), "task"),
    (lambda: jdata.teacher(output_dim=1), "output_dim"),
    (lambda: jdata.adding_problem(1, 10), "length"),
    (lambda: jdata.adding_problem(10, 0), "`n`"),
    (lambda: jdata.majority(vocab=1), "`vocab`"),
    (lambda: jdata.majority(length=1), "`length`"),
])
def test_bad_loader_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_public():
    assert jwinit.data.Dataset is jdata.Dataset
    assert set(jdata.DATASETS) == {"digits", "teacher", "adding_problem", "majority"}
