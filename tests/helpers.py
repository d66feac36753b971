"""Helpers the tests share: non-trivial BatchNorm statistics and relative error."""

import numpy as np


def randomize_batchnorm(model, seed=0):
    """Give every BatchNorm layer random statistics so logits differ between wrong and right models.

    With fresh statistics (mean 0, variance 1) an untrained net outputs a near-uniform
    softmax that hides errors; random ones make each layer's normalisation matter.
    """
    import keras

    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.moving_mean.shape[0]
            gamma, beta, mean, variance = (
                rng.uniform(0.5, 1.5, size),
                rng.normal(0.0, 0.3, size),
                rng.normal(0.0, 0.3, size),
                rng.uniform(0.5, 1.5, size),
            )
            # gamma and beta exist only with scale=True and center=True
            layer.set_weights([gamma] * layer.scale + [beta] * layer.center + [mean, variance])
    return model


def relative_error(actual, expected):
    """max |actual - expected| / max |expected|."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def numeric_gradient(function, array, step=1e-6):
    """Central finite differences of the scalar `function()` with respect to every entry of `array` (in place)."""
    gradient = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + step
        above = function()
        array[index] = original - step
        below = function()
        array[index] = original
        gradient[index] = (above - below) / (2 * step)
    return gradient


def write_legacy_h5(model, path):
    """`model`'s weights in the layout of keras.applications' published files (root `layer_names`)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)
    return str(path)


def run_layer_test(layer, inputs, tmp_path, training=None):
    """The one round-trip check of a Keras layer, used by every layer test.

    - `from_config(get_config())` rebuilds a layer with the same config, registered under our package;
    - a functional model around the layer saves to `.keras` and loads back with `safe_mode=True`;
    - the loaded model's outputs equal the original's exactly;
    - the output shape equals `compute_output_shape`.
    `inputs` is one array or a list of arrays (a layer called on several inputs). Returns the outputs.
    """
    import keras

    config = layer.get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("mobilenet_sep>"), serialized["registered_name"]
    assert type(layer).from_config(config).get_config() == config
    arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    symbolic = [keras.Input(array.shape[1:], dtype=str(array.dtype)) for array in arrays]
    called = layer(symbolic if len(symbolic) > 1 else symbolic[0])
    model = keras.Model(symbolic if len(symbolic) > 1 else symbolic[0], called)
    path = tmp_path / f"{layer.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    feed = arrays if len(arrays) > 1 else arrays[0]
    outputs = np.asarray(model(feed, training=training))
    np.testing.assert_array_equal(np.asarray(loaded(feed, training=training)), outputs)
    shapes = [array.shape for array in arrays]
    expected_shape = layer.compute_output_shape(shapes if len(shapes) > 1 else shapes[0])
    assert tuple(outputs.shape) == tuple(expected_shape)
    return outputs


def meaningful_model(name="mobilenet_v1_0.25_224", input_shape=(32, 32, 3), classes=5, seed=0, **overrides):
    """A small zoo model whose outputs mean something: random BatchNorm statistics, logits out, checked on itself.

    A fresh untrained MobileNet outputs exactly the same scores for every input (a softmax of 1/N),
    so parity and agreement hold on it by construction. This one's class scores differ across inputs
    and across classes, and its top class is not the same for every input: a file that computes
    something else, or a quantization that loses too much, shows.
    """
    import keras

    import mobilenet_sep

    keras.utils.set_random_seed(seed)  # the same weights on every run: figures that do not drift between runs
    model = mobilenet_sep.create_model(
        name, input_shape=input_shape, classes=classes, classifier_activation=None, **overrides
    )
    normalize_batchnorm(model, seed)
    assert_outputs_mean_something(model)
    return model


def normalize_batchnorm(model, seed=0, count=32, centre=True):
    """Give every BatchNorm of an untrained net what training would: statistics of its inputs, and a scale
    and shift that keep its ReLU6 mostly in its linear range.

    Random statistics alone are not enough: in a deep untrained net the input's share of each
    activation shrinks layer by layer until the scores no longer depend on the input (1e-8 of them
    at the classifier of a 0.25 MobileNet). Normalized layers with random scales keep the input's
    share but make the net chaotic: it amplifies rounding error about 1.2x per layer, far more than
    a trained net. So: each convolution before a BatchNorm is scaled to unit output variance on
    random images, the BatchNorm takes those images' statistics (perturbed: mean off by up to 0.2
    standard deviations, variance by up to 40 %), a scale in [0.4, 0.8] and a shift in [0.3, 1.0]
    (about 1x amplification of rounding error through the net, as training leaves it); the
    classifier's bias centres the scores on those images, so the input, not the bias, picks the class
    (`centre=False` keeps the bias: at full size the input then moves the scores by about 2 % of their
    size, and a file's error relative to the largest score stays near a trained net's 1e-6).
    """
    import keras

    from mobilenet_sep.utils.inputs import fixed_input_shape, random_images

    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    images = random_images(count, fixed_input_shape(model), seed + 1)
    rng = np.random.default_rng(seed + 2)
    for layer in layers:
        if layer.scale:
            layer.gamma.assign(rng.uniform(0.4, 0.8, layer.gamma.shape))
        if layer.center:
            layer.beta.assign(rng.uniform(0.3, 1.0, layer.beta.shape))

    def measure():  # in training mode with momentum 0, one call sets the moving statistics to the batch's
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.momentum = 0.0
        model(images, training=True)
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum

    measure()
    names = {layer.name: layer for layer in model._flatten_layers()}
    for layer in layers:  # MobileNet's naming: `conv_dw_3_bn` normalizes `conv_dw_3`
        convolution = names.get(layer.name.removesuffix("_bn"))
        if convolution is not None and layer.name.endswith("_bn") and getattr(convolution, "bias", None) is None:
            std = np.sqrt(np.asarray(layer.moving_variance))
            kernel = np.asarray(convolution.kernel)
            convolution.kernel.assign(kernel / std.reshape(kernel.shape[2:] if kernel.shape[-1] != std.size else -1))
    measure()
    for layer in layers:
        mean, variance = np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)
        layer.moving_mean.assign(mean + rng.uniform(-0.2, 0.2, mean.shape) * np.sqrt(variance))
        layer.moving_variance.assign(variance * rng.uniform(0.7, 1.4, variance.shape))
    classifier = names.get("conv_preds")
    if centre and classifier is not None and classifier.bias is not None:  # centre the scores: the input decides the class
        scores = np.asarray(model(images, training=False)).reshape(len(images), -1)
        classifier.bias.assign(np.asarray(classifier.bias) - scores.mean(axis=0))
    return model


def assert_outputs_mean_something(model, count=16, seed=0):
    """Fail unless the model's scores vary across inputs and across classes and its top class varies."""
    from mobilenet_sep.utils.inputs import fixed_input_shape, random_images

    scores = np.asarray(model(random_images(count, fixed_input_shape(model), seed), training=False), np.float64)
    scale = float(np.max(np.abs(scores)))
    assert scale > 0, "every score is zero"
    assert np.min(np.std(scores, axis=0)) > 1e-3 * scale, "some class gets the same score for every input"
    assert np.min(np.std(scores, axis=1)) > 1e-3 * scale, "some input gets the same score for every class"
    assert len(set(np.argmax(scores, axis=1).tolist())) > 1, "every input gets the same top class"


WARM_IMPORTS = (
    "tensorflow",
    "keras",
    "sklearn.datasets",
    "sklearn.model_selection",
    "mobilenet_sep.cli",
    "mobilenet_sep.train.engine",
)
"""What processes of `start_warm_process` have imported before they start (importing TensorFlow alone
takes seconds of CPU)."""

_CHILD_OUTPUT = """
import os as _os
_log = _os.open(_log_path, _os.O_WRONLY | _os.O_CREAT | _os.O_APPEND)
_os.dup2(_log, 1)
_os.dup2(_log, 2)
"""


def start_warm_process(code, log_path, **names):
    """Run Python `code` (its global names given) in a new process, stdout and stderr into `log_path`.

    The process is forked from a server that imported WARM_IMPORTS once and started nothing
    (no TensorFlow runtime yet, so forking is safe): a test that needs many fresh processes, each
    killed or run to its end, pays the imports once. The server keeps the environment it started
    with: set variables such as TF_CONFIG inside `code`. Exit status: `raise SystemExit(code)`.
    """
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    if not getattr(start_warm_process, "preloaded", False):  # the server starts with the first process
        context.set_forkserver_preload(list(WARM_IMPORTS))
        start_warm_process.preloaded = True
    process = context.Process(target=exec, args=(_CHILD_OUTPUT + code, {**names, "_log_path": str(log_path)}))
    process.start()
    return process
