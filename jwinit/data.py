"""Data that ships with jwinit, for training experiments: digits, a teacher network, the adding
problem, a token-sequence task (the majority token), and a user's own ``.npz``.

Every loader returns a `Dataset` ``(x_train, y_train, x_test, y_test)`` of numpy arrays (it unpacks
like a 4-tuple): float32 inputs; int32 class labels for classification, float32 targets for
regression. A loader is deterministic: the same arguments give the same arrays on every machine.

Examples:
  >>> x_train, y_train, x_test, y_test = jwinit.data.digits()
  >>> x_train.shape, x_test.shape, y_train.dtype
  ((1438, 64), (359, 64), dtype('int32'))
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import numpy as np

from jwinit._checks import check_choice, check_int, check_real
from jwinit.results import read_npz

__all__ = ["Dataset", "digits", "teacher", "adding_problem", "majority", "load_npz", "load",
           "DATASETS"]

#: Names `load` understands (besides a path to an ``.npz`` file).
DATASETS = ("digits", "teacher", "adding_problem", "majority")


class Dataset(NamedTuple):
    """A train/test split: ``(x_train, y_train, x_test, y_test)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def task(self) -> str:
        """'classification' (integer labels) or 'regression'."""
        return "classification" if np.issubdtype(self.y_train.dtype, np.integer) else "regression"

    @property
    def num_classes(self) -> int | None:
        """1 + the largest label (classification), else None."""
        if self.task != "classification":
            return None
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def output_dim(self) -> int:
        """The width a model's output layer needs: classes, or the regression target's size."""
        if self.task == "classification":
            return int(self.num_classes)
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[-1])

    def summary(self) -> str:
        kind = (f"{self.num_classes} classes" if self.task == "classification"
                else f"regression, {self.output_dim} output(s)")
        return (f"{len(self.x_train)} train / {len(self.x_test)} test examples of shape "
                f"{self.x_train.shape[1:]}, {kind}")


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (x - mean) / std with the training set's statistics; a feature that is constant
    on the training set is only centred (its std is taken as 1)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


#: What `digits` returns as y: the class labels, or the (standardized) images themselves.
DIGITS_TARGETS = ("labels", "inputs")


def digits(*, test_fraction: float = 0.2, standardize: bool = True,
           target: str = "labels") -> Dataset:
    """The 8 x 8 handwritten digits (1797 images, 10 classes), shipped with jwinit
    (``jwinit/datasets/digits.npz``, 45 kB): the UCI "Optical Recognition of Handwritten Digits"
    test set (Alpaydin & Kaynak 1998; CC BY 4.0) as scikit-learn's ``load_digits`` gives it,
    pixel for pixel and in its order. Nothing is downloaded and nothing else is needed.

    The split is fixed: the examples are permuted by ``numpy.random.default_rng(0)`` and the last
    ``round(test_fraction * 1797)`` (359 by default) form the test set. With `standardize`, every
    pixel is centred and scaled by the training set's mean and standard deviation (pixels constant
    on the training set are only centred). With ``target='inputs'`` the targets are the inputs
    themselves, a regression task for an autoencoder (its mean squared error against 0 is the
    mean pixel variance: 1 for a standardized pixel, 0 for a constant one; 0.95 overall).

    Returns:
      A `Dataset`: x (n, 64) float32; y (n,) int32 in 0..9, or with ``target='inputs'`` a float32
      copy of x.

    Examples:
      >>> x, y, _, _ = jwinit.data.digits(target="inputs")
      >>> bool((x == y).all()), y.dtype
      (True, dtype('float32'))
    """
    check_real(test_fraction, "test_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    check_choice(target, "target", DIGITS_TARGETS)
    import importlib.resources

    with importlib.resources.files("jwinit").joinpath("datasets", "digits.npz").open("rb") as f:
        with np.load(f) as arrays:
            x = np.asarray(arrays["images"], np.float64)
            y = np.asarray(arrays["labels"], np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    n_test = round(test_fraction * len(x))
    train, test = order[: len(x) - n_test], order[len(x) - n_test :]
    x_train, x_test = x[train], x[test]
    if standardize:
        x_train, x_test = _standardize(x_train, x_test)
    else:
        x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
    if target == "inputs":
        return Dataset(x_train, x_train.copy(), x_test, x_test.copy())
    return Dataset(x_train, y[train], x_test, y[test])


def teacher(*, n_train: int = 2048, n_test: int = 512, input_dim: int = 32, width: int = 64,
            depth: int = 2, output_dim: int = 10, task: str = "classification",
            activation: str = "tanh", noise: float = 0.0, seed: int = 0) -> Dataset:
    """Data labelled by a random teacher network.

    x ~ N(0, I_input_dim); the teacher is a `depth`-hidden-layer MLP of `width` units with
    Gaussian weights of variance 1 / fan_in, zero biases and `activation`, and a linear readout of
    `output_dim` units divided by its standard deviation over the data. Classification: y = argmax
    of the readout (`output_dim` classes); regression: y = the readout plus N(0, noise^2) noise
    (shape (n,) when output_dim is 1, else (n, output_dim)).

    Everything is drawn from ``numpy.random.default_rng(seed)``.
    """
    for name, value, low in (("n_train", n_train, 1), ("n_test", n_test, 1),
                             ("input_dim", input_dim, 1), ("width", width, 1),
                             ("depth", depth, 0), ("output_dim", output_dim, 1),
                             ("seed", seed, 0)):
        check_int(value, name, minimum=low)
    check_choice(task, "task", ("classification", "regression"))
    check_real(noise, "noise", low=0.0)
    if task == "classification" and output_dim < 2:
        raise ValueError(f"`output_dim` must be >= 2 for classification, got {output_dim}.")
    from jwinit.activations import get_activation

    phi = get_activation(activation)
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    x = rng.standard_normal((n, input_dim))
    h, fan_in = x, input_dim
    for _ in range(depth):
        w = rng.standard_normal((fan_in, width)) / math.sqrt(fan_in)
        h = np.asarray(phi(np.asarray(h @ w, np.float32)), np.float64)
        fan_in = width
    readout = rng.standard_normal((fan_in, output_dim)) / math.sqrt(fan_in)
    out = h @ readout
    out = out / max(float(out.std()), 1e-12)
    if task == "classification":
        y = np.argmax(out, axis=1).astype(np.int32)
    else:
        y = out + noise * rng.standard_normal(out.shape)
        y = (y[:, 0] if output_dim == 1 else y).astype(np.float32)
    x = x.astype(np.float32)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def adding_problem(length: int, n: int, *, n_test: int | None = None, seed: int = 0) -> Dataset:
    """The adding problem of Hochreiter & Schmidhuber 1997, as used by Le, Jaitly & Hinton 2015
    (IRNN, Sec. 4.1).

    Each example is a sequence of `length` steps with two channels: a value drawn from U[0, 1] and
    a marker that is 1 at exactly two steps (one in the first half, one in the second) and 0
    elsewhere; the target is the sum of the two marked values. Predicting 1 (the mean) gives a
    mean squared error of 1/6 ~ 0.167, the baseline a model must beat.

    Args:
      length: steps per sequence (>= 2).
      n: training examples; `n_test` test examples (default n // 4, at least 1).
      seed: for ``numpy.random.default_rng``.

    Returns:
      A `Dataset`: x (n, length, 2) float32, y (n,) float32.
    """
    check_int(length, "length", minimum=2)
    check_int(n, "n", minimum=1)
    n_test = max(1, n // 4) if n_test is None else check_int(n_test, "n_test", minimum=1)
    check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    total = n + n_test
    values = rng.uniform(0.0, 1.0, (total, length))
    half = length // 2
    first = rng.integers(0, half, total)
    second = rng.integers(half, length, total)
    markers = np.zeros((total, length))
    rows = np.arange(total)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)
    return Dataset(x[:n], y[:n], x[n:], y[n:])


def majority(vocab: int = 8, length: int = 12, n: int = 4096, *, n_test: int | None = None,
             seed: int = 0) -> Dataset:
    """A sequence classification task for Transformers: which token occurs most often?

    Each example is `length` tokens drawn uniformly from ``range(vocab)``; its label is the token
    with the strictly largest count (sequences with a tie are redrawn). Solving it needs
    attention across the whole sequence (a count per token), not any single position: chance
    accuracy is 1 / vocab, the best constant prediction has cross-entropy ln(vocab).

    Args:
      vocab: token values (>= 2); the classes are the same values.
      length: tokens per sequence (>= 2).
      n: training examples; `n_test` test examples (default n // 4, at least 1).
      seed: for ``numpy.random.default_rng``.

    Returns:
      A `Dataset`: x (n, length) float32 token ids (a model casts them to int), y (n,) int32.

    Examples:
      >>> d = jwinit.data.majority(vocab=4, length=6, n=8)
      >>> x = d.x_train.astype(int)
      >>> bool(all((x[i] == d.y_train[i]).sum() > (x[i] == t).sum()
      ...          for i in range(8) for t in range(4) if t != d.y_train[i]))
      True
    """
    check_int(vocab, "vocab", minimum=2)
    check_int(length, "length", minimum=2)
    check_int(n, "n", minimum=1)
    n_test = max(1, n // 4) if n_test is None else check_int(n_test, "n_test", minimum=1)
    check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    total = n + n_test
    x = np.empty((0, length), np.int64)
    while len(x) < total:
        draw = rng.integers(0, vocab, (2 * (total - len(x)) + 16, length))
        counts = (draw[:, :, None] == np.arange(vocab)).sum(axis=1)
        top = np.sort(counts, axis=1)
        x = np.concatenate([x, draw[top[:, -1] > top[:, -2]]])
    x = x[:total]
    y = (x[:, :, None] == np.arange(vocab)).sum(axis=1).argmax(axis=1).astype(np.int32)
    x = x.astype(np.float32)
    return Dataset(x[:n], y[:n], x[n:], y[n:])


_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: str | os.PathLike[str]) -> Dataset:
    """A user's dataset from an ``.npz`` file with arrays `x_train`, `y_train`, `x_test`, `y_test`
    (integer labels make a classification task, float targets a regression).

    Raises:
      FileNotFoundError: no such file. IsADirectoryError: a folder. ValueError: not an ``.npz``
      file, a damaged one or one holding pickled objects (`jwinit.results.DamagedFileError`; it
      is never unpickled), a missing array, mismatched lengths or shapes, or non-finite values.
    """
    path = os.fspath(path)
    arrays = read_npz(path, what="dataset file")
    missing = [k for k in _NPZ_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path!r} lacks the array(s) {missing}; a dataset file holds "
                         f"{list(_NPZ_KEYS)}.")
    return as_dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                      source=repr(path))


def as_dataset(x_train: Any, y_train: Any, x_test: Any, y_test: Any, *,
               source: str = "the data") -> Dataset:
    """Check and convert four arrays into a `Dataset` (float32 inputs; int32 labels or float32
    targets), with errors naming what is wrong."""
    xs = [np.asarray(x_train), np.asarray(x_test)]
    ys = [np.asarray(y_train), np.asarray(y_test)]
    for name, x in zip(("x_train", "x_test"), xs, strict=True):
        if x.ndim < 2 or x.shape[0] == 0 or x.dtype.kind not in "fiu":
            raise ValueError(f"{source}: `{name}` must be a real array of shape (examples, ...) "
                             f"with at least one example, got dtype {x.dtype} shape {x.shape}.")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{source}: `{name}` has NaN or inf values.")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise ValueError(f"{source}: `x_train` and `x_test` must have the same example shape, got "
                         f"{xs[0].shape[1:]} and {xs[1].shape[1:]}.")
    for name, x, y in (("train", xs[0], ys[0]), ("test", xs[1], ys[1])):
        if y.shape[:1] != x.shape[:1]:
            raise ValueError(f"{source}: `y_{name}` must have one entry per example of "
                             f"`x_{name}` ({x.shape[0]}), got shape {y.shape}.")
    kinds = {y.dtype.kind for y in ys}
    if kinds <= {"i", "u"}:
        if any(y.ndim != 1 for y in ys) or min(int(y.min()) for y in ys) < 0:
            raise ValueError(f"{source}: integer labels must be a vector of class indices >= 0.")
        ys = [y.astype(np.int32) for y in ys]
    elif kinds <= {"f"}:
        if not all(np.all(np.isfinite(y)) for y in ys):
            raise ValueError(f"{source}: the regression targets have NaN or inf values.")
        if ys[0].shape[1:] != ys[1].shape[1:]:
            raise ValueError(f"{source}: `y_train` and `y_test` must have the same target shape.")
        ys = [y.astype(np.float32) for y in ys]
    else:
        raise ValueError(f"{source}: `y_train`/`y_test` must both be integer class labels or both "
                         f"real targets, got dtypes {ys[0].dtype} and {ys[1].dtype}.")
    return Dataset(xs[0].astype(np.float32), ys[0], xs[1].astype(np.float32), ys[1])


def load(spec: str, **kwargs: Any) -> Dataset:
    """A dataset by name ('digits', 'teacher', 'adding_problem', 'majority', with `kwargs` for its
    loader) or from a path to an ``.npz`` file (see `load_npz`)."""
    if not isinstance(spec, str | os.PathLike):
        raise TypeError(f"`data` must be one of {DATASETS} or a path to an .npz file, got "
                        f"{spec!r}.")
    spec = os.fspath(spec)
    if spec.endswith(".npz"):
        if kwargs:
            raise ValueError(f"an .npz dataset takes no options, got {sorted(kwargs)}.")
        return load_npz(spec)
    loaders = {"digits": digits, "teacher": teacher, "adding_problem": adding_problem,
               "majority": majority}
    if spec not in loaders:
        raise ValueError(f"`data` must be one of {DATASETS} or a path to an .npz file, got "
                         f"{spec!r}.")
    return loaders[spec](**kwargs)
