"""A non-editable install carries the data folders: the zoo works from a built wheel, outside the checkout."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_the_catalogue_and_recipes(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("mobilenet_sep-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    for folder in ("models", "training", "export"):
        source_files = {path.name for path in (ROOT / folder).iterdir() if path.is_file()}
        packaged = {Path(name).name for name in names if name.startswith(f"mobilenet_sep/_data/{folder}/")}
        assert source_files and source_files <= packaged

    script = (
        "import json, mobilenet_sep, mobilenet_sep.zoo as zoo, mobilenet_sep.utils.resources as r;"
        "print(json.dumps([mobilenet_sep.__file__, str(r.data_folder('models')), len(zoo.list_models())]))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    package_file, models_folder, count = json.loads(result.stdout)
    assert package_file.startswith(str(site)) and models_folder.startswith(str(site))
    assert count >= 32
