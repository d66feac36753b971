"""Bad input, everywhere: every public function turns it into a one-line ValueError naming the argument
and the value received, every command into one line on stderr and exit code 2, and nothing is left
behind. Kinds: non-finite or non-numeric numbers, bools where ints are meant, zero or negative sizes,
unknown recipe tables and keys and wrongly typed values, garbage, empty and truncated model files for
every command that reads one, output paths through a file, point clouds with NaN or infinite
coordinates. (Image files of every kind: tests/data/test_images.py; random argument lists:
tests/cli/test_fuzz.py.)
"""

import contextlib
import io
import os

import h5py
import numpy as np
import pytest

import mobilenet_sep as ms
from mobilenet_sep.cli import main
from mobilenet_sep.data import DataOptions, load_dataset
from mobilenet_sep.speed import measure
from mobilenet_sep.speed.compare import LayerSpec
from mobilenet_sep.train.recipe import apply_override, check_recipe

NAN, INF = float("nan"), float("inf")


def _tiny(**overrides):
    return ms.MobileNetV1(**{"input_shape": (32, 32, 3), "alpha": 0.25, "classes": 10, **overrides})


def _digits(**options):
    settings = {"split": "test", "input_shape": (32, 32, 3), "batch_size": 8, **options}
    return load_dataset("digits", DataOptions(**settings))


FILES = {
    "garbage.keras": b"not a zip archive",
    "empty.keras": b"",
    "truncated.keras": b"PK\x03\x04 the first bytes of a zip archive",
    "garbage.h5": b"\x89HDF\r\n\x1a\n garbage",
    "empty.h5": b"",
    "garbage.onnx": b"\x08\x07 not a protobuf model",
    "empty.onnx": b"",
    "garbage.tflite": b"TFL3 not a flatbuffer",
    "empty.tflite": b"",
    "truncated.tflite": b"\x1c\x00\x00\x00TFL3" + b"\x00" * 20,
    "afile": b"a file, not a folder",
}
MODEL_FILES = [name for name in FILES if name != "afile"] + ["folder.keras"]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "folder.keras").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


LIBRARY = {
    "non-finite or non-numeric numbers": [
        (lambda: _tiny(alpha=INF), "alpha=inf"),
        (lambda: _tiny(alpha=NAN), "alpha=nan"),
        (lambda: _tiny(alpha="x"), "alpha='x'"),
        (lambda: _tiny(alpha=1e20), "alpha=1e+20"),  # would ask for impossible kernels
        (lambda: _tiny(dropout="x"), "dropout='x'"),
        (lambda: _tiny(dropout=NAN), "dropout=nan"),
        (lambda: _tiny(batchnorm_momentum=NAN), "batchnorm_momentum=nan"),
        (lambda: ms.PointwiseConv3D(4, voxel_size=NAN), "voxel_size=nan"),
        (lambda: ms.PointwiseConv3D(4, voxel_size=INF), "voxel_size=inf"),
        (lambda: ms.PointwiseConv3D(4, voxel_size="x"), "voxel_size='x'"),
        (lambda: ms.PointwiseCNN(input_shape=(64, 3), voxel_size=NAN), "voxel_size=nan"),
        (lambda: check_recipe({"optimizer": {"learning_rate": NAN}}), "optimizer.learning_rate=nan"),
        (lambda: check_recipe({"optimizer": {"learning_rate": INF}}), "optimizer.learning_rate=inf"),
        (lambda: check_recipe({"optimizer": {"learning_rate": "x"}}), "optimizer.learning_rate='x'"),
    ],
    "bools where ints are meant": [
        (lambda: _tiny(classes=True), "classes=True"),
        (lambda: _tiny(depth_multiplier=True), "depth_multiplier=True"),
        (lambda: _tiny(input_shape=(True, 32, 3)), "input_shape=(True, 32, 3)"),
        (lambda: _tiny(synchronized_batchnorm=1), "synchronized_batchnorm=1"),  # and an int where a bool is
        (lambda: ms.PointwiseConv(True), "filters=True"),
        (lambda: ms.DepthwiseConv(strides=True), "strides=True"),
        (lambda: ms.PointwiseCNN(input_shape=(64, 3), classes=True), "classes=True"),
        (lambda: _digits(batch_size=True), "batch_size=True"),
        (lambda: check_recipe({"train": {"epochs": True}}), "train.epochs=True"),
        (lambda: measure.measure_file("garbage.onnx", repeats=True), "repeats=True"),
    ],
    "zero or negative sizes": [
        (lambda: _tiny(input_shape=(0, 0, 3)), "input_shape=(0, 0, 3)"),
        (lambda: _tiny(input_shape=(-32, 32, 3)), "input_shape=(-32, 32, 3)"),
        (lambda: _tiny(classes=0), "classes=0"),
        (lambda: _tiny(min_depth=0), "min_depth=0"),
        (lambda: ms.DepthwiseConv(kernel_size=0), "kernel_size=0"),
        (lambda: ms.DepthwiseConv(depth_multiplier=-1), "depth_multiplier=-1"),
        (lambda: ms.PointwiseConv(0), "filters=0"),
        (lambda: ms.PointwiseConv3D(4, voxel_size=0), "voxel_size=0"),
        (lambda: ms.PointwiseCNN(input_shape=(0, 3)), "input_shape=(0, 3)"),
        (lambda: _digits(batch_size=0), "batch_size=0"),
        (lambda: _digits(input_shape=(0, 32, 3)), "input_shape=(0, 32, 3)"),
        (lambda: check_recipe({"train": {"batch_size": -1}}), "train.batch_size=-1"),
        (lambda: LayerSpec.parse("0x0x0:k0:s0:same:n0"), "layer='0x0x0:k0:s0:same:n0'"),
        (lambda: measure.measure_file("garbage.onnx", repeats=0), "repeats=0"),
    ],
    "unknown recipe tables and keys, wrongly typed values": [
        (lambda: check_recipe({"modle": {}}), "key='modle'"),
        (lambda: check_recipe({"train": {"epoch": 3}}), "key='train.epoch'"),
        (lambda: check_recipe({"train": {"epochs": "3"}}), "train.epochs='3'"),
        (lambda: check_recipe({"train": [1]}), "train=[1]"),
        (lambda: check_recipe({"data": {"download": "yes"}}), "data.download='yes'"),
        (lambda: apply_override({}, "train.epochs"), "set='train.epochs'"),
        (lambda: ms.create_model("mobilenet_v1_0.25_128", alhpa=0.5), "alhpa=0.5"),
    ],
    "garbage, empty and truncated model files": [
        *[(lambda name=name: ms.load_model(name), f"model='{name}'") for name in MODEL_FILES],
        *[(lambda name=name: measure.measure_file(name), f"path='{name}'") for name in MODEL_FILES if "." in name],
        *[(lambda name=name: _tiny(weights=name), f"weights='{name}'") for name in ("garbage.h5", "empty.h5")],
    ],
    "output paths through a file": [
        (lambda: ms.export_model(_tiny(), "afile/model.onnx", "onnx"), "out='afile/model.onnx'"),
    ],
}


@pytest.mark.parametrize(
    "call,received",
    [
        pytest.param(call, received, id=f"{kind}: {received}")
        for kind, cases in LIBRARY.items()
        for call, received in cases
    ],
)
def test_library_bad_input_is_a_one_line_value_error_naming_argument_and_value(call, received, workspace):
    before = sorted(os.listdir(workspace))
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message and f"Received: {received}" in message, message
    assert sorted(os.listdir(workspace)) == before


def test_point_clouds_with_nan_or_infinite_coordinates_are_refused_and_tiny_ones_work(workspace):
    for bad in (NAN, INF, -INF):
        points = np.zeros((1, 3, 3), "float32")
        points[0, 1, 0] = bad
        with pytest.raises(ValueError, match=r"must be finite. Received: points\[0, 1\]"):
            ms.PointwiseConv3D(4, voxel_size=0.1)([points, points])
    rng = np.random.default_rng(0)
    for count in (0, 1):  # an empty cloud and a cloud of one point: an output of the right shape
        points = rng.normal(size=(2, count, 3)).astype("float32")
        outputs = np.asarray(ms.PointwiseConv3D(4, voxel_size=0.1)([points, points]))
        assert outputs.shape == (2, count, 4) and np.isfinite(outputs).all()
    folder = workspace / "modelnet"
    folder.mkdir()
    clouds = rng.uniform(-1, 1, (3, 16, 3)).astype("float32")
    clouds[2, 5, 1] = NAN
    with h5py.File(folder / "ply_data_train0.h5", "w") as file:
        file["data"], file["label"] = clouds, np.zeros((3, 1), "uint8")
    with pytest.raises(ValueError, match=r"1 cloud\(s\) with NaN or infinite coordinates, the first at index 2"):
        load_dataset(f"modelnet40:{folder}", DataOptions("train", (16, 3), 2))
    with h5py.File(folder / "ply_data_train0.h5", "w") as file:  # empty clouds
        file["data"], file["label"] = np.zeros((3, 0, 3), "float32"), np.zeros((3, 1), "uint8")
    with pytest.raises(ValueError, match=r"hold 0 points per cloud. Received: input_shape=\(16, 3\)"):
        load_dataset(f"modelnet40:{folder}", DataOptions("train", (16, 3), 2))


def _commands_reading(name):
    """Every command that reads a model file, given `name`, and what its error must name."""
    exported = name.endswith((".onnx", ".tflite"))
    return [
        (["profile", name], "model"),
        (["compare", name, "--runtimes", "tf", "--repeats", "1"], "model"),
        (["export", name, "--format", "onnx", "--out", "out.onnx"], "model"),
        (["benchmark", name, "--repeats", "1"], "path" if exported else "model"),
        (["evaluate", name, "digits"], "model"),
    ]


CLI = {
    "garbage, empty and truncated model files": [
        (argv, f"Received: {argument}='{name}'") for name in MODEL_FILES for argv, argument in _commands_reading(name)
    ]
    + [  # fine-tuning's base weights
        (["train", "digits", "--weights", name, "--out", "run"], f"weights='{name}'")
        for name in ("garbage.h5", "empty.h5")
    ],
    "output paths through a file": [
        (["profile", "mobilenet_v1_0.25_128", "--plot", "afile/p.png"], "plot='afile/p.png'"),
        (["compare", "mobilenet_v1_0.25_128", "--plot", "afile/c.png"], "plot='afile/c.png'"),
        (["evaluate", "mobilenet_v1_0.25_128", "digits", "--plot", "afile/e.png"], "plot='afile/e.png'"),
        (["export", "mobilenet_v1_0.25_128", "--format", "onnx", "--out", "afile/m.onnx"], "out='afile/m.onnx'"),
        (["demo", "--record", "afile/r.json"], "record='afile/r.json'"),
        (["train", "digits", "--out", "afile/run"], "out='afile/run'"),
    ],
    "non-finite or non-numeric numbers": [
        (["profile", "mobilenet_v1_0.25_128", "--alpha", "nan"], "alpha=nan"),
        (["profile", "mobilenet_v1_0.25_128", "--alpha", "inf"], "alpha=inf"),
        (["profile", "mobilenet_v1_0.25_128", "--alpha", "1e20"], "alpha=1e+20"),
        (["profile", "mobilenet_v1_0.25_128", "--alpha", "x"], "invalid float value: 'x'"),
        (["train", "digits", "--learning-rate", "nan"], "optimizer.learning_rate=nan"),
        (["train", "digits", "--learning-rate", "inf"], "optimizer.learning_rate=inf"),
        (["train", "digits", "--set", 'model.dropout="x"'], "dropout='x'"),
        (["train", "shapes_pointwise", "--set", "model.voxel_size=nan"], "model.voxel_size=nan"),
    ],
    "bools where ints are meant": [
        (["train", "digits", "--set", "train.batch_size=true"], "train.batch_size=True"),
        (["train", "digits", "--set", "model.classes=true", "--out", "run"], "classes=True"),
        (["train", "digits", "--epochs", "true"], "invalid int value: 'true'"),
    ],
    "zero or negative sizes": [
        (["profile", "mobilenet_v1_0.25_128", "--size", "0x0"], "input_shape=(0, 0, 3)"),
        (["profile", "mobilenet_v1_0.25_128", "--size", "-32x32"], "argument --size"),  # argparse: an option
        (["compare", "--layer", "0x0x0:k0:s0:same:n0"], "layer='0x0x0:k0:s0:same:n0'"),
        (["train", "digits", "--batch-size", "0"], "train.batch_size=0"),
        (["train", "digits", "--epochs", "-1"], "train.epochs=-1"),
        (["evaluate", "mobilenet_v1_0.25_128", "digits", "--batch-size", "0"], "batch_size=0"),
        (["benchmark", "mobilenet_v1_0.25_128", "--repeats", "0"], "repeats=0"),
    ],
    "unknown recipe tables and keys, wrongly typed values": [
        (["train", "digits", "--set", "modle.alpha=1"], "key='modle'"),
        (["train", "digits", "--set", "train.epoch=3"], "key='train.epoch'"),
        (["train", "digits", "--set", 'train.epochs="3"'], "train.epochs='3'"),
        (["train", "digits", "--set", "train.epochs"], "set='train.epochs'"),
        (["train", "nope"], "recipe='nope'"),
    ],
}


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


@pytest.mark.parametrize(
    "argv,received",
    [
        pytest.param(argv, received, id=f"{kind}: {' '.join(argv)}")
        for kind, cases in CLI.items()
        for argv, received in cases
    ],
)
def test_cli_bad_input_is_one_line_exit_2_naming_argument_and_value(argv, received, workspace):
    before = sorted(os.listdir(workspace))
    code, stderr = _run(argv)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert received in lines[0] and "Traceback" not in stderr, lines[0]
    assert sorted(os.listdir(workspace)) == before
