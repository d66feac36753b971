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
            size = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, size),
                    rng.normal(0.0, 0.3, size),
                    rng.normal(0.0, 0.3, size),
                    rng.uniform(0.5, 1.5, size),
                ]
            )
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
