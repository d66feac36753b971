"""Evaluation: top-1, top-5, loss and confusion matrix against NumPy / scikit-learn computed from predictions."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib import image as matplotlib_image
from sklearn.metrics import confusion_matrix, top_k_accuracy_score

from mobilenet_sep.data import LoadedDataset
from mobilenet_sep.train.evaluate import evaluate, outputs_are_logits
from mobilenet_sep.train.render import plot_confusion


def _classifier(classes, activation, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Dense(
        classes, activation=activation, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0)
    )(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def _loaded(rng, classes, count=47, batch_size=6):
    images = rng.normal(size=(count, 4, 4, 3)).astype("float32")
    labels = rng.integers(0, classes, size=count)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)  # last batch partial
    names = [f"class {index}" for index in range(classes)]
    return LoadedDataset(dataset, classes, names, count), images, labels


@pytest.mark.parametrize("activation", ["softmax", None])
def test_metrics_match_the_predictions(activation, rng):
    classes = 7
    model = _classifier(classes, activation)
    loaded, images, labels = _loaded(rng, classes)
    outputs = model.predict(images, verbose=0).astype("float64")
    log_probabilities = np.log(outputs) if activation else outputs - np.log(np.exp(outputs).sum(-1, keepdims=True))
    metrics = evaluate(model, loaded)
    assert outputs_are_logits(model) is (activation is None)
    assert metrics["examples"] == 47 and metrics["class_names"] == loaded.class_names
    assert metrics["top1"] == pytest.approx(np.mean(outputs.argmax(-1) == labels))
    assert metrics["top5"] == pytest.approx(top_k_accuracy_score(labels, outputs, k=5, labels=range(classes)))
    assert metrics["loss"] == pytest.approx(-np.mean(log_probabilities[np.arange(47), labels]), rel=1e-4)
    expected = confusion_matrix(labels, outputs.argmax(-1), labels=range(classes))
    np.testing.assert_array_equal(metrics["confusion_matrix"], expected)
    assert 0.05 < metrics["top1"] < 0.6  # a random classifier: the figures are not trivially 0 or 1


def test_few_classes_have_no_top5_and_mismatches_are_errors(rng):
    loaded, _, _ = _loaded(rng, classes=4)
    metrics = evaluate(_classifier(4, "softmax"), loaded)
    assert "top5" not in metrics and np.sum(metrics["confusion_matrix"]) == 47
    with pytest.raises(ValueError, match="The model has 7 outputs but the dataset has 4 classes"):
        evaluate(_classifier(7, "softmax"), loaded)
    empty = LoadedDataset(loaded.dataset.take(0), 4, ["a", "b", "c", "d"], 0)
    with pytest.raises(ValueError, match="empty"):
        evaluate(_classifier(4, "softmax"), empty)


def test_confusion_plot_is_a_png(tmp_path, rng):
    loaded, _, _ = _loaded(rng, classes=12)
    metrics = evaluate(_classifier(12, "softmax"), loaded)
    path = plot_confusion(metrics, str(tmp_path / "confusion.png"), title="test")
    assert path == str(tmp_path / "confusion.png")
    picture = matplotlib_image.imread(path)
    assert picture.ndim == 3 and picture.shape[0] > 300 and picture.shape[1] > 300
    assert sorted(file.name for file in tmp_path.iterdir()) == ["confusion.png"]  # no temporary left over
