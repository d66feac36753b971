"""ImageNet weights: find or fetch keras.applications' MobileNet files and load them by layer name.

The published files use Keras' legacy HDF5 weights layout: the root (or a
`model_weights` group) has a `layer_names` attribute and one group per layer
whose `weight_names` attribute lists its arrays in the layer's weight order.
"""

import os
import warnings

import h5py
import numpy as np

BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
PUBLISHED_ALPHAS = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
PUBLISHED_SIZES = (128, 160, 192, 224)


def imagenet_file_name(alpha: float, size: int, include_top: bool = True) -> str:
    """The keras.applications file name, e.g. `mobilenet_1_0_224_tf_no_top.h5`."""
    suffix = "" if include_top else "_no_top"
    return f"mobilenet_{PUBLISHED_ALPHAS[float(alpha)]}_{size}_tf{suffix}.h5"


def _published_size(input_shape):
    height, width = tuple(input_shape)[:2]
    if height == width and height in PUBLISHED_SIZES:
        return height
    warnings.warn(
        f"No ImageNet weights were published for input size {height}x{width}; "
        "loading the 224x224 weights, as keras.applications does.",
        stacklevel=4,
    )
    return 224


def fetch_imagenet(alpha: float, size: int, include_top: bool = True) -> str:
    """Path of the cached or downloaded file; a one-line error when it cannot be had."""
    import keras

    file_name = imagenet_file_name(alpha, size, include_top)
    try:
        return keras.utils.get_file(file_name, BASE_URL + file_name, cache_subdir="models")
    except Exception as error:  # get_file raises several types for network failures
        raise ValueError(
            f"Could not download the ImageNet weights {file_name} from {BASE_URL} "
            f"({type(error).__name__}). Download it where there is network, then pass "
            f"weights='/path/to/{file_name}'. Received: weights='imagenet'"
        ) from None


def resolve(
    weights: str | os.PathLike,
    alpha: float,
    input_shape: tuple,
    include_top: bool,
    classes: int,
    depth_multiplier: int,
    separable: bool,
) -> str:
    """Check that `weights` fits the configuration and return the file to load."""
    if weights != "imagenet":
        if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
            raise ValueError(
                f"`weights` must be None, 'imagenet' or the path of an existing .h5 file. Received: weights={weights!r}"
            )
        return os.fspath(weights)
    if not separable:
        raise ValueError("No ImageNet weights exist for the standard-conv twin. Received: separable=False")
    if float(alpha) not in PUBLISHED_ALPHAS:
        raise ValueError(f"ImageNet weights exist for alpha 0.25, 0.5, 0.75 and 1.0 only. Received: alpha={alpha}")
    if depth_multiplier != 1:
        raise ValueError(
            f"ImageNet weights exist for depth_multiplier=1 only. Received: depth_multiplier={depth_multiplier}"
        )
    if include_top and classes != 1000:
        raise ValueError(f"ImageNet weights with include_top=True need classes=1000. Received: classes={classes}")
    if tuple(input_shape)[2] != 3:
        raise ValueError(f"ImageNet weights need 3 input channels. Received: input_shape={tuple(input_shape)}")
    return fetch_imagenet(alpha, _published_size(input_shape), include_top)


def _decode(names):
    return [name.decode("utf8") if isinstance(name, bytes) else str(name) for name in names]


def read_legacy_h5(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """{layer name: [arrays in weight order]} from a legacy-layout HDF5 weight file."""
    try:
        with h5py.File(path, "r") as file:
            root = file.get("model_weights", file)
            if "layer_names" not in root.attrs:
                raise ValueError(
                    f"{path} is not in Keras' legacy HDF5 weights layout (no 'layer_names' attribute). "
                    f"Received: weights={os.fspath(path)!r}"
                )
            return {
                layer: [np.asarray(root[layer][weight]) for weight in _decode(root[layer].attrs["weight_names"])]
                for layer in _decode(root.attrs["layer_names"])
            }
    except OSError as error:
        raise ValueError(f"Cannot read {path} as HDF5 ({error}). Received: weights={os.fspath(path)!r}") from None


def load_legacy_h5(model, path: str | os.PathLike, partial: bool = False) -> set[str]:
    """Assign every weighted layer of `model` from the file, matching layers by name; returns their names.

    Layers with weights must match one to one in name and shape: a missing
    layer or a shape mismatch is an error naming the layer, never a silent skip.
    With `partial`, the model may have layers the file lacks (a new classifier
    on a pretrained base); every layer of the file must still fit.
    """
    stored = {name: arrays for name, arrays in read_legacy_h5(path).items() if arrays}
    weighted = {layer.name: layer for layer in model.layers if layer.weights}
    missing = [] if partial else sorted(set(weighted) - set(stored))
    extra = sorted(set(stored) - set(weighted))
    if missing or extra:
        raise ValueError(
            f"{os.path.basename(path)} does not fit model '{model.name}': layers missing from the file "
            f"{missing[:5]}, layers the model lacks {extra[:5]} (include_top or alpha mismatch?). "
            f"Received: weights={os.fspath(path)!r}"
        )
    for name in stored:
        layer = weighted[name]
        expected = [tuple(weight.shape) for weight in layer.weights]
        received = [array.shape for array in stored[name]]
        if expected != received:
            raise ValueError(
                f"Layer '{name}' expects weight shapes {expected} but {os.path.basename(path)} has "
                f"{received}. Received: weights={os.fspath(path)!r}"
            )
        layer.set_weights(stored[name])
    return set(stored)
