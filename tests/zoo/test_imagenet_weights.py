"""ImageNet weight port: keras.applications files in the legacy HDF5 layout load by name with identical logits."""

import h5py
import keras
import numpy as np
import pytest

from helpers import randomize_batchnorm, write_legacy_h5
from mobilenet_sep import MobileNetV1
from mobilenet_sep.zoo import imagenet_weights as weight_files


def _randomized_keras_mobilenet(alpha, size, include_top, seed):
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNet(
        weights=None, alpha=alpha, input_shape=(size, size, 3), include_top=include_top, classifier_activation=None
    )
    return randomize_batchnorm(model, seed)


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("include_top", [True, False])
def test_ported_weights_give_identical_logits(alpha, include_top, tmp_path, rng):
    size = 96
    reference = _randomized_keras_mobilenet(alpha, size, include_top, seed=int(alpha * 100))
    path = write_legacy_h5(reference, tmp_path / "mobilenet.h5")
    with h5py.File(path, "r") as file:
        assert "layer_names" in file.attrs  # the legacy layout, not Keras 3's .weights.h5
    ours = MobileNetV1(
        alpha=alpha, input_shape=(size, size, 3), include_top=include_top, classifier_activation=None, weights=path
    )
    x = rng.uniform(-1, 1, size=(2, size, size, 3)).astype("float32")
    expected = reference.predict(x, verbose=0)
    assert np.std(expected) > 0.05  # the statistics make the output non-trivial
    assert np.max(np.abs(ours.predict(x, verbose=0) - expected)) <= 1e-5
    # keras.applications reads the same file back: the test file is faithful to the published layout.
    reloaded = keras.applications.MobileNet(
        weights=path, alpha=alpha, input_shape=(size, size, 3), include_top=include_top, classifier_activation=None
    )
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)


def test_imagenet_fetches_the_keras_file_and_loads_it(tmp_path, monkeypatch, rng):
    reference = _randomized_keras_mobilenet(0.25, 128, include_top=False, seed=7)
    path = write_legacy_h5(reference, tmp_path / "weights.h5")
    requests = []

    def fake_get_file(file_name, origin, cache_subdir):
        requests.append((file_name, origin, cache_subdir))
        return path

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    ours = MobileNetV1(alpha=0.25, input_shape=(128, 128, 3), include_top=False, weights="imagenet")
    assert requests == [
        ("mobilenet_2_5_128_tf_no_top.h5", weight_files.BASE_URL + "mobilenet_2_5_128_tf_no_top.h5", "models")
    ]
    x = rng.uniform(-1, 1, size=(1, 128, 128, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-5)

    # The 0.25 file the fake returns does not fit a 0.5 model: the shape check refuses it after the warning.
    with pytest.warns(UserWarning, match="loading the 224x224 weights"), pytest.raises(ValueError):
        MobileNetV1(alpha=0.5, input_shape=(96, 80, 3), include_top=False, weights="imagenet")
    assert requests[-1][0] == "mobilenet_5_0_224_tf_no_top.h5"


def test_offline_imagenet_is_one_line_naming_the_file(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ValueError) as error:
        MobileNetV1(weights="imagenet")
    message = str(error.value)
    assert "\n" not in message
    assert "mobilenet_1_0_224_tf.h5" in message and "weights='/path/to/mobilenet_1_0_224_tf.h5'" in message


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"alpha": 0.6}, "alpha=0.6"),
        ({"depth_multiplier": 2}, "depth_multiplier=2"),
        ({"separable": False}, "separable=False"),
        ({"classes": 10}, "classes=10"),
        ({"input_shape": (224, 224, 1)}, r"input_shape=\(224, 224, 1\)"),
    ],
)
def test_configs_without_published_weights_fail_fast(arguments, message, monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: pytest.fail("must fail before fetching"))
    with pytest.raises(ValueError, match="Received: " + message):
        MobileNetV1(weights="imagenet", **arguments)


def test_mismatched_file_names_the_layers(tmp_path):
    path = write_legacy_h5(_randomized_keras_mobilenet(0.25, 96, include_top=True, seed=1), tmp_path / "top.h5")
    with pytest.raises(ValueError, match=r"layers the model lacks \['conv_preds'\]"):
        MobileNetV1(alpha=0.25, input_shape=(96, 96, 3), include_top=False, weights=path)
    with pytest.raises(ValueError, match="Layer 'conv1' expects weight shapes"):
        MobileNetV1(alpha=0.5, input_shape=(96, 96, 3), weights=path)
    not_legacy = tmp_path / "model.weights.h5"
    MobileNetV1(alpha=0.25, input_shape=(96, 96, 3)).save_weights(not_legacy)
    with pytest.raises(ValueError, match="not in Keras' legacy HDF5 weights layout"):
        MobileNetV1(alpha=0.25, input_shape=(96, 96, 3), weights=str(not_legacy))
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="Cannot read .* as HDF5"):
        MobileNetV1(alpha=0.25, input_shape=(96, 96, 3), weights=str(garbage))
