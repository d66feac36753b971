"""Fixtures of the per-layer tests: a small MobileNet whose outputs mean something."""

import pytest

import mobilenet_sep
from helpers import randomize_batchnorm


@pytest.fixture(scope="module")
def tiny():
    """MobileNetV1 0.25 on 32x32 inputs, 10 logits, BatchNorm statistics randomized (outputs not constant)."""
    model = mobilenet_sep.create_model(
        "mobilenet_v1_0.25_128", input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    return randomize_batchnorm(model)
