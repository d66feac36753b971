"""Atomic file writes: a path holds either its old content or the whole new one, never a partial file.

Every writer in the package (exports, metadata, plots, CSV, checkpoints' .keras
files, metrics) goes through here: content is written under a temporary name in
the destination folder and renamed into place only once complete.
"""

import contextlib
import os
import tempfile


def check_output_path(path, argument="out"):
    """Fail before slow work when `path` cannot be written: missing or read-only folder, or a folder itself."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"The output path is a folder; give a file name. Received: {argument}={path!r}")
    if not os.path.isdir(folder):
        raise ValueError(f"The output folder does not exist. Received: {argument}={path!r}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"The output folder is not writable. Received: {argument}={path!r}")
    return path


def _new_file_mode():
    """The permissions `open(path, "w")` would give a new file: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _temporary_beside(path):
    """A new empty temporary file in the folder of `path`, with its suffix; removed on exit unless renamed away."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1]
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-", suffix=suffix)
    os.close(handle)
    try:
        yield temporary
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` (same suffix, so writers that look at it work); rename on success.

    For writers that want a file name rather than bytes (Keras' `model.save`,
    matplotlib's `savefig`). On an exception the temporary file is removed and
    `path` is left as it was.
    """
    with _temporary_beside(path) as temporary:
        yield temporary
        os.chmod(temporary, _new_file_mode())  # mkstemp makes 0600
        os.replace(temporary, path)


def write_atomically(files):
    """Write {path: bytes or str} so that each path holds either its old content or the whole new one.

    Every file goes to a temporary name in its own folder first; only when all are
    written are they renamed into place, so a failure leaves no partial file.
    """
    with contextlib.ExitStack() as stack:
        staged = []
        for path, content in files.items():
            temporary = stack.enter_context(_temporary_beside(path))
            with open(temporary, "wb") as file:
                file.write(content.encode() if isinstance(content, str) else content)
                file.flush()
                os.fsync(file.fileno())
            staged.append((temporary, path))
        mode = _new_file_mode()
        for temporary, path in staged:
            os.chmod(temporary, mode)
            os.replace(temporary, path)
