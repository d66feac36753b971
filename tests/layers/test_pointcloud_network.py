"""The point-cloud network on every backend and in exported files: TensorFlow eagerly and under XLA,
the numba query, JAX under jit (a fresh process) give the same logits and the same training losses,
and a trained network round-trips through .keras, SavedModel, ONNX and TFLite files."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import mobilenet_sep
from helpers import relative_error
from mobilenet_sep.zoo import PointwiseCNN

SMALL = {"input_shape": (32, 3), "classes": 4, "fc_units": 16, "classifier_activation": None}
STEPS = 4


def clouds_and_labels(count=8):
    rng = np.random.default_rng(7)
    return rng.uniform(-1, 1, size=(count, 32, 3)).astype("float32"), np.arange(count) % 4


def losses_of_training(model, clouds, labels, jit_compile):
    """Per-step losses of full-batch SGD on one batch (no dropout, no shuffling: deterministic)."""
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    history = model.fit(clouds, labels, batch_size=len(clouds), epochs=STEPS, shuffle=False, verbose=0)
    return np.array(history.history["loss"])


JAX_SCRIPT = textwrap.dedent(
    """
    import sys, jax, keras, numpy as np
    assert keras.backend.backend() == "jax"
    import mobilenet_sep
    sys.path[:0] = [sys.argv[3], sys.argv[3] + "/.."]  # this file and tests/helpers.py
    from test_pointcloud_network import clouds_and_labels, losses_of_training
    model = mobilenet_sep.load_model(sys.argv[1])
    clouds, labels = clouds_and_labels()
    variables = [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]
    logits = jax.jit(lambda x: model.stateless_call(*variables, x, training=False)[0])(clouds)
    losses = losses_of_training(model, clouds, labels, jit_compile=True)
    np.savez(sys.argv[2], logits=np.asarray(logits), losses=losses)
    """
)


@pytest.mark.slow
def test_network_gives_the_same_logits_and_losses_on_every_backend(tmp_path):
    model = PointwiseCNN(**SMALL, dropout=0.0)
    clouds, labels = clouds_and_labels()
    logits = model.predict(clouds, verbose=0)
    assert np.ptp(logits, axis=0).min() > 1e-3  # logits that differ between clouds
    path = tmp_path / "start.keras"
    model.save(path)

    import tensorflow as tf

    under_xla = tf.function(lambda x: model(x, training=False), jit_compile=True)(clouds).numpy()
    numba = PointwiseCNN(**SMALL, dropout=0.0, query="numba")
    numba.set_weights(model.get_weights())
    assert relative_error(under_xla, logits) <= 1e-5
    assert relative_error(numba.predict(clouds, verbose=0), logits) <= 1e-5

    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = tmp_path / "jax.npz"
    script = [sys.executable, "-c", JAX_SCRIPT, str(path), str(out), os.path.dirname(__file__)]
    result = subprocess.run(script, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    on_jax = np.load(out)
    assert relative_error(on_jax["logits"], logits) <= 1e-5

    trained = {"jax": on_jax["losses"]}
    for name, jit_compile in (("tf", False), ("tf-xla", True)):
        trained[name] = losses_of_training(mobilenet_sep.load_model(str(path)), clouds, labels, jit_compile)
    assert trained["tf"][-1] < 0.9 * trained["tf"][0]  # SGD lowers the loss...
    for name, losses in trained.items():  # ... the same way everywhere
        assert relative_error(losses, trained["tf"]) <= 1e-4, name


@pytest.mark.slow
def test_trained_network_round_trips_through_keras_savedmodel_onnx_and_tflite_files(tmp_path):
    import tensorflow as tf

    from mobilenet_sep.export.to_onnx import OnnxRunner, convert_to_onnx
    from mobilenet_sep.export.to_tflite import LiteRTRunner, convert_to_tflite

    model = PointwiseCNN(**SMALL)
    clouds, labels = clouds_and_labels()
    losses = losses_of_training(model, clouds, labels, jit_compile=False)
    assert losses[-1] < losses[0]
    expected = model.predict(clouds, verbose=0)
    model.save(tmp_path / "trained.keras")
    reloaded = keras.saving.load_model(tmp_path / "trained.keras", safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(clouds, verbose=0), expected)
    model.export(str(tmp_path / "saved_model"), verbose=False)
    saved = tf.saved_model.load(str(tmp_path / "saved_model"))  # held: its variables live as long as it does
    assert relative_error(saved.serve(tf.constant(clouds)).numpy(), expected) <= 1e-5
    assert relative_error(OnnxRunner(convert_to_onnx(model))(clouds), expected) <= 1e-5
    assert relative_error(LiteRTRunner(convert_to_tflite(model, batch_size=None))(clouds), expected) <= 1e-5
