"""Atomic writes: whole new content or the old one, never a partial or temporary file left behind."""

import os

import pytest

from mobilenet_sep.utils import files


def test_write_atomically_writes_every_file_with_umask_permissions(tmp_path):
    contents = {str(tmp_path / "model.onnx"): b"\x00graph", str(tmp_path / "model.onnx.json"): b"{}\n"}
    files.write_atomically(contents)
    umask = os.umask(0)
    os.umask(umask)
    for path, content in contents.items():
        with open(path, "rb") as file:
            assert file.read() == content
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "model.onnx.json"]


def test_a_failed_write_leaves_old_files_and_no_temporary_ones(tmp_path, monkeypatch):
    old = tmp_path / "model.tflite"
    old.write_bytes(b"old")

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomically({str(old): b"new", f"{old}.json": b"{}"})
    assert old.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_a_write_into_a_missing_folder_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError, match="folder does not exist.*Received: path="):
        files.write_atomically({str(tmp_path / "a.onnx"): b"a", str(tmp_path / "missing" / "a.json"): b"{}"})
    assert os.listdir(tmp_path) == []


def test_check_output_path_refuses_folders_missing_folders_and_files_as_folders(tmp_path):
    (tmp_path / "file").write_text("x")
    cases = {
        str(tmp_path): "is a folder",
        str(tmp_path / "missing" / "m.onnx"): "does not exist",
        str(tmp_path / "file" / "m.onnx"): f"goes through a file, {tmp_path / 'file'}",
        str(tmp_path / "file" / "deeper" / "m.onnx"): f"goes through a file, {tmp_path / 'file'}",
    }
    for path, reason in cases.items():
        with pytest.raises(ValueError, match=reason) as error:
            files.check_output_path(path)
        assert str(error.value).endswith(f"Received: out={path!r}")
    assert files.check_output_path(tmp_path / "m.onnx") == str(tmp_path / "m.onnx")


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "plot.png"
    with files.atomic_path(target) as temporary:
        assert temporary.endswith(".png") and os.path.dirname(temporary) == str(tmp_path)
        with open(temporary, "wb") as file:
            file.write(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError), files.atomic_path(target) as temporary:
        with open(temporary, "wb") as file:
            file.write(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["plot.png"]


def test_save_figure_writes_a_png_and_refuses_a_folder(tmp_path):
    from matplotlib.figure import Figure

    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    assert files.save_figure(figure, tmp_path / "line.png") == str(tmp_path / "line.png")
    assert (tmp_path / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=f"is a folder.*Received: path={str(tmp_path)!r}"):
        files.save_figure(figure, tmp_path)
    assert os.listdir(tmp_path) == ["line.png"]
