"""What every subcommand shares: the usage error, quiet TensorFlow start-up, JSON output."""

import contextlib
import json
import os
import sys


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


@contextlib.contextmanager
def quiet_native_logs():
    """Hide the C++ start-up chatter TensorFlow prints before its logging is set up."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():
    """Import TensorFlow and probe its devices with the native chatter hidden; call before any model work."""
    with quiet_native_logs():
        import tensorflow

        tensorflow.config.list_physical_devices()  # probes CUDA now, while the chatter is hidden


def print_json(console, data):
    console.print_json(json.dumps(data))


def parse_runtimes(text):
    """`tf,onnx,litert` -> a tuple of the timing harness's runtime names; anything else is a UsageError."""
    from mobilenet_sep.measure import RUNTIMES

    runtimes = tuple(runtime.strip() for runtime in text.split(",") if runtime.strip())
    if not runtimes or any(runtime not in RUNTIMES for runtime in runtimes):
        raise UsageError(
            f"--runtimes takes a comma-separated list among {', '.join(RUNTIMES)}. Received: runtimes={text!r}"
        )
    return runtimes


def check_positive(args, *names):
    """Each named option that was given must be a positive int."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive int. Received: {name}={value}")
