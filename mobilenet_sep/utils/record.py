"""A stored result: figures with what made them (the command, the machine, the package versions, the date).

Every figure README quotes is rendered from one of these files (`benchmarks/results/*.json`, see
`benchmarks/render_readme.py`), so a figure can always be traced to the run that measured it and
the machine it ran on. A short run (fewer epochs or timed runs than the full one) says so in
`short_run`, so nobody mistakes it for the figure of record.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import sys

from mobilenet_sep.utils.files import write_atomically

PACKAGES = ("mobilenet-sep", "tensorflow", "keras", "numpy", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")
"""Packages whose versions a result records: what made and ran the models."""


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict:
    """{package: installed version or None}."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def cpu_model() -> str:
    """The processor's marketing name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int | None = None) -> dict:
    """The machine a figure was measured on: CPU model, cores, the threads the run used, OS, Python."""
    return {
        "cpu": cpu_model(),
        "cores": available_cores(),
        "threads": threads,
        # Other work on the machine slows timings down: a quiet machine reads near 0.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def result_record(figures: dict, *, command: str, threads: int | None = None, short_run: str | None = None) -> dict:
    """A result file's content: `figures` (JSON-ready) with the command, machine, versions and date.

    `short_run` is None for a run of record, else what was cut short ("3 epochs, 5 timed runs").
    """
    return {
        "command": command,
        "short_run": short_run,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(threads),
        "packages": package_versions(),
        "figures": figures,
    }


def script_command() -> str:
    """The command line that ran this Python script, as a user would type it: `python benchmarks/x.py --flag`."""
    return shlex.join(["python", *sys.argv])


def write_result(path: str | os.PathLike, record: dict) -> str:
    """Write a `result_record` as indented JSON, atomically; returns the path."""
    path = os.fspath(path)
    write_atomically({path: json.dumps(record, indent=2) + "\n"})
    return path


def read_result(path: str | os.PathLike) -> dict:
    """A result file as written by `write_result`."""
    with open(path) as file:
        return json.load(file)
