"""The data module: spec dispatch, the embedded digits, and the one image pipeline (scaling, seeded epochs, shifts)."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_digits

from mobilenet_sep import data
from mobilenet_sep.data import images as image_sources
from mobilenet_sep.data import pipeline
from mobilenet_sep.data import DataOptions, LoadedDataset, load_dataset


def _arrays(dataset):
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in dataset), strict=True)
    return np.concatenate(images), np.concatenate(labels)


def test_preprocess_is_keras_mobilenets(rng):
    pixels = rng.integers(0, 256, size=(2, 5, 5, 3)).astype("uint8")
    expected = keras.applications.mobilenet.preprocess_input(pixels.astype("float32"))
    np.testing.assert_allclose(data.preprocess(pixels).numpy(), expected, atol=1e-6)


def test_digits_split_is_fixed_stratified_and_complete():
    arrays = image_sources.digits_arrays()
    (train_images, train_labels), (test_images, test_labels) = arrays["train"], arrays["test"]
    digits = sklearn_digits()
    assert len(train_labels) + len(test_labels) == len(digits.target) == 1797
    assert len(test_labels) == 360
    # Every original image appears exactly once across the two splits (as 0..16 scaled to 0..255).
    original = sorted(np.round(digits.images * 255 / 16).astype("uint8").reshape(len(digits.target), -1).tobytes())
    ours = np.concatenate([train_images, test_images]).reshape(1797, -1)
    assert sorted(ours.tobytes()) == original
    test_counts = np.bincount(test_labels, minlength=10)
    assert test_counts.min() >= 35 and test_counts.max() <= 37  # stratified: ~36 of each digit


def test_digits_test_split_is_scaled_grey_in_three_channels():
    loaded = load_dataset("digits", DataOptions("test", (32, 32, 3), batch_size=50))
    assert (loaded.num_classes, loaded.num_examples, loaded.skipped) == (10, 360, 0)
    assert loaded.class_names == [str(digit) for digit in range(10)]
    images, labels = _arrays(loaded.dataset)
    assert images.shape == (360, 32, 32, 3) and images.dtype == np.float32
    assert images.min() == -1.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images[..., 0], images[..., 2])  # grayscale copied to 3 channels
    np.testing.assert_array_equal(labels, image_sources.digits_arrays()["test"][1])  # evaluation keeps the order
    # An 8x8 digit upsampled: block averages of the 32x32 image follow the original pixels.
    original = image_sources.digits_arrays()["test"][0][0, ..., 0] / 127.5 - 1
    blocks = images[0, ..., 0].reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.corrcoef(blocks.ravel(), original.ravel())[0, 1] > 0.95


def test_training_epochs_are_seeded_permutations():
    options = DataOptions("train", (32, 32, 3), batch_size=100, training=True, seed=3, augment="none")
    loaded = load_dataset("digits", options)
    first, again, second = (_arrays(loaded.epoch(epoch)) for epoch in (4, 4, 5))
    np.testing.assert_array_equal(first[0], again[0])  # epoch k is a pure function of (seed, k)
    assert not np.array_equal(first[1], second[1])  # another epoch, another order
    assert first[0].shape[0] == 1400  # 1,437 examples: full batches only
    reloaded = load_dataset("digits", options)
    np.testing.assert_array_equal(_arrays(reloaded.epoch(4))[0], first[0])  # a new process sees the same epoch
    # Without augmentation an epoch is the evaluation images, reordered.
    evaluation, labels = _arrays(load_dataset("digits", DataOptions("train", (32, 32, 3), 100)).dataset)
    lookup = {image.tobytes(): label for image, label in zip(evaluation, labels, strict=True)}
    assert all(lookup[image.tobytes()] == label for image, label in zip(*first, strict=True))
    other_seed = load_dataset("digits", DataOptions("train", (32, 32, 3), 100, training=True, seed=4))
    assert not np.array_equal(_arrays(other_seed.epoch(4))[1], first[1])


def test_seeded_epochs_serve_any_kind_of_example():
    import tensorflow as tf

    examples = tf.data.Dataset.range(10).map(lambda value: (tf.fill([3], value), value))  # a "point cloud" and label

    def prepare(example, seed):
        points, label = example
        return tf.cast(points, tf.float32) + tf.random.stateless_uniform([3], seed), label

    for_epoch = pipeline.seeded_epochs(examples, 10, DataOptions("train", (3,), batch_size=4, training=True), prepare)
    first, again, second = (_arrays(for_epoch(epoch)) for epoch in (0, 0, 1))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1].shape == (8,) and len(set(first[1])) == 8  # two full batches of distinct examples
    assert not np.array_equal(first[1], second[1])
    noise = first[0] - first[1][:, None]
    assert np.all((noise >= 0) & (noise < 1)) and len(np.unique(noise)) == noise.size  # a seed per example
    with pytest.raises(ValueError, match="fewer than one batch. Received: batch_size=11"):
        pipeline.seeded_epochs(examples, 10, DataOptions("train", (3,), batch_size=11, training=True), prepare)


def test_crop_augmentation_shifts_each_image_by_at_most_an_eighth():
    size, pad = 32, 4

    def epoch(augment):
        options = DataOptions("train", (size, size, 3), batch_size=1437, training=True, augment=augment)
        return _arrays(load_dataset("digits", options).epoch(2))

    (shifted, labels), (plain, plain_labels) = epoch("crop"), epoch("none")
    np.testing.assert_array_equal(labels, plain_labels)  # augmentation comes after the shuffle
    shifts = []
    for image, original in zip(shifted, plain, strict=True):
        padded = np.pad(original, ((pad, pad), (pad, pad), (0, 0)), constant_values=-1.0)  # black fill
        matches = [
            (dy - pad, dx - pad)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if np.array_equal(padded[dy : dy + size, dx : dx + size], image)
        ]
        assert matches, "an augmented image is not a shift of its original"
        shifts.append(matches[0])
    assert len(set(shifts)) > 40  # shifts vary over the (2 * 4 + 1) ** 2 = 81 possible ones


def test_spec_dispatch_passes_the_argument_and_checks_options(monkeypatch):
    calls = []

    def fake_loader(argument, options):
        calls.append((argument, options.split))
        return LoadedDataset(None, 2, ["a", "b"], 0)

    monkeypatch.setitem(data.LOADERS, "fake", fake_loader)
    options = DataOptions("test", (32, 32, 3), 8)
    load_dataset("fake:x:y", options)
    load_dataset("fake", options)
    assert calls == [("x:y", "test"), (None, "test")]
    assert set(data.LOADERS) >= {"digits", "tfds", "folder", "shapes", "modelnet40"}  # registered where defined
    assert all(callable(loader) for loader in data.LOADERS.values())


@pytest.mark.parametrize(
    "spec,options,message",
    [
        ("digit", DataOptions("train", (32, 32, 3), 8), "Did you mean: digits.*Received: dataset='digit'"),
        (
            "imagenet",
            DataOptions("train", (32, 32, 3), 8),
            "known kinds: .*digits.* Received: dataset='imagenet'",
        ),
        ("digits", DataOptions("train", (32, 32, 3), 0), "Received: batch_size=0"),
        ("digits", DataOptions("train", (32, 32, 3), -4), "Received: batch_size=-4"),
        ("digits", DataOptions("train", (32, 32, 3), 8, augment="zoom"), "Received: augment='zoom'"),
        ("digits:validation", DataOptions("train", (32, 32, 3), 8), "Received: split='validation'"),
        ("digits", DataOptions("train", (32, 32, 1), 8), r"Received: input_shape=\(32, 32, 1\)"),
        ("digits", DataOptions("train", (32, 32, 3), 5000, training=True), "Received: batch_size=5000"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(spec, options, message):
    with pytest.raises(ValueError, match=message) as error:
        load_dataset(spec, options)
    assert "\n" not in str(error.value)
