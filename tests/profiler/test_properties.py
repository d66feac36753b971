"""Property tests: for random convolution, depthwise, pointwise and dense configurations, the profiler's
count equals the paper's closed form and an independent count summing the work of every output position.

The closed form takes Dp from the output-size formulas (valid: floor((D - span) / s) + 1, same:
ceil(D / s)); the independent count finds the output positions by sliding the window over the input
one stride at a time and adds up, position by position, the multiply-adds done there. The profiler
itself reads the output size from the built Keras graph.
"""

import itertools
import math

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilenet_sep.layers import DepthwiseConv, PointwiseConv
from mobilenet_sep.profiler import profile

SETTINGS = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
"""100 random configurations per kind of layer; nothing written to disk (no example database)."""


def _count(input_shape, layer):
    """The profiler's headline count of a one-layer model."""
    inputs = keras.Input(input_shape)
    return profile(keras.Model(inputs, layer(inputs))).mult_adds


def _closed_form_size(size, kernel, stride, dilation, padding):
    span = dilation * (kernel - 1) + 1
    return (size - span) // stride + 1 if padding == "valid" else math.ceil(size / stride)


def _slid_positions(size, kernel, stride, dilation, padding):
    """Output positions along one axis, found by sliding: a valid window starts at 0, s, 2s, ... while it
    fits; a same window is anchored at each input index 0, s, 2s, ... (padding fills the rest)."""
    span = dilation * (kernel - 1) + 1
    last_start = size - span if padding == "valid" else size - 1
    positions, start = [], 0
    while start <= last_start:
        positions.append(start)
        start += stride
    return positions


def _work_per_position_sum(grid, work):
    """Add the multiply-adds of every output position of a 2-D grid (rows x columns) one by one."""
    return sum(work for _ in itertools.product(*grid))


@st.composite
def windows(draw):
    """A 2-D window configuration: (height, width), kernel, strides, dilations, padding, all valid for Keras."""
    padding = draw(st.sampled_from(["valid", "same"]))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilated = draw(st.booleans()) and strides == (1, 1)  # Keras takes dilation only with stride 1
    dilations = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilated else (1, 1)
    spans = [dilation * (size - 1) + 1 for size, dilation in zip(kernel, dilations, strict=True)]
    low = max(spans) if padding == "valid" else 1
    size = (draw(st.integers(low, 12)), draw(st.integers(low, 12)))
    return size, kernel, strides, dilations, padding


def _sizes(window):
    size, kernel, strides, dilations, padding = window
    closed = [_closed_form_size(*axis, padding) for axis in zip(size, kernel, strides, dilations, strict=True)]
    slid = [_slid_positions(*axis, padding) for axis in zip(size, kernel, strides, dilations, strict=True)]
    return math.prod(closed), slid


@SETTINGS
@given(window=windows(), channels=st.integers(1, 6), filters_per_group=st.integers(1, 3), groups=st.integers(1, 3))
def test_standard_convolution(window, channels, filters_per_group, groups):
    size, kernel, strides, dilations, padding = window
    channels, filters = channels * groups, filters_per_group * groups
    layer = keras.layers.Conv2D(filters, kernel, strides, padding, dilation_rate=dilations, groups=groups)
    positions, slid = _sizes(window)
    work = math.prod(kernel) * (channels // groups) * filters  # Dk^2 * (M / groups) * N at each position
    counted = _count((*size, channels), layer)
    assert counted == positions * work == _work_per_position_sum(slid, work)


@SETTINGS
@given(window=windows(), channels=st.integers(1, 6), multiplier=st.integers(1, 3), ours=st.booleans())
def test_depthwise_convolution(window, channels, multiplier, ours):
    size, kernel, strides, dilations, padding = window
    kind = DepthwiseConv if ours else keras.layers.DepthwiseConv2D
    layer = kind(kernel, strides, padding, depth_multiplier=multiplier, dilation_rate=dilations)
    positions, slid = _sizes(window)
    work = math.prod(kernel) * channels * multiplier  # Dk^2 * M (times the multiplier) at each position
    assert _count((*size, channels), layer) == positions * work == _work_per_position_sum(slid, work)


@SETTINGS
@given(height=st.integers(1, 12), width=st.integers(1, 12), channels=st.integers(1, 8), filters=st.integers(1, 8))
def test_pointwise_convolution(height, width, channels, filters):
    slid = [list(range(height)), list(range(width))]  # a 1x1 window, stride 1: every input position
    work = channels * filters
    counted = _count((height, width, channels), PointwiseConv(filters))
    assert counted == height * width * channels * filters == _work_per_position_sum(slid, work)


@SETTINGS
@given(leading=st.lists(st.integers(1, 5), max_size=2), channels=st.integers(1, 16), units=st.integers(1, 16))
def test_dense(leading, channels, units):
    positions = [list(range(size)) for size in leading] or [[0]]  # a rank > 2 input: every leading position
    counted = _count((*leading, channels), keras.layers.Dense(units))
    assert counted == math.prod(leading) * channels * units == _work_per_position_sum(positions, channels * units)


@pytest.mark.parametrize("size,kernel,stride,padding,expected", [(7, 3, 2, "valid", 3), (7, 3, 2, "same", 4)])
def test_the_two_sizes_agree_on_worked_cases(size, kernel, stride, padding, expected):
    assert _closed_form_size(size, kernel, stride, 1, padding) == len(_slid_positions(size, kernel, stride, 1, padding))
    assert len(_slid_positions(size, kernel, stride, 1, padding)) == expected
