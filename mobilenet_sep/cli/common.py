"""What every subcommand shares at run time: the usage error, quiet TensorFlow start-up, JSON output."""

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
