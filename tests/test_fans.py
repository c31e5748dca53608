"""Fans: layouts, groups, batch axes, einsum kernels, and the errors for bad axes."""

import pytest

import jwinit
from jwinit.fans import fan_spec


@pytest.mark.parametrize(
    "shape, kwargs, expected",
    [
        ((784, 256), {}, (784, 256)),
        ((3, 16, 32), {}, (48, 96)),  # conv1d WIO
        ((3, 3, 64, 128), {}, (576, 1152)),  # conv2d HWIO
        ((3, 3, 3, 8, 16), {}, (216, 432)),  # conv3d DHWIO
        ((256, 784), {"layout": "torch"}, (784, 256)),  # nn.Linear.weight (out, in)
        ((128, 64, 3, 3), {"layout": "torch"}, (576, 1152)),  # nn.Conv2d.weight
        ((256, 784), {"layout": "equinox"}, (784, 256)),
        ((4, 64, 32), {"batch_axis": 0}, (64, 32)),  # 4 independent (64, 32) matrices
        ((4, 64, 32), {}, (256, 128)),  # without batch_axis the leading axis is receptive
        ((8, 64, 32), {"in_axis": (0, 1), "out_axis": 2}, (512, 32)),
        ((6, 12), {"in_axis": 1, "out_axis": 0}, (12, 6)),
        ((3, 3, 16, 64), {"groups": 4}, (144, 144)),  # grouped conv: 16 in/group, 64 out
        ((3, 3, 1, 32), {"groups": 32}, (9, 9)),  # depthwise, multiplier 1
        ((3, 3, 1, 64), {"groups": 32}, (9, 18)),  # depthwise, multiplier 2
    ],
)
def test_compute_fans(shape, kwargs, expected):
    assert jwinit.compute_fans(shape, **kwargs) == expected


@pytest.mark.parametrize(
    "spec, kernel, expected",
    [
        ("btd,dnh->btnh", (512, 8, 64), (512, 512)),  # attention q/k/v projection
        ("btnh,nhd->btd", (8, 64, 512), (512, 512)),  # attention output projection
        ("...d,df->...f", (64, 256), (64, 256)),
        ("bd,edf->bef", (4, 64, 256), (64, 1024)),
        ("bed,edf->bef", (4, 64, 256), (64, 256)),  # experts: e is a batch axis
    ],
)
def test_fans_from_einsum(spec, kernel, expected):
    assert jwinit.fans_from_einsum(spec, kernel) == expected


def test_einsum_keyword_of_factories():
    init = jwinit.he_normal(einsum="btd,dnh->btnh")
    d = jwinit.describe(init, (512, 8, 64))
    assert (d.fan_in, d.fan_out) == (512, 512)
    assert d.target_variance == pytest.approx(2 / 512)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        # a value of the wrong type: TypeError, the same everywhere axes are parsed
        ({"in_axis": "a"}, TypeError, "`in_axis` must be an int or a sequence of ints, got str"),
        ({"out_axis": 1.5}, TypeError, "`out_axis` must be an int or a sequence of ints"),
        ({"batch_axis": [0, "x"]}, TypeError, "`batch_axis`"),
        ({"groups": 2.0}, TypeError, "`groups` must be an int >= 1, got 2.0"),
        # a legal type with an illegal value: ValueError
        ({"in_axis": -1, "out_axis": -1}, ValueError, "different axes"),
        ({"layout": "keras"}, ValueError, r"`layout` must be one of \('flax', 'torch'"),
        ({"layout": "torch", "in_axis": 0, "out_axis": 2}, ValueError, "layout"),
        ({"groups": 0}, ValueError, "`groups` must be an int >= 1, got 0"),
        ({"einsum": "bd->b"}, ValueError, "einsum"),
        ({"einsum": "bd,dfx->bf"}, ValueError, "neither"),
    ],
)
def test_bad_fan_arguments_raise_in_factory(kwargs, error, match):
    with pytest.raises(error, match=match):
        fan_spec(**kwargs)
    with pytest.raises(error, match=match):
        jwinit.he_normal(**kwargs)


def test_axes_are_parsed_alike_by_fans_and_structured_schemes():
    # One parser: the same bad input raises the same exception type and message everywhere.
    for bad in ("a", 1.5, [0, "x"], True):
        with pytest.raises(TypeError) as fan_error:
            fan_spec(batch_axis=bad)
        with pytest.raises(TypeError) as orth_error:
            jwinit.orthogonal(batch_axis=bad)
        assert str(fan_error.value) == str(orth_error.value)


@pytest.mark.parametrize(
    "shape, kwargs, match",
    [
        ((7,), {}, r"\(7,\)"),
        ((), {}, r"\(\)"),
        ((4, 5), {"in_axis": 3}, r"out of range.*\(4, 5\)"),
        ((4, 5), {"in_axis": 0, "out_axis": -2}, "overlap"),
        ((3, 3, 8, 10), {"groups": 4}, "does not divide"),
    ],
)
def test_bad_shapes_raise_naming_the_shape(shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        jwinit.compute_fans(shape, **kwargs)


def test_einsum_rank_mismatch():
    with pytest.raises(ValueError, match="rank"):
        jwinit.fans_from_einsum("btd,dnh->btnh", (512, 8))
