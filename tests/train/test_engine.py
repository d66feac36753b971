"""The training engine: a short real digits run, fine-tuning, and bad input that damages nothing.

Kills and resume: tests/train/test_faults.py; mirrored and multi-worker runs: tests/train/test_distribute.py.
"""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from helpers import randomize_batchnorm, write_legacy_h5
from mobilenet_sep import zoo
from mobilenet_sep.data import DataOptions, load_dataset
from mobilenet_sep.train.engine import Progress, recipe_datasets, train
from mobilenet_sep.train.evaluate import evaluate
from mobilenet_sep.train.recipe import load_recipe

TINY = ['model.name="mobilenet_v1_0.25_128"']
"""The digits recipe with the narrowest MobileNet: the real task, cheap steps."""
FAST = [*TINY, "train.steps_per_epoch=10", "train.batch_size=40", "schedule.warmup_epochs=0", "schedule.decay=constant"]
"""A few constant-rate steps per epoch: long enough for the loss to fall, short enough for a test."""


class Recorder(Progress):
    def __init__(self):
        self.plan, self.steps, self.records = None, [], []

    def start(self, plan):
        self.plan = plan

    def step(self, epoch, step, loss):
        self.steps.append((epoch, step, loss))

    def epoch_end(self, record):
        self.records.append(record)


def test_short_digits_training_learns_and_writes_its_files(tmp_path):
    progress = Recorder()
    result = train(load_recipe("digits", [*TINY, "train.epochs=3"]), tmp_path / "run", progress=progress)
    history = result.metrics["history"]
    assert [record["epoch"] for record in history] == [1, 2, 3] and progress.records == history
    assert len(progress.steps) == 3 * (1437 // 32) == 3 * progress.plan["steps_per_epoch"]
    assert all(math.isfinite(record["loss"]) for record in history)
    assert history[-1]["loss"] < history[0]["loss"] - 0.3  # the loss falls
    assert result.metrics["top1"] > 0.5  # chance is 0.1
    assert result.metrics["complete"] and result.metrics["epochs"] == 3 and result.metrics["classes"] == 10
    with open(tmp_path / "run" / "metrics.json") as file:
        assert json.load(file) == json.loads(json.dumps(result.metrics))
    # The saved files hold what the figures say: re-evaluate them independently.
    test_set = load_dataset("digits", DataOptions("test", (32, 32, 3), batch_size=120))
    final = evaluate(zoo.load_model(result.final_model), test_set)
    assert final["top1"] == pytest.approx(result.metrics["top1"], abs=1e-6)
    assert final["confusion_matrix"] == result.metrics["confusion_matrix"]
    best = evaluate(zoo.load_model(result.best_model), test_set)
    assert best["top1"] == pytest.approx(result.metrics["best_top1"], abs=1e-6)
    for part in ("train", "test"):  # TensorBoard event files (their content: tests/test_run_folder.py)
        assert [name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "run" / "logs" / part)] == [
            True
        ]


def _legacy_base_weights(path):
    """A no-top MobileNet 0.25 weight file in the layout of the published ImageNet files."""
    keras.utils.set_random_seed(5)
    base = keras.applications.MobileNet(weights=None, alpha=0.25, input_shape=(32, 32, 3), include_top=False)
    randomize_batchnorm(base, seed=5)
    write_legacy_h5(base, path)
    return {layer.name: layer.get_weights() for layer in base.layers if layer.weights}


def test_finetuning_trains_the_classifier_alone_then_everything(tmp_path):
    weights_file = str(tmp_path / "base.h5")
    pretrained = _legacy_base_weights(weights_file)
    after_frozen_epoch = {}

    class Snapshot(Recorder):
        def epoch_end(self, record):
            super().epoch_end(record)
            if record["epoch"] == 1:  # best.keras now holds the model at the end of the frozen epoch
                model = keras.saving.load_model(tmp_path / "run" / "best.keras")
                after_frozen_epoch.update({layer.name: layer.get_weights() for layer in model.layers})

    overrides = [*FAST, "train.epochs=2", "train.steps_per_epoch=4", f"finetune.weights={json.dumps(weights_file)}"]
    overrides.append("finetune.freeze_base=true")
    result = train(load_recipe("digits", overrides), tmp_path / "run", progress=Snapshot())
    first, second = result.metrics["history"]
    assert first["frozen_base"] and not second["frozen_base"]
    assert second["learning_rate"] == pytest.approx(first["learning_rate"] * 0.1)  # constant rate, scaled on thawing
    for name, arrays in pretrained.items():  # base (BatchNorm statistics included) untouched by the frozen epoch
        for saved, original in zip(after_frozen_epoch[name], arrays, strict=True):
            np.testing.assert_array_equal(saved, original)
    classifier = zoo.load_model("mobilenet_v1_0.25_128", input_shape=(32, 32, 3), classes=10, output_stride=16)
    keras.utils.set_random_seed(0)
    assert not np.allclose(after_frozen_epoch["conv_preds"][0], classifier.get_layer("conv_preds").get_weights()[0])
    final = keras.saving.load_model(result.final_model)
    assert all(layer.trainable for layer in final.layers)
    assert not np.array_equal(final.get_layer("conv_pw_13").get_weights()[0], pretrained["conv_pw_13"][0])


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("flowers_finetune", 5)])
def test_tfds_recipes_find_their_data(name, classes, tmp_path):
    recipe = load_recipe(name, [f"data.data_dir={json.dumps(str(tmp_path))}"])
    with tfds.testing.mock_data(num_examples=200):  # offline: tensorflow-datasets' own mock data
        train_data, test_data = recipe_datasets(recipe, (32, 32, 3))
        images, labels = next(iter(train_data.epoch(0)))
    assert train_data.num_classes == test_data.num_classes == classes
    assert images.shape == (recipe["train"]["batch_size"], 32, 32, 3) and labels.shape[0] == images.shape[0]


def _snapshot(folder):
    return {
        os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(folder)
        for name in names
    }


def test_bad_input_fails_before_touching_a_previous_run(tmp_path):
    run = tmp_path / "run"
    train(load_recipe("digits", [*FAST, "train.epochs=1", "train.steps_per_epoch=1"]), run)
    before = _snapshot(run)
    assert {"metrics.json", "final.keras", "best.keras", "recipe.json"} <= set(before)
    cases = [
        ([*FAST, "data.dataset=cifar"], "Received: dataset='cifar'"),
        ([*FAST, "train.batch_size=0"], "Received: train.batch_size=0"),
        ([*FAST, "model.input_shape=[16, 16, 3]"], r"Received: input_shape=\(16, 16, 3\)"),
        ([*FAST, "model.alhpa=0.5"], "takes no such argument .*Received: alhpa=0.5"),
        ([*FAST, "model.alpha=0.5"], "checkpoint of another run \\(model differ\\)"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            train(load_recipe("digits", overrides), run)
        assert "\n" not in str(error.value)
        assert _snapshot(run) == before
    # Without the recipe record, restoring the checkpoint itself finds the mismatch.
    os.remove(run / "recipe.json")
    before = _snapshot(run)
    with pytest.raises(ValueError, match="does not fit this model"):
        train(load_recipe("digits", [*FAST, "model.alpha=0.5"]), run)
    assert _snapshot(run) == before
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="Output directory is not writable.*Received: out="):
        train(load_recipe("digits", FAST), blocker / "run")
