"""Model inputs for checking and timing: the fixed input shape of a model and seeded random images."""

import numpy as np


def fixed_input_shape(model) -> tuple:
    """(height, width, channels) of a model with one fully known input (batch aside), else ValueError."""
    shape = tuple(model.input_shape)
    if len(shape) < 2 or None in shape[1:]:
        raise ValueError(
            "Export and timing need a model with one input of fixed size, e.g. (height, width, channels); "
            f"rebuild it with a fixed input_shape. Received: input_shape={shape}"
        )
    return shape[1:]


def random_images(count: int, shape: tuple, seed: int = 0) -> np.ndarray:
    """`count` seeded float32 inputs of `shape`, uniform in [-1, 1] (the preprocessed range)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count, *shape)).astype("float32")
