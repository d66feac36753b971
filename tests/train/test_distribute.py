"""Strategies by name, and distributed runs equal to one device: MirroredStrategy on 2 logical CPUs and
README's multi-worker command in two local processes give the weights of one device with the same
global batch (synchronized BatchNorm; no dropout, whose masks differ between devices).

The runs compute in float64. In float32 this network's gradient on the digits at initialization
carries about 10% of float noise (on one device, merely reordering the batch moves some gradients
by 8%: near-constant images give BatchNorm layers tiny variances), so no split of a batch between
devices could match to 1e-4. In float64 that noise is ~1e-13 and one device, two replicas and two
workers agree to far below 1e-4, while BatchNorm without synchronization differs by O(1).
"""

import json
import os
import shlex
import socket
from pathlib import Path

import pytest
import tensorflow as tf
from test_readme import readme_commands

from helpers import relative_error, start_warm_process
from mobilenet_sep import zoo
from mobilenet_sep.train import run_folder
from mobilenet_sep.train.distribute import make_strategy, worker_id

REPOSITORY = Path(__file__).resolve().parents[2]
SHORT = ["--epochs", "1", "--json", "--set", "train.steps_per_epoch=3"]
SHORT += ["--set", "model.synchronized_batchnorm=true", "--set", "model.dropout=0"]
"""Added to README's digits command: 3 steps of the global batch of 32, BatchNorm over the global batch."""
TOLERANCE = 1e-4
"""Relative difference allowed between a distributed run's weights and one device's (float sums in another order)."""


def test_default_strategy_is_tensorflows():
    strategy = make_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1 and worker_id(strategy) == "local"
    assert strategy.extended.should_checkpoint


def test_bad_names_and_missing_cluster_are_one_line_errors(monkeypatch):
    with pytest.raises(ValueError, match="Received: strategy='tpu'"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG.*Received: TF_CONFIG=None"):
        make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}, "task": {}}')
    with pytest.raises(ValueError, match="names no workers"):
        make_strategy("multi-worker")


RUN = """
import os

import keras

import tensorflow as tf

keras.config.set_floatx("float64")  # see the module docstring
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})  # a faster start, in every run alike
if logical_cpus:

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
if tf_config:
    os.environ["TF_CONFIG"] = tf_config
os.chdir(folder)
from mobilenet_sep.cli import main

raise SystemExit(main(arguments))
"""


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def readme_multi_worker_command():
    """README's multi-worker line: (its TF_CONFIG as a dict, the mobilenet-sep arguments after it)."""
    line = next(command for command in readme_commands() if "--strategy multi-worker" in command)
    assignment, program, *arguments = shlex.split(line)
    name, _, value = assignment.partition("=")
    assert (name, program) == ("TF_CONFIG", "mobilenet-sep"), line
    return json.loads(value), arguments


def _start(tmp_path, name, arguments, logical_cpus=0, tf_config=None):
    arguments = [*arguments, *SHORT, "--out", str(tmp_path / name)]
    names = {"arguments": arguments, "logical_cpus": logical_cpus, "tf_config": tf_config, "folder": str(REPOSITORY)}
    return name, start_warm_process(RUN, tmp_path / f"{name}.log", **names)


def _run_together(tmp_path, runs):
    """Start the (name, arguments, options) runs at once, wait for all; their metrics (from --json)."""
    started = [_start(tmp_path, name, arguments, **options) for name, arguments, options in runs]
    for name, process in started:
        process.join(timeout=400)
        if process.is_alive():
            process.kill()
        assert process.exitcode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    metrics = {}
    for name, _ in started:
        log = (tmp_path / f"{name}.log").read_text()
        # metrics.json on stdout after the progress lines (TensorFlow may log after it)
        metrics[name] = json.JSONDecoder().raw_decode(log, log.index("\n{") + 1)[0]
    return metrics


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One device, 2 mirrored logical CPUs, then README's command on 2 local workers: their folder, {name: metrics}."""
    tmp_path = tmp_path_factory.mktemp("distributed")
    config, readme_arguments = readme_multi_worker_command()
    single = [argument for argument in readme_arguments if argument not in ("--strategy", "multi-worker")]
    metrics = _run_together(
        tmp_path, [("one_device", single, {}), ("mirrored", [*single, "--strategy", "mirrored"], {"logical_cpus": 2})]
    )
    # The workers run alone (on a busy machine they could miss each other's heartbeats), on local ports
    # in place of README's host names.
    count = len(config["cluster"]["worker"])
    config["cluster"]["worker"] = [f"localhost:{port}" for port in _free_ports(count)]
    tasks = [json.dumps({**config, "task": {**config["task"], "index": index}}) for index in range(count)]
    workers = [(f"worker{index}", readme_arguments, {"tf_config": task}) for index, task in enumerate(tasks)]
    return tmp_path, {**metrics, **_run_together(tmp_path, workers)}


def _max_relative_difference(run, reference):
    weights = zoo.load_model(str(run / run_folder.FINAL)).get_weights()
    expected = zoo.load_model(str(reference / run_folder.FINAL)).get_weights()
    return max(relative_error(got, want) for got, want in zip(weights, expected, strict=True))


def _losses(metrics):
    """Training and test losses of every epoch, and the final test loss."""
    epochs = [value for record in metrics["history"] for value in (record["loss"], record["test_loss"])]
    return [*epochs, metrics["loss"]]


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_equals_one_device(runs):
    folder, metrics = runs
    assert metrics["mirrored"]["replicas"] == 2 and metrics["one_device"]["replicas"] == 1
    assert _max_relative_difference(folder / "mirrored", folder / "one_device") <= TOLERANCE
    assert _losses(metrics["mirrored"]) == pytest.approx(_losses(metrics["one_device"]), rel=TOLERANCE)
    assert metrics["mirrored"]["confusion_matrix"] == metrics["one_device"]["confusion_matrix"]


@pytest.mark.slow
def test_readme_multi_worker_command_on_two_local_workers_equals_one_device(runs):
    folder, metrics = runs
    chief, other = metrics["worker0"], metrics["worker1"]
    assert chief["replicas"] == 2 and _losses(other) == _losses(chief)  # both workers measured the same
    written = run_folder.read_json(str(folder / "worker0" / run_folder.METRICS))
    assert written["history"] == chief["history"]  # the chief wrote the files, in its folder only
    assert not os.path.exists(folder / "worker1" / run_folder.METRICS)
    assert not [name for name in os.listdir(folder / "worker1") if name.startswith(".worker")]  # scratch removed
    assert _max_relative_difference(folder / "worker0", folder / "one_device") <= TOLERANCE
    assert _losses(chief) == pytest.approx(_losses(metrics["one_device"]), rel=TOLERANCE)
    assert chief["confusion_matrix"] == metrics["one_device"]["confusion_matrix"]
