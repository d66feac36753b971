"""The point-cloud pointwise convolution against a brute-force NumPy reference, its gradients, the
neighbour query, the network, serialization, bad inputs and the profiler's counts."""

import itertools
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import mobilenet_sep
from helpers import numeric_gradient, relative_error
from mobilenet_sep import pointcloud_grid
from mobilenet_sep.pointcloud import PointwiseCNN, PointwiseConv3D, SortPoints
from mobilenet_sep.profiler import profile

TOLERANCE = 1e-5


def reference_cells(points, voxel_size, stride):
    """{(cloud, i, cell): [j, ...]} by explicit loops over points and cells, the cell formula written
    out in float32 arithmetic on float32 coordinates, as the layer defines it."""
    half = np.float32((2 * stride + 1) * voxel_size / 2)
    voxel = np.float32(voxel_size)
    members = {}
    for cloud, i, j in itertools.product(range(points.shape[0]), range(points.shape[1]), range(points.shape[1])):
        index = [int(np.floor((points[cloud, j, a] - points[cloud, i, a] + half) / voxel)) for a in range(3)]
        for a, b, c in itertools.product(range(3), repeat=3):
            if index == [a * stride, b * stride, c * stride]:
                members.setdefault((cloud, i, 9 * a + 3 * b + c), []).append(j)
    return members


def reference_convolution(points, features, kernel, bias, voxel_size, stride):
    """Eq. (1) of Hua et al.: sum over the 27 cells of kernel^T * mean of the features in the cell."""
    batch, count = points.shape[:2]
    outputs = np.zeros((batch, count, kernel.shape[-1])) + bias
    for (cloud, i, cell), members in reference_cells(points, voxel_size, stride).items():
        outputs[cloud, i] += np.mean(features[cloud, members].astype(np.float64), axis=0) @ kernel[cell]
    return outputs


def random_layer(channels, filters, voxel_size, stride, rng, dtype="float32"):
    layer = PointwiseConv3D(filters, voxel_size=voxel_size, stride=stride, dtype=dtype)
    layer.build([(None, None, 3), (None, None, channels)])
    layer.set_weights([rng.normal(size=(27, channels, filters)), rng.normal(size=filters)])
    return layer


def check_against_reference(points, rng, voxel_size, stride, channels=3, filters=4):
    features = rng.normal(size=points.shape[:2] + (channels,)).astype("float32")
    layer = random_layer(channels, filters, voxel_size, stride, rng)
    kernel, bias = layer.get_weights()
    actual = keras.ops.convert_to_numpy(layer([points, features]))
    expected = reference_convolution(points, features, kernel, bias, voxel_size, stride)
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) <= TOLERANCE


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
def test_random_clouds_with_duplicates_match_the_reference(stride, rng):
    points = rng.uniform(-1, 1, size=(2, 40, 3)).astype("float32")
    points[:, 30:] = points[:, :10]  # duplicated points share every cell
    check_against_reference(points, rng, voxel_size=0.3, stride=stride)


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_points_exactly_on_cell_boundaries_match_the_reference(stride, offset, rng):
    # Coordinates on a lattice of voxel_size / 2 (exact in binary): p_j - p_i + half_side lands
    # exactly on cell faces, which belong to the cell above; far from the origin as well.
    lattice = rng.integers(-6, 7, size=(2, 36, 3)).astype("float32") * 0.125 + np.float32(offset)
    half = pointcloud_grid.half_side(0.25, stride)
    scaled = (lattice[0, :, None, :] - lattice[0, None, :, :] + half) / np.float32(0.25)
    assert np.sum(scaled == np.floor(scaled)) > 1000  # many differences sit exactly on a face
    check_against_reference(lattice, rng, voxel_size=0.25, stride=stride)


def test_sparse_cloud_has_empty_cells_and_isolated_points(rng):
    points = rng.uniform(-5, 5, size=(1, 30, 3)).astype("float32")
    members = reference_cells(points, 0.2, 1)
    assert len(members) < 30 * 27 / 2  # most cells are empty
    check_against_reference(points, rng, voxel_size=0.2, stride=1)
    # An isolated point sees only itself, in the centre cell (13): W_13^T x + b.
    layer = random_layer(2, 3, 0.2, 1, rng)
    lonely = np.array([[[0, 0, 0], [9, 9, 9]]], "float32")
    features = rng.normal(size=(1, 2, 2)).astype("float32")
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(layer([lonely, features])[0, 1], features[0, 1] @ kernel[13] + bias, rtol=1e-5)


def test_float64_layer_matches_the_reference_to_double_precision(rng):
    points = rng.uniform(-1, 1, size=(1, 30, 3)).astype("float32")
    features = rng.normal(size=(1, 30, 3))
    layer = random_layer(3, 2, 0.4, 2, rng, dtype="float64")
    actual = keras.ops.convert_to_numpy(layer([points, features]))
    assert actual.dtype == np.float64
    expected = reference_convolution(points, features, *layer.get_weights(), 0.4, 2)
    assert relative_error(actual, expected) <= 1e-12


@pytest.mark.parametrize("stride", [1, 3])
def test_grid_query_finds_exactly_the_brute_force_cells(stride, rng):
    points = rng.uniform(-1, 1, size=(2, 60, 3)).astype("float32")
    points[1, 0] = [1e4, -1e4, 3e3]  # a far outlier: the grid hashes occupied cells only
    points[0, 5:9] = points[0, 9]
    indices, values = pointcloud_grid.cell_means_matrix(points, 0.25, stride)
    expected = {
        ((cloud * 60 + i) * 27 + cell, cloud * 60 + j)
        for (cloud, i, cell), members in reference_cells(points, 0.25, stride).items()
        for j in members
    }
    assert set(map(tuple, indices.tolist())) == expected and len(indices) == len(expected)
    sizes = np.bincount(indices[:, 0])
    np.testing.assert_array_equal(values, 1.0 / sizes[indices[:, 0]].astype("float32"))


def test_cell_thresholds_reproduce_the_float32_cell_formula():
    for voxel_size, stride in ((0.1, 1), (0.1, 4), (0.3, 2), (1.0, 3)):
        thresholds = pointcloud_grid.cell_thresholds(voxel_size, stride)
        half, voxel = pointcloud_grid.half_side(voxel_size, stride), np.float32(voxel_size)
        for threshold, boundary in zip(thresholds, (0, 1, stride, stride + 1, 2 * stride, 2 * stride + 1), strict=True):
            below = np.nextafter(threshold, np.float32(-np.inf))
            assert np.floor((threshold + half) / voxel) >= boundary > np.floor((below + half) / voxel)


def test_gradients_match_finite_differences(rng):
    points = rng.uniform(-1, 1, size=(1, 12, 3)).astype("float32")
    points[0, 11] = points[0, 10]
    features = rng.normal(size=(1, 12, 2))
    layer = random_layer(2, 3, 0.5, 2, rng, dtype="float64")
    kernel, bias = layer.get_weights()
    weights = rng.normal(size=(1, 12, 3))

    def loss():
        layer.set_weights([kernel, bias])
        return float(np.sum(keras.ops.convert_to_numpy(layer([points, features])) * weights))

    numeric_features, numeric_kernel = numeric_gradient(loss, features), numeric_gradient(loss, kernel)
    layer.set_weights([kernel, bias])
    points_tensor, features_tensor = tf.constant(points), tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch([points_tensor, features_tensor])
        total = tf.reduce_sum(layer([points_tensor, features_tensor]) * weights)
    by_points, by_features, by_kernel = tape.gradient(total, [points_tensor, features_tensor, layer.kernel])
    assert by_points is None  # coordinates get no gradient, as in the paper
    assert relative_error(by_features, numeric_features) <= 1e-8
    assert relative_error(by_kernel, numeric_kernel) <= 1e-8


def test_layer_config_round_trip_and_output_shape():
    layer = PointwiseConv3D(5, voxel_size=0.2, stride=3, use_bias=False, kernel_initializer="lecun_normal")
    clone = PointwiseConv3D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert layer.compute_output_shape([(None, 64, 3), (None, 64, 7)]) == (None, 64, 5)


def test_network_round_trips_through_a_keras_file_in_safe_mode(tmp_path, rng):
    model = PointwiseCNN(num_points=32, classes=3, classifier_activation=None)
    path = tmp_path / "pointwise.keras"
    model.save(path)
    loaded = mobilenet_sep.load_model(str(path))
    clouds = rng.uniform(-1, 1, size=(2, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(clouds, verbose=0), model.predict(clouds, verbose=0))


def test_network_sorts_points_so_their_order_does_not_matter(rng):
    model = mobilenet_sep.create_model("pointwise_cnn", num_points=48, classes=5)
    clouds = rng.uniform(-1, 1, size=(3, 48, 3)).astype("float32")
    outputs = model.predict(clouds, verbose=0)
    assert outputs.shape == (3, 5)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)
    shuffled = clouds[:, rng.permutation(48)]
    np.testing.assert_allclose(model.predict(shuffled, verbose=0), outputs, rtol=1e-6)
    assert [layer.stride for layer in model.layers if isinstance(layer, PointwiseConv3D)] == [1, 2, 3, 4]


def test_sort_points_is_lexicographic_by_x_then_y_then_z(rng):
    points = rng.integers(0, 3, size=(2, 20, 3)).astype("float32")  # many ties on x and y
    actual = keras.ops.convert_to_numpy(SortPoints()(points))
    for cloud in range(2):
        order = np.lexsort((points[cloud, :, 2], points[cloud, :, 1], points[cloud, :, 0]))
        np.testing.assert_array_equal(actual[cloud], points[cloud, order])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"voxel_size": 0}, "Received: voxel_size=0"),
        ({"voxel_size": -0.1}, "Received: voxel_size=-0.1"),
        ({"voxel_size": float("nan")}, "Received: voxel_size=nan"),
        ({"stride": 0}, "Received: stride=0"),
        ({"stride": 1.5}, "Received: stride=1.5"),
        ({"stride": True}, "Received: stride=True"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        PointwiseConv3D(4, **arguments)


def test_bad_inputs_raise(rng):
    layer = PointwiseConv3D(2)
    points = rng.uniform(size=(1, 10, 3)).astype("float32")
    with pytest.raises(
        ValueError, match=r"same point counts.*Received: points.shape=\(1, 10, 3\), features.shape=\(1, 9, 4\)"
    ):
        layer([points, np.zeros((1, 9, 4), "float32")])
    with pytest.raises(ValueError, match=r"Received: points.shape=\(1, 10, 2\)"):
        layer([points[..., :2], np.zeros((1, 10, 4), "float32")])
    points[0, 4, 1] = np.nan
    with pytest.raises(ValueError, match=r"finite. Received: points\[0, 4\]="):
        layer([points, np.zeros((1, 10, 4), "float32")])
    with pytest.raises(ValueError, match=r"Received: num_points=0"):
        PointwiseCNN(num_points=0)
    with pytest.raises(ValueError, match=r"too many cells .* Received: largest extent=2.0"):
        pointcloud_grid.cell_means_matrix(np.array([[[0, 0, 0], [2, 0, 0]]], "float32"), 1e-6, 1)
    with pytest.raises(ValueError, match=r"too large .* Received: max \|coordinate\|=2000.0"):
        pointcloud_grid.cell_means_matrix(np.full((1, 2, 3), 2000, "float32"), 1e-9, 1)


def test_profiler_counts_kernel_and_cell_means():
    model = PointwiseCNN(num_points=64, classes=4)
    rows = {row.name: row for row in profile(model).rows}
    for index, channels in ((1, 3), (2, 9), (3, 9), (4, 9)):
        kernel, means = rows[f"conv{index}"], rows[f"conv{index}/cell_means"]
        assert kernel.kind == "standard" and kernel.mult_adds == 64 * 27 * channels * 9
        assert kernel.params == 27 * channels * 9 + 9 == model.get_layer(f"conv{index}").count_params()
        assert means.kind == "pooling" and means.mult_adds == 64 * 27 * channels
    assert profile(model).params == model.count_params()


def test_other_backends_are_refused_with_a_clear_error():
    script = "from mobilenet_sep.pointcloud import PointwiseConv3D\nPointwiseConv3D(4)"
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "need Keras' TensorFlow backend. Received: KERAS_BACKEND='jax'" in result.stderr
