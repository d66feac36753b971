"""The point-cloud pointwise convolution against a brute-force NumPy reference, its gradients, the
neighbour queries, the network, serialization, bad inputs and the profiler's counts.

The reference and gradient tests run each layer as RUNS says: on TensorFlow the grid query eagerly
and inside tf.function(jit_compile=True), and the numba query; `test_layer_checks_pass_on_jax` runs
the same tests again on Keras' JAX backend, under jax.jit."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import mobilenet_sep
from helpers import numeric_gradient, relative_error, run_layer_test
from mobilenet_sep.layers import PointwiseConv3D, SortPoints
from mobilenet_sep.layers import neighbour_grid as pointcloud_grid
from mobilenet_sep.profiler import profile
from mobilenet_sep.zoo import PointwiseCNN

TOLERANCE = 1e-5
ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
RUNS = (
    [
        pytest.param(("grid", "eager"), id="grid"),
        pytest.param(("grid", "xla"), id="grid-xla", marks=pytest.mark.slow),
        pytest.param(("numba", "eager"), id="numba"),
    ]
    if ON_TENSORFLOW
    else [pytest.param(("grid", "jit"), id="grid-jit")]
)
"""(query, how the layer is called): "eager" (TensorFlow), "xla" (tf.function(jit_compile=True)), "jit" (jax.jit)."""
JAX_CHECKS = "match_the_reference or empty_cells or double_precision or grid_means_hold or finite_differences"
"""The tests `test_layer_checks_pass_on_jax` runs again on the JAX backend."""


def compiled(function, mode):
    """`function` compiled: jax.jit on JAX; on TensorFlow a tf.function, with XLA for mode "xla"."""
    if ON_TENSORFLOW:
        import tensorflow as tf

        return tf.function(function, jit_compile=mode == "xla")
    import jax

    return jax.jit(function)


def run(layer, points, features, mode):
    """The layer's outputs on [points, features] (NumPy), called eagerly or compiled as `mode` says."""
    if mode == "eager":
        return keras.ops.convert_to_numpy(layer([points, features]))
    return np.asarray(compiled(lambda points, features: layer([points, features]), mode)(points, features))


def gradients(layer, points, features, weights, mode):
    """d sum(layer([points, features]) * weights) / d (points, features, kernel, bias), run as `mode` says."""
    if ON_TENSORFLOW:
        import tensorflow as tf

        def taped(points, features):
            with tf.GradientTape() as tape:
                tape.watch([points, features])
                total = tf.reduce_sum(layer([points, features]) * weights)
            return tape.gradient(total, [points, features, layer.kernel, layer.bias])

        taped = taped if mode == "eager" else tf.function(taped, jit_compile=mode == "xla")
        return taped(tf.constant(points), tf.constant(features))
    import jax

    def total(points, features, kernel, bias):
        return keras.ops.sum(layer.stateless_call([kernel, bias], [], [points, features])[0] * weights)

    return jax.jit(jax.grad(total, argnums=(0, 1, 2, 3)))(points, features, *layer.get_weights())


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


def random_layer(channels, filters, voxel_size, stride, rng, dtype="float32", query="grid"):
    layer = PointwiseConv3D(filters, voxel_size=voxel_size, stride=stride, query=query, dtype=dtype)
    layer.build([(None, None, 3), (None, None, channels)])
    layer.set_weights([rng.normal(size=(27, channels, filters)), rng.normal(size=filters)])
    return layer


def check_against_reference(points, rng, voxel_size, stride, run_as, channels=3, filters=4):
    query, mode = run_as
    features = rng.normal(size=points.shape[:2] + (channels,)).astype("float32")
    layer = random_layer(channels, filters, voxel_size, stride, rng, query=query)
    kernel, bias = layer.get_weights()
    actual = run(layer, points, features, mode)
    expected = reference_convolution(points, features, kernel, bias, voxel_size, stride)
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) <= TOLERANCE


@pytest.mark.parametrize("run_as", RUNS)
@pytest.mark.parametrize("stride", [1, 2, 3, 4])
def test_random_clouds_with_duplicates_match_the_reference(stride, run_as, rng):
    points = rng.uniform(-1, 1, size=(3, 40, 3)).astype("float32")
    points[:, 30:] = points[:, :10]  # duplicated points share every cell
    check_against_reference(points, rng, voxel_size=0.3, stride=stride, run_as=run_as)


@pytest.mark.parametrize("run_as", RUNS)
@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_points_exactly_on_cell_boundaries_match_the_reference(stride, offset, run_as, rng):
    # Coordinates on a lattice of voxel_size / 2 (exact in binary): p_j - p_i + half_side lands
    # exactly on cell faces, which belong to the cell above; far from the origin as well.
    lattice = rng.integers(-6, 7, size=(2, 36, 3)).astype("float32") * 0.125 + np.float32(offset)
    half = pointcloud_grid.half_side(0.25, stride)
    scaled = (lattice[0, :, None, :] - lattice[0, None, :, :] + half) / np.float32(0.25)
    assert np.sum(scaled == np.floor(scaled)) > 1000  # many differences sit exactly on a face
    check_against_reference(lattice, rng, voxel_size=0.25, stride=stride, run_as=run_as)


@pytest.mark.parametrize("run_as", RUNS)
def test_sparse_cloud_has_empty_cells_and_isolated_points(run_as, rng):
    points = rng.uniform(-5, 5, size=(1, 30, 3)).astype("float32")
    members = reference_cells(points, 0.2, 1)
    assert len(members) < 30 * 27 / 2  # most cells are empty
    check_against_reference(points, rng, voxel_size=0.2, stride=1, run_as=run_as)
    # An isolated point sees only itself, in the centre cell (13): W_13^T x + b.
    query, mode = run_as
    layer = random_layer(2, 3, 0.2, 1, rng, query=query)
    lonely = np.array([[[0, 0, 0], [9, 9, 9]]], "float32")
    features = rng.normal(size=(1, 2, 2)).astype("float32")
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(run(layer, lonely, features, mode)[0, 1], features[0, 1] @ kernel[13] + bias, rtol=1e-5)


def clustered_cloud(rng):
    """Four clusters of 12 points 0.5 apart along some axes, jittered by at most 0.01: with voxel_size
    0.4 and stride 1 every cluster lies inside one kernel cell of every point, far from its faces."""
    sites = np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0.5], [0.5, 0.5, 0]])
    return (np.repeat(sites, 12, axis=0) + rng.uniform(-0.01, 0.01, size=(48, 3)))[None].astype("float32")


@pytest.mark.parametrize("run_as", RUNS)
def test_float64_layer_matches_the_reference_to_double_precision(run_as, rng):
    points = clustered_cloud(rng)
    assert min(len(members) for members in reference_cells(points, 0.4, 1).values()) >= 10
    features = rng.normal(size=(1, 48, 3))
    query, mode = run_as
    layer = random_layer(3, 2, 0.4, 1, rng, dtype="float64", query=query)
    actual = run(layer, points, features, mode)
    assert actual.dtype == np.float64
    expected = reference_convolution(points, features, *layer.get_weights(), 0.4, 1)
    # Cell means in float32 (1 / 12 as a float32 weight) would be off by about 1e-8 here.
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


@pytest.mark.parametrize("run_as", [run_as for run_as in RUNS if run_as.values[0][0] == "grid"])
@pytest.mark.parametrize("stride", [1, 3])
def test_grid_means_hold_exactly_the_brute_force_cells(stride, run_as, rng):
    from mobilenet_sep.layers import grid_means

    points = rng.uniform(-1, 1, size=(2, 60, 3)).astype("float32")
    points[1, 0] = [1e4, -1e4, 3e3]  # a far outlier: that cloud's grid cells get coarse, the cells stay exact
    points[0, 5:9] = points[0, 9]
    # Each point's own one-hot feature: the mean of cell k of i over feature j is 1 / |cell| if j is in it.
    identity = np.broadcast_to(np.eye(60, dtype="float32"), (2, 60, 60))
    query = lambda inputs: grid_means.cell_means(*inputs, voxel_size=0.25, stride=stride)  # noqa: E731
    means = run(query, points, identity, run_as[1])
    expected = np.zeros((2, 60, 27, 60))
    for (cloud, i, cell), members in reference_cells(points, 0.25, stride).items():
        expected[cloud, i, cell, members] = 1 / np.float32(len(members))
    np.testing.assert_array_equal(means.reshape(2, 60, 27, 60), expected.astype("float32"))


def test_cell_thresholds_reproduce_the_float32_cell_formula():
    for voxel_size, stride in ((0.1, 1), (0.1, 4), (0.3, 2), (1.0, 3)):
        thresholds = pointcloud_grid.cell_thresholds(voxel_size, stride)
        half, voxel = pointcloud_grid.half_side(voxel_size, stride), np.float32(voxel_size)
        for threshold, boundary in zip(thresholds, (0, 1, stride, stride + 1, 2 * stride, 2 * stride + 1), strict=True):
            below = np.nextafter(threshold, np.float32(-np.inf))
            assert np.floor((threshold + half) / voxel) >= boundary > np.floor((below + half) / voxel)


@pytest.mark.parametrize("run_as", RUNS)
def test_gradients_match_finite_differences(run_as, rng):
    query, mode = run_as
    points = rng.uniform(-1, 1, size=(1, 12, 3)).astype("float32")
    points[0, 11] = points[0, 10]
    features = rng.normal(size=(1, 12, 2))
    layer = random_layer(2, 3, 0.5, 2, rng, dtype="float64", query=query)
    kernel, bias = layer.get_weights()
    weights = rng.normal(size=(1, 12, 3))
    # The weights are arguments, so the differences can perturb them in place; compiled, it is called ~400 times.
    outputs = compiled(lambda *arrays: layer.stateless_call(list(arrays[:2]), [], list(arrays[2:]))[0], "graph")

    def loss():
        return float(np.sum(np.asarray(outputs(kernel, bias, points, features)) * weights))

    numeric = [numeric_gradient(loss, array) for array in (features, kernel, bias)]
    by_points, *analytic = gradients(layer, points, features, weights, mode)
    if ON_TENSORFLOW:
        assert by_points is None  # coordinates get no gradient, as in the paper
    else:
        assert not np.any(np.asarray(by_points))
    for actual, expected in zip(analytic, numeric, strict=True):  # features, kernel, bias
        assert relative_error(actual, expected) <= 1e-8


@pytest.mark.slow
@pytest.mark.skipif(not ON_TENSORFLOW, reason="this test starts the JAX run")
def test_layer_checks_pass_on_jax():
    """The reference, exact-cells, float64 and finite-difference tests again on Keras' JAX backend,
    under jax.jit (float64 enabled), in a fresh process."""
    pytest.importorskip("jax")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", JAX_CHECKS]
    result = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "17 passed" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("query", ["grid", "numba"])
def test_layer_round_trips_through_config_and_keras_files(query, tmp_path, rng):
    layer = PointwiseConv3D(5, voxel_size=0.2, stride=3, query=query, use_bias=False, kernel_initializer="lecun_normal")
    points = rng.uniform(-1, 1, size=(2, 64, 3)).astype("float32")
    features = rng.normal(size=(2, 64, 7)).astype("float32")
    outputs = run_layer_test(layer, [points, features], tmp_path)
    assert outputs.shape == (2, 64, 5) and np.std(outputs) > 0
    assert layer.get_config()["query"] == query and layer.supports_jit == (query == "grid")


def test_network_round_trips_through_a_keras_file_in_safe_mode(tmp_path, rng):
    model = PointwiseCNN(input_shape=(32, 3), classes=3, classifier_activation=None)
    path = tmp_path / "pointwise.keras"
    model.save(path)
    loaded = mobilenet_sep.load_model(str(path))
    clouds = rng.uniform(-1, 1, size=(2, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(clouds, verbose=0), model.predict(clouds, verbose=0))


def test_network_sorts_points_so_their_order_does_not_matter(rng):
    model = mobilenet_sep.create_model("pointwise_cnn", input_shape=(48, 3), classes=5, classifier_activation=None)
    clouds = rng.uniform(-1, 1, size=(3, 48, 3)).astype("float32")
    outputs = model.predict(clouds, verbose=0)
    assert outputs.shape == (3, 5)
    assert np.ptp(outputs, axis=0).min() > 1e-3 and np.ptp(outputs, axis=1).min() > 1e-3  # logits that differ
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
        ({"query": "kdtree"}, "must be one of grid, numba. Received: query='kdtree'"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        PointwiseConv3D(4, **arguments)


@pytest.mark.parametrize("query", ["grid", "numba"])
def test_bad_inputs_raise(query, rng):
    layer = PointwiseConv3D(2, query=query)
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
    with pytest.raises(ValueError, match=r"Received: input_shape=\(0, 3\)"):
        PointwiseCNN(input_shape=(0, 3))
    with pytest.raises(ValueError, match=r"too many cells .* Received: largest extent=2.0"):
        pointcloud_grid.cell_means_matrix(np.array([[[0, 0, 0], [2, 0, 0]]], "float32"), 1e-6, 1)
    with pytest.raises(ValueError, match=r"too large .* Received: max \|coordinate\|=2000.0"):
        pointcloud_grid.cell_means_matrix(np.full((1, 2, 3), 2000, "float32"), 1e-9, 1)


def test_profiler_counts_kernel_and_cell_means():
    model = PointwiseCNN(input_shape=(64, 3), classes=4)
    rows = {row.name: row for row in profile(model).rows}
    for index, channels in ((1, 3), (2, 9), (3, 9), (4, 9)):
        kernel, means = rows[f"conv{index}"], rows[f"conv{index}/cell_means"]
        assert kernel.kind == "standard" and kernel.mult_adds == 64 * 27 * channels * 9
        assert kernel.params == 27 * channels * 9 + 9 == model.get_layer(f"conv{index}").count_params()
        assert means.kind == "pooling" and means.mult_adds == 64 * 27 * channels
    assert profile(model).params == model.count_params()


@pytest.mark.slow
def test_numba_query_is_refused_on_other_backends_with_a_clear_error():
    script = "from mobilenet_sep.layers import PointwiseConv3D\nPointwiseConv3D(4)\nPointwiseConv3D(4, query='numba')"
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert 'File "<string>", line 3' in result.stderr  # the grid layer was built; the numba one failed
    assert "needs Keras' TensorFlow backend (query='grid' runs on every backend). Received: KERAS_BACKEND='jax'" in (
        result.stderr
    )
