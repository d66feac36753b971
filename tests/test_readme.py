"""Every command README.md shows is run here, in a short version where it is long.

The commands are read from README's ```bash blocks (the first block, set-up and tests, is what
.ci/run runs). A command README gains without a matching entry below fails
`test_every_readme_command_is_exercised`; each group then runs its commands in order, in a
temporary folder, through the CLI's `main`. Short versions only add options (fewer epochs,
steps or timed runs) or, where README downloads, name a local file instead.
"""

import re
import shlex
from pathlib import Path

import keras
import tensorflow_datasets as tfds
from PIL import Image

from helpers import write_legacy_h5
from mobilenet_sep.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
SHORT_TRAIN = ["--epochs", "1", "--set", "train.steps_per_epoch=2"]

COUNT = {
    'mobilenet-sep zoo "mobilenet_v1_*_224"': [],
    "mobilenet-sep profile mobilenet_v1_1.0_224": [],
    "mobilenet-sep profile mobilenet_v1_0.5_160 --size 160x128 --plot profile.png": [],
    "mobilenet-sep compare mobilenet_v1_1.0_224 --plot compare.png": ["--runtimes", "tf", "--repeats", "3"],
    "mobilenet-sep compare --layer 12x12x3:k5:s1:valid:n256": ["--repeats", "3"],
    "mobilenet-sep compare mobilenet_v1_1.0_224 --per-layer --plot roofline.png --csv layers.csv": [
        "--runtimes",
        "onnx",
        "--repeats",
        "3",
    ],
    "mobilenet-sep profile pointwise_cnn": [],
}
DIGITS = {  # in this order: the later commands use the model the first one trains
    "mobilenet-sep train training/digits.toml": ["--epochs", "2", "--set", "train.steps_per_epoch=4"],
    "mobilenet-sep evaluate runs/digits/final.keras digits --plot confusion.png": [],
    "mobilenet-sep export runs/digits/final.keras --format onnx": [],
    "mobilenet-sep export runs/digits/final.keras --format keras --fuse": [],
    "mobilenet-sep export runs/digits/final.keras --format tflite --quantize int8 --data digits": [],
    "mobilenet-sep benchmark runs/digits/final.keras --runtimes tf,onnx,litert,litert-int8": ["--repeats", "3"],
    "mobilenet-sep train training/digits.toml --strategy mirrored": [*SHORT_TRAIN, "--out", "runs/mirrored"],
}
OTHER_DATA = {
    "mobilenet-sep train training/cifar10.toml --download": [*SHORT_TRAIN, "--batch-size", "16"],  # tfds' mock data
    "mobilenet-sep train training/digits.toml --dataset folder:path/to/images --out runs/my_images": SHORT_TRAIN,
    "mobilenet-sep train training/flowers_finetune.toml --dataset folder:path/to/photos --weights imagenet "
    "--freeze-base": ["--epochs", "2", "--set", "train.steps_per_epoch=2"],
    "mobilenet-sep train training/shapes_pointwise.toml": SHORT_TRAIN,
}
OFFLINE = {"imagenet": "base.h5"}
"""Arguments that download, and the local file of the same layout the short version names instead."""
ELSEWHERE = {
    # Read from README and run by this test: two local processes, TF_CONFIG with local ports for the hosts.
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\' '
    "mobilenet-sep train training/digits.toml --strategy multi-worker": "train/test_distribute.py::"
    "test_readme_multi_worker_command_on_two_local_workers_equals_one_device",
}


def readme_commands():
    """The lines of README's ```bash blocks after the first (set-up) block."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    return [line.strip() for block in blocks[1:] for line in block.splitlines() if line.strip()]


def _run(commands, folder, monkeypatch, capsys):
    """Run README commands in `folder`, where `training/` is the repository's, as in a checkout."""
    (folder / "training").symlink_to(README.parent / "training")
    monkeypatch.chdir(folder)
    for command, extra in commands.items():
        arguments = [OFFLINE.get(argument, argument) for argument in shlex.split(command)[1:]] + extra
        code = main(arguments)
        output = capsys.readouterr()
        assert code == 0, f"{command} {' '.join(extra)} failed: {output.err[-2000:]}"


def _images(folder, classes, count=20, size=(40, 36)):
    for index, name in enumerate(classes):
        for number in range(count):
            colour = tuple((37 * (index + 1) * (channel + 1) + 5 * number) % 256 for channel in range(3))
            path = folder / name / f"{number}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", size, colour).save(path)


def test_every_readme_command_is_exercised():
    shown = readme_commands()
    assert shown and len(shown) == len(set(shown))
    assert set(shown) == set(COUNT) | set(DIGITS) | set(OTHER_DATA) | set(ELSEWHERE)
    for command, test in ELSEWHERE.items():
        path, _, name = test.partition("::")
        source = (Path(__file__).parent / path).read_text()
        assert f"def {name}(" in source and "readme_commands()" in source and "multi-worker" in command


def test_count_and_compare_commands(tmp_path, monkeypatch, capsys):
    _run(COUNT, tmp_path, monkeypatch, capsys)
    assert (tmp_path / "profile.png").stat().st_size and (tmp_path / "compare.png").stat().st_size


def test_digits_train_evaluate_export_benchmark_and_mirrored(tmp_path, monkeypatch, capsys):
    _run(DIGITS, tmp_path, monkeypatch, capsys)
    for name in (
        "runs/digits/final.keras",
        "confusion.png",
        "mobilenet_v1_0.5_32.onnx",
        "mobilenet_v1_0.5_32_int8.tflite",
        "runs/mirrored/metrics.json",
    ):
        assert (tmp_path / name).is_file(), name


def test_other_data_fine_tuning_and_point_clouds(tmp_path, monkeypatch, capsys):
    _images(tmp_path / "path/to/images", ["zero", "one", "two"])
    _images(tmp_path / "path/to/photos", ["daisy", "rose"])
    base = keras.applications.MobileNet(weights=None, alpha=0.5, input_shape=(160, 160, 3), include_top=False)
    write_legacy_h5(base, tmp_path / "base.h5")
    with tfds.testing.mock_data(num_examples=64):
        _run(OTHER_DATA, tmp_path, monkeypatch, capsys)
    for run in ("cifar10", "my_images", "flowers_finetune", "shapes_pointwise"):
        assert (tmp_path / "runs" / run / "final.keras").is_file(), run
