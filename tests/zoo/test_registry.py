"""The zoo: every name builds and runs, names are data with their published figures, and one loader."""

import re
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import mobilenet_sep
from helpers import randomize_batchnorm
from mobilenet_sep import zoo

ALL_NAMES = zoo.list_models()
MOBILENET_NAMES = zoo.list_models("*mobilenet_v1_*")


def test_catalogue_has_every_width_and_resolution_and_their_twins():
    expected = {
        f"{prefix}mobilenet_v1_{alpha}_{size}"
        for prefix in ("", "conv_")
        for alpha in ("1.0", "0.75", "0.5", "0.25")
        for size in (224, 192, 160, 128)
    }
    assert expected <= set(ALL_NAMES)


def test_list_models_globs_in_natural_order():
    assert mobilenet_sep.list_models("mobilenet_v1_*_224") == [
        "mobilenet_v1_0.25_224",
        "mobilenet_v1_0.5_224",
        "mobilenet_v1_0.75_224",
        "mobilenet_v1_1.0_224",
    ]
    assert mobilenet_sep.list_models("mobilenet_v1_1.0_*") == [
        "mobilenet_v1_1.0_128",
        "mobilenet_v1_1.0_160",
        "mobilenet_v1_1.0_192",
        "mobilenet_v1_1.0_224",
    ]
    assert mobilenet_sep.list_models("no_such_*") == []


def test_every_name_is_a_mobilenet_or_the_point_cloud_network():
    assert set(ALL_NAMES) == set(MOBILENET_NAMES) | {"pointwise_cnn"}


@pytest.mark.parametrize("name", MOBILENET_NAMES)
def test_every_mobilenet_builds_and_runs_at_a_small_input(name):
    model = mobilenet_sep.create_model(name, input_shape=(32, 32, 3), classes=4)
    output = model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0)
    assert output.shape == (1, 4)
    np.testing.assert_allclose(output.sum(), 1.0, rtol=1e-5)


def test_point_cloud_network_builds_and_runs_at_a_small_cloud():
    model = mobilenet_sep.create_model("pointwise_cnn", input_shape=(32, 3), classes=4)
    output = model.predict(np.random.default_rng(0).uniform(-1, 1, (1, 32, 3)).astype("float32"), verbose=0)
    assert output.shape == (1, 4)
    np.testing.assert_allclose(output.sum(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", MOBILENET_NAMES)
def test_entry_config_agrees_with_its_name_and_cites_sources(name):
    entry = zoo.get_entry(name)
    alpha, size = re.fullmatch(r"(?:conv_)?mobilenet_v1_([\d.]+)_(\d+)", name).groups()
    assert entry.config["alpha"] == float(alpha)
    assert entry.config["input_shape"] == [int(size), int(size), 3]
    assert entry.config.get("separable", True) == (not name.startswith("conv_"))
    for source, figures in entry.published.items():
        assert source in entry.sources
        assert {"mult_adds_millions", "params_millions", "top1"} <= set(figures)


def test_published_reference_numbers():
    paper = {
        name: zoo.get_entry(name).published["paper"]["mult_adds_millions"]
        for name in (
            "mobilenet_v1_1.0_224",
            "mobilenet_v1_1.0_192",
            "mobilenet_v1_1.0_160",
            "mobilenet_v1_1.0_128",
            "mobilenet_v1_0.75_224",
            "mobilenet_v1_0.5_224",
            "mobilenet_v1_0.25_224",
        )
    }
    assert list(paper.values()) == [569, 418, 290, 186, 325, 149, 41]
    assert zoo.get_entry("mobilenet_v1_1.0_224").published["tf_slim"]["top1"] == 70.9
    assert zoo.get_entry("conv_mobilenet_v1_1.0_224").published["paper"]["params_millions"] == 29.3


def test_created_models_carry_their_zoo_name():
    for name in ("mobilenet_v1_1.0_224", "mobilenet_v1_0.25_128", "conv_mobilenet_v1_0.5_160"):
        assert mobilenet_sep.create_model(name).name == name


def test_overrides_reach_the_builder():
    model = mobilenet_sep.create_model("mobilenet_v1_0.25_128", classes=3, include_top=True, dropout=0.2)
    assert model.output.shape == (None, 3)
    assert model.get_layer("dropout").rate == 0.2


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"Did you mean: mobilenet_v1_1\.0_224.*Received: name='mobilenet_v1_1.0_225'"):
        mobilenet_sep.create_model("mobilenet_v1_1.0_225")
    with pytest.raises(ValueError, match="Received: name='resnet50'"):
        mobilenet_sep.create_model("resnet50")


def test_full_model_round_trips_through_a_keras_file(tmp_path, rng):
    model = randomize_batchnorm(mobilenet_sep.create_model("mobilenet_v1_0.25_128", classifier_activation=None))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = mobilenet_sep.load_model(str(path))
    x = rng.uniform(-1, 1, size=(2, 128, 128, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.name == model.name


def test_load_model_refuses_bad_files(tmp_path):
    with pytest.raises(ValueError, match="No such model file"):
        mobilenet_sep.load_model(str(tmp_path / "missing.keras"))
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="Cannot load .*corrupt.keras"):
        mobilenet_sep.load_model(str(corrupt))
    inputs = keras.Input((4,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    unsafe_path = tmp_path / "unsafe.keras"
    unsafe.save(unsafe_path)
    with pytest.raises(ValueError, match="Cannot load .*unsafe.keras.*(safe_mode|unsafe|lambda)"):
        mobilenet_sep.load_model(str(unsafe_path))
    with zipfile.ZipFile(unsafe_path) as archive:  # it is a real archive: only safe mode refused it
        assert "config.json" in archive.namelist()


def test_saved_point_cloud_model_loads_in_a_fresh_process(tmp_path):
    """load_model registers every builder's layers before deserializing, not only the MobileNet ones."""
    path = tmp_path / "points.keras"
    mobilenet_sep.create_model("pointwise_cnn", input_shape=(32, 3), classes=3).save(path)
    script = f"import mobilenet_sep; print(mobilenet_sep.load_model({str(path)!r}).output_shape)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("(None, 3)")


def test_overrides_the_builder_does_not_take_name_the_argument():
    with pytest.raises(ValueError, match=r"PointwiseCNN, which takes no such argument .*Received: num_points=64"):
        mobilenet_sep.create_model("pointwise_cnn", num_points=64)
    with pytest.raises(ValueError, match=r"must be \(points, 3\).*Received: input_shape=\(64, 64, 3\)"):
        mobilenet_sep.create_model("pointwise_cnn", input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="Received: alhpa=0.5"):
        mobilenet_sep.create_model("mobilenet_v1_1.0_224", alhpa=0.5)
