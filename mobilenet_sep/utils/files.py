"""Atomic file writes: a path holds either its old content or the whole new one, never a partial file.

Every file the package writes itself (exports, metadata, plots, CSV, .keras
models, metrics, reports) goes through here: content is written under a temporary
name in the destination folder and renamed into place only once complete.
TensorFlow's checkpoints and TensorBoard events are written by TensorFlow, which
has its own protocol (a checkpoint counts once its index file is renamed in).
"""

import contextlib
import io
import os
import tempfile


def check_output_path(path: str | os.PathLike, argument: str = "out") -> str:
    """Fail before slow work when `path` cannot be written: missing or read-only folder, or a folder itself."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"The output path is a folder; give a file name. Received: {argument}={path!r}")
    if not os.path.isdir(folder):
        parent = folder
        while not os.path.exists(parent):  # the root exists: the loop ends
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise ValueError(f"The output path goes through a file, {parent}. Received: {argument}={path!r}")
        raise ValueError(f"The output folder does not exist. Received: {argument}={path!r}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"The output folder is not writable. Received: {argument}={path!r}")
    return path


def _new_file_mode():
    """The permissions `open(path, "w")` would give a new file: 0666 less the umask.

    The umask is read from /proc where it can be: setting it to read it back is
    process-wide, and a thread creating a file meanwhile would get 0666.
    """
    try:
        with open("/proc/self/status") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration):
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
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path` (same suffix, so writers that look at it work); rename on success.

    For writers that want a file name rather than bytes (Keras' `model.save`,
    matplotlib's `savefig`). On an exception the temporary file is removed and
    `path` is left as it was.
    """
    with _temporary_beside(path) as temporary:
        yield temporary
        os.chmod(temporary, _new_file_mode())  # mkstemp makes 0600
        with open(temporary, "rb") as written:  # on disk before it takes the name (as write_atomically does)
            os.fsync(written.fileno())
        os.replace(temporary, path)


def write_atomically(files: dict) -> None:
    """Write {path: bytes or str} so that each path holds either its old content or the whole new one.

    Every file goes to a temporary name in its own folder first; only when all are
    written are they renamed into place, so a failure leaves no partial file.
    """
    for path in files:
        check_output_path(path, "path")
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


def save_figure(figure, path: str | os.PathLike, dpi: int = 100) -> str:
    """A matplotlib `Figure` as a PNG at `path`, written atomically.

    Build figures with `matplotlib.figure.Figure`, not pyplot: it renders with Agg
    and leaves the global backend of an interactive session (Jupyter) alone.
    """
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=dpi)
    write_atomically({path: image.getvalue()})
    return os.fspath(path)
