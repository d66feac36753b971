"""What the exports share: atomic writes, the output path check, verification figures, source description."""

import hashlib

import keras
import numpy as np
import pytest

import mobilenet_sep
from helpers import relative_error
from mobilenet_sep.export import verify as export_common


def _dense_model(classes=4):
    inputs = keras.Input((3, 2, 3))
    outputs = keras.layers.Dense(classes)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def test_verify_reports_relative_error_agreement_and_accuracies_against_numpy(rng):
    model = _dense_model()
    noise = 0.05

    def exported(images):  # a stand-in for a runtime: the model plus a fixed perturbation
        outputs = np.asarray(model(images))
        return outputs + noise * np.sign(outputs[:, :1])

    images = rng.uniform(-1, 1, (50, 3, 2, 3)).astype("float32")
    labels = rng.integers(0, 4, 50)
    result = export_common.verify(exported, model, tolerance=1e-3, evaluation=(images, labels))

    assert result.random_inputs == export_common.RANDOM_INPUTS
    random_images = export_common.random_inputs(model)
    assert random_images.shape == (8, 3, 2, 3) and random_images.min() >= -1 and random_images.max() <= 1
    expected = relative_error(exported(random_images), np.asarray(model(random_images)))
    assert result.relative_error == pytest.approx(expected, rel=1e-6)
    assert not result.passed and "exceeds the tolerance" in result.problems[0]
    keras_top1 = np.argmax(np.asarray(model(images)), -1)
    exported_top1 = np.argmax(exported(images), -1)
    assert result.evaluation_examples == 50
    assert result.top1_agreement == pytest.approx(np.mean(keras_top1 == exported_top1))
    assert result.keras_top1 == pytest.approx(np.mean(keras_top1 == labels))
    assert result.exported_top1 == pytest.approx(np.mean(exported_top1 == labels))
    assert result.top1_delta == pytest.approx(100 * (result.exported_top1 - result.keras_top1))


def test_verify_passes_within_tolerance_and_keeps_given_problems():
    model = _dense_model()
    same = export_common.verify(lambda images: model(images), model, tolerance=1e-6)
    assert same.passed and same.relative_error == 0.0 and same.top1_agreement == 1.0 and same.keras_top1 is None
    flagged = export_common.verify(lambda images: model(images), model, tolerance=None, problems=["graph"])
    assert flagged.problems == ("graph",) and not flagged.passed


def test_models_without_a_fixed_input_size_are_refused():
    model = mobilenet_sep.MobileNetV1(alpha=0.25, input_shape=None, classes=3)
    with pytest.raises(ValueError, match=r"fixed size.*Received: input_shape=\(None, None, None, 3\)"):
        export_common.fixed_input_shape(model)


def test_describe_source_names_zoo_configs_and_hashes_files(tmp_path):
    model = _dense_model()
    assert export_common.describe_source(model, "mobilenet_v1_0.5_160") == {
        "model": "mobilenet_v1_0.5_160",
        "zoo_config": {"alpha": 0.5, "input_shape": [160, 160, 3]},
    }
    path = tmp_path / "model.keras"
    model.save(path)
    described = export_common.describe_source(model, str(path))
    assert described["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert export_common.describe_source(model, None) == {"model": model.name}


def test_accuracy_bounds_name_the_figures_they_miss():
    bounds = export_common.AccuracyBounds(max_top1_drop=1.0, min_agreement=0.9)
    assert bounds.problems(0.95, 0.80, 0.795, "360 test examples") == []  # 0.5 points, 95 % agreement
    problems = bounds.problems(0.85, 0.90, 0.85, "360 test examples")
    assert problems == [
        "top-1 agreement with Keras 85.00 % on 360 test examples is below the minimum 90.00 %",
        "top-1 accuracy fell 5.00 points (90.00 % -> 85.00 %) on 360 test examples, more than the 1 allowed",
    ]
    assert bounds.problems(0.5, None, None, "8 random inputs") == [
        "top-1 agreement with Keras 50.00 % on 8 random inputs is below the minimum 90.00 %"
    ]  # without labels only the agreement is judged
    assert export_common.AccuracyBounds(max_top1_drop=None).problems(1.0, 0.9, 0.1, "x") == []
    with pytest.raises(ValueError, match="Received: min_agreement=1.5"):
        export_common.AccuracyBounds(min_agreement=1.5)
    with pytest.raises(ValueError, match="Received: max_top1_drop=-1"):
        export_common.AccuracyBounds(max_top1_drop=-1)


def test_verify_holds_an_exported_run_to_its_bounds(rng):
    model = _dense_model()
    images = rng.uniform(-1, 1, (40, 3, 2, 3)).astype("float32")

    def swapped(batch):  # picks class 1 wherever Keras picks class 0: agreement drops by exactly those inputs
        outputs = np.asarray(model(batch))
        return outputs[:, [1, 0, 2, 3]]

    predicted = np.argmax(np.asarray(model(images)), -1)
    moved = np.isin(predicted, (0, 1))
    labels = predicted  # the Keras model is right on every example: its top-1 is 100 %
    bounds = export_common.AccuracyBounds()
    result = export_common.verify(swapped, model, tolerance=None, evaluation=(images, labels), bounds=bounds)
    assert 0 < moved.mean() < 1 and result.top1_agreement == pytest.approx(1 - moved.mean())
    assert result.top1_delta == pytest.approx(-100 * moved.mean())
    assert not result.passed and len(result.problems) == 2 and result.accuracy_bounds == bounds
