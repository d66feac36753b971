"""CLI fuzzing: every command fed random argument lists never ends in a traceback, exits 0 or 2 (with one
line on stderr for 2), and leaves no file behind.

Arguments are drawn from each command's own flags (read from the parser) and a pool of bad and good
values: non-numbers, NaN, infinities, zero and negative sizes, bools, unknown names, garbage, empty
and truncated model files, a folder named like a model, an output path whose parent is a file.
The work each command starts once its arguments are accepted (training, timing, exporting,
evaluating, profiling, the demo) is replaced by a stub that stops the run there: the fuzz checks
the command line, and the library's argument checks up to that point, in milliseconds per case.
"""

import argparse
import contextlib
import io
import os
import zipfile

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilenet_sep.cli import build_parser, main


class Accepted(Exception):
    """Raised by the stubs: the command accepted its arguments and would now do its work."""


STUBS = {
    "mobilenet_sep.train.engine": ["train"],
    "mobilenet_sep.demo": ["run_demo"],
    "mobilenet_sep.export.exporter": ["export_data", "export_model"],
    "mobilenet_sep.speed.compare": ["compare_layer", "compare_with_twin"],
    "mobilenet_sep.speed.per_layer": ["per_layer_of_spec", "per_layer_with_twin"],
    "mobilenet_sep.speed.measure": ["measure_file", "measure_model"],
    "mobilenet_sep.train.evaluate": ["evaluate"],
    "mobilenet_sep.profiler": ["profile"],
}
"""Module -> the functions where each command's work starts."""

NUMBERS = ["0", "1", "3", "-1", "2.5", "-0.5", "nan", "inf", "-inf", "1e309", "99999999999999999999", "true", "x", ""]
SIZES = ["32", "32x32", "160x128", "0x0", "-32x32", "1x1", "31x31", "32x", "x", "1e3x5", "nanxnan"]
NAMES = ["mobilenet_v1_0.25_128", "conv_mobilenet_v1_0.25_128", "pointwise_cnn", "mobilenet_v9", "", "*_224", "["]
FILES = ["garbage.keras", "empty.keras", "truncated.keras", "folder.keras", "absent.keras", "garbage.h5", "empty.h5"]
FILES += ["garbage.onnx", "empty.onnx", "garbage.tflite", "empty.tflite", "truncated.tflite", "garbage.toml"]
OUTPUTS = ["out.png", "afile/out.png", "absent/out.json", "folder.keras", "out.onnx", "out", "."]
DATA = ["digits", "digits:validation", "shapes", "folder:absent", "folder:afile", "tfds:nope", "tfds", "nope"]
DATA += ["modelnet40", "modelnet40:afile"]
RECIPES = ["digits", "shapes_pointwise", "nope", "training/nope.toml", "garbage.toml", "afile"]
SETTINGS = ["train.epochs=0", "train.epoch=3", "model.alpha=nan", "model.alpha=inf", "train.batch_size=true"]
SETTINGS += ["optimizer.learning_rate=-1", "model.input_shape=[16, 16, 3]", "nope", "model.classes=true", "x.y="]
SETTINGS += ['model.dropout="x"', 'data.augment="sideways"', "model.synchronized_batchnorm=3", "schedule.decay=1"]
LAYERS = ["12x12x3:k5:s1:valid:n256", "1x1x1:k1:s1:same:n1", "0x0x0:k0:s0:same:n0", "12x12x3:k99:s1:valid:n2", ":::"]
RUNTIMES = ["tf", "onnx,litert", "litert-int8", "nope", "", "tf,tf"]
POOL = sorted({*NUMBERS, *SIZES, *NAMES, *FILES, *OUTPUTS, *DATA, *RECIPES, *SETTINGS, *LAYERS, *RUNTIMES})
"""Every value; each flag draws from its own kind most of the time, from the whole pool otherwise."""

KINDS = {
    "model": NAMES + FILES,
    "pattern": NAMES,
    "dataset": DATA,
    "recipe": RECIPES,
    "set": SETTINGS,
    "size": SIZES,
    "layer": LAYERS,
    "runtimes": RUNTIMES,
    "data": DATA,
    "calibration_data": DATA,
    "test_dataset": DATA,
    "out": OUTPUTS,
    "plot": OUTPUTS,
    "record": OUTPUTS,
    "csv": OUTPUTS,
    "weights": ["imagenet", *FILES],
    "data_dir": OUTPUTS,
}


def _actions(command):
    """The command's positionals and required options (each given most of the time, so that the fuzz
    gets past them), and {option: (takes a value, its kind of values)} of every option."""
    subparsers = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    parser = subparsers.choices[command]
    usually = [action for action in parser._actions if not action.option_strings or action.required]
    options = {}
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            values = [str(choice) for choice in action.choices] if action.choices else KINDS.get(action.dest, NUMBERS)
            options[action.option_strings[-1]] = (action.nargs != 0, values)
    return usually, options


@st.composite
def argument_lists(draw, command):
    """`command` with random positionals, options and values, in a random order; now and then a stray token."""
    usually, options = _actions(command)

    def value(kind):
        return draw(st.sampled_from(kind) if draw(st.integers(0, 4)) else st.sampled_from(POOL))

    tokens = []
    for action in usually:
        if draw(st.integers(0, 5)):
            flag = action.option_strings[-1:] if action.option_strings else []
            tokens.append([*flag, value(options[flag[0]][1] if flag else KINDS.get(action.dest, NAMES))])
    for flag in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)):
        takes_value, kind = options[flag]
        tokens.append([flag, value(kind)] if takes_value else [flag])
    if not draw(st.integers(0, 7)):
        tokens.append([draw(st.sampled_from(["--nope", "-x", "--", "--json=3", "-h"]))])
    return [command, *[token for group in draw(st.permutations(tokens)) for token in group]]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder of bad inputs to point commands at: {path: bytes} of what it holds."""
    folder = tmp_path_factory.mktemp("fuzz")
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(folder / "real.keras")
    real = (folder / "real.keras").read_bytes()
    os.remove(folder / "real.keras")
    contents = {
        "garbage.keras": b"not a zip at all",
        "empty.keras": b"",
        "truncated.keras": real[: len(real) // 2],
        "garbage.h5": b"\x89HDF\r\n\x1a\n garbage",
        "empty.h5": b"",
        "garbage.onnx": b"\x08\x07 not a protobuf model",
        "empty.onnx": b"",
        "garbage.tflite": b"TFL3 garbage garbage garbage",
        "empty.tflite": b"",
        "truncated.tflite": b"\x1c\x00\x00\x00TFL3" + b"\x00" * 20,
        "garbage.toml": b"[model\nname = ",
        "afile": b"a file, not a folder",
    }
    for name, content in contents.items():
        (folder / name).write_bytes(content)
    (folder / "folder.keras").mkdir()
    assert not zipfile.is_zipfile(folder / "truncated.keras")
    return folder


def _files(folder):
    paths = (os.path.join(root, name) for root, _, names in os.walk(folder) for name in names)
    return sorted(os.path.relpath(path, folder) for path in paths)


def _run(argv, folder):
    """(exit code or "accepted", stderr) of `mobilenet-sep ARGV` run in `folder`; anything else escapes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except Accepted:
            code = "accepted"
        except SystemExit as exit_:  # argparse's --help
            code = exit_.code
    return code, err.getvalue()


def _fuzz(command, data, folder):
    before = _files(folder)
    argv = data.draw(argument_lists(command), label="argv")
    code, stderr = _run(argv, folder)
    assert code in (0, 2, "accepted"), (argv, code, stderr[-2000:])
    assert "Traceback" not in stderr, (argv, stderr[-2000:])
    if code == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, stderr)
    assert _files(folder) == before, argv  # nothing written, nothing left behind


@pytest.fixture
def stubbed(monkeypatch):
    import importlib

    def stop(*args, **kwargs):
        raise Accepted

    for module, names in STUBS.items():
        for name in names:
            monkeypatch.setattr(importlib.import_module(module), name, stop)
    # The process's TensorFlow threads stay as they are (a command sets them before its first op).
    measure = importlib.import_module("mobilenet_sep.speed.measure")
    monkeypatch.setattr(measure, "set_tensorflow_threads", lambda threads: None)


FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("command", ["zoo", "profile", "compare", "demo", "export", "benchmark", "train", "evaluate"])
@FUZZ
@given(data=st.data())
def test_random_argument_lists_end_in_exit_0_or_a_one_line_error(command, data, workspace, stubbed):
    _fuzz(command, data, workspace)


def test_the_stubs_stop_commands_that_would_work(workspace, stubbed):
    assert _run(["train", "digits"], workspace)[0] == "accepted"
    assert _run(["profile", "mobilenet_v1_0.25_128"], workspace)[0] == "accepted"
    code, stderr = _run(["profile", "mobilenet_v1_0.25_128", "--alpha", "nan"], workspace)
    assert code == 2 and "Received: alpha=nan" in stderr
