"""The shared test helpers can fail: `meaningful_model` is refused where outputs do not depend on the input."""

import numpy as np
import pytest

import mobilenet_sep
from helpers import assert_outputs_mean_something, meaningful_model, randomize_batchnorm
from mobilenet_sep.utils.inputs import random_images


def test_a_fresh_or_randomized_untrained_model_scores_every_input_alike():
    fresh = mobilenet_sep.create_model("mobilenet_v1_0.25_224", input_shape=(32, 32, 3), classes=5)
    with pytest.raises(AssertionError, match="same score for every input"):
        assert_outputs_mean_something(fresh)  # a softmax of exactly 1/5 for every input
    logits = randomize_batchnorm(
        mobilenet_sep.create_model("mobilenet_v1_0.25_224", input_shape=(32, 32, 3), classes=5, classifier_activation=None)
    )
    with pytest.raises(AssertionError):
        assert_outputs_mean_something(logits)  # random statistics alone: the input's share vanishes by the classifier


def test_a_meaningful_model_scores_depend_on_the_input():
    model = meaningful_model()
    scores = np.asarray(model(random_images(64, (32, 32, 3), seed=9), training=False))
    assert np.min(np.std(scores, axis=0)) > 0.1 * np.max(np.abs(scores))
    assert len(set(np.argmax(scores, axis=1).tolist())) == 5  # every class wins for some input
