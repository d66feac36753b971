"""The optimizer a recipe builds: the warm-up + cosine schedule and weight decay that spares depthwise kernels."""

import math

import keras
import numpy as np
import pytest

from mobilenet_sep.layers import DepthwiseConv, PointwiseConv
from mobilenet_sep.train.optimizer import WarmupCosine, build_optimizer, depthwise_kernels, learning_rate_schedule
from mobilenet_sep.train.recipe import check_recipe


def _reference_rate(step, peak, total, warmup, final, scaled_from=0, scale=1.0):
    """The schedule written out in plain Python."""
    if step < warmup:
        rate = peak * (step + 1) / warmup
    else:
        progress = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
        rate = peak * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))
    return rate * scale if step >= scaled_from else rate


@pytest.mark.parametrize(
    "arguments",
    [
        {"peak": 0.1, "total_steps": 100, "warmup_steps": 10, "final_fraction": 0.0},
        {"peak": 0.01, "total_steps": 50, "warmup_steps": 0, "final_fraction": 0.1},
        {
            "peak": 0.05,
            "total_steps": 60,
            "warmup_steps": 5,
            "final_fraction": 0.0,
            "scaled_from_step": 20,
            "scale": 0.1,
        },
    ],
)
def test_warmup_cosine_matches_the_formula(arguments):
    schedule = WarmupCosine(**arguments)
    reference = {
        "peak": arguments["peak"],
        "total": arguments["total_steps"],
        "warmup": arguments["warmup_steps"],
        "final": arguments["final_fraction"],
        "scaled_from": arguments.get("scaled_from_step", 0),
        "scale": arguments.get("scale", 1.0),
    }
    for step in range(0, arguments["total_steps"] + 5):
        expected = _reference_rate(step, **reference)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5, abs=1e-6 * arguments["peak"])  # float32
    assert WarmupCosine.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_constant_decay_and_the_recipe_schedule():
    recipe = check_recipe(
        {
            "train": {"epochs": 4},
            "optimizer": {"learning_rate": 0.2},
            "schedule": {"decay": "constant", "warmup_epochs": 0.5},
            "finetune": {"weights": "imagenet", "freeze_base": True, "frozen_epochs": 1},
        }
    )
    schedule = learning_rate_schedule(recipe, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in range(40)]
    np.testing.assert_allclose(rates[:5], [0.04, 0.08, 0.12, 0.16, 0.2], rtol=1e-6)  # warm-up over 5 steps
    np.testing.assert_allclose(rates[5:10], 0.2, rtol=1e-6)  # the frozen epoch
    np.testing.assert_allclose(rates[10:], 0.02, rtol=1e-6)  # unfrozen: scaled by 0.1


def _small_model():
    inputs = keras.Input((8, 8, 3))
    x = DepthwiseConv(3, use_bias=False, name="dw")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = PointwiseConv(4, name="pw")(x)
    x = keras.layers.DepthwiseConv2D(3, name="keras_dw")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def _decayed_after_one_step(decay_depthwise):
    """Which variables one SGD step with zero gradients shrinks, and by what factor."""
    model = _small_model()
    recipe = check_recipe(
        {
            "optimizer": {"name": "sgd", "learning_rate": 0.5, "weight_decay": 0.2, "decay_depthwise": decay_depthwise},
            "schedule": {"decay": "constant"},
        }
    )
    optimizer = build_optimizer(recipe, model, learning_rate_schedule(recipe, steps_per_epoch=1))
    before = {variable.path: np.array(variable) for variable in model.trainable_variables}
    optimizer.apply_gradients([(keras.ops.zeros_like(v), v) for v in model.trainable_variables])
    factors = {}
    for variable in model.trainable_variables:
        start, end = before[variable.path].ravel(), np.array(variable).ravel()
        if np.any(start):  # zero-initialised biases and betas show nothing
            factors[variable.path] = float(np.dot(end, start) / np.dot(start, start))  # end = factor * start
    return factors


def test_weight_decay_spares_depthwise_kernels_batchnorm_and_biases():
    factors = _decayed_after_one_step(decay_depthwise=False)
    shrink = 1 - 0.5 * 0.2  # decoupled decay: w -= lr * wd * w
    assert factors["pw/kernel"] == pytest.approx(shrink, rel=1e-5)
    for path in ("dw/kernel", "keras_dw/kernel", "bn/gamma"):
        assert factors[path] == pytest.approx(1.0, rel=1e-5)
    factors = _decayed_after_one_step(decay_depthwise=True)
    assert factors["dw/kernel"] == pytest.approx(shrink, rel=1e-5) and factors["keras_dw/kernel"] == pytest.approx(
        shrink, rel=1e-5
    )


def test_optimizer_classes_settings_and_unknown_settings():
    model = _small_model()
    assert len(depthwise_kernels(model)) == 2
    rmsprop = build_optimizer(check_recipe({"optimizer": {"momentum": 0.9, "epsilon": 1.0}}), model, 0.01)
    assert isinstance(rmsprop, keras.optimizers.RMSprop) and rmsprop.momentum == 0.9 and rmsprop.epsilon == 1.0
    adam = build_optimizer(check_recipe({"optimizer": {"name": "adam", "beta_2": 0.99}}), model, 0.01)
    assert isinstance(adam, keras.optimizers.Adam) and adam.beta_2 == 0.99
    with pytest.raises(ValueError, match=r"adam optimizer rejects.*Received: optimizer.momentum=0.9"):
        build_optimizer(check_recipe({"optimizer": {"name": "adam", "momentum": 0.9}}), model, 0.01)
