"""Where the data folders (`models/`, `training/`, `export/`) live.

In a source checkout or editable install they are the top-level folders of the
repository; a wheel carries copies under `mobilenet_sep/_data/` (pyproject's
force-include), so a plain `pip install .` finds them too.
"""

import importlib.resources
from pathlib import Path


def data_folder(name: str) -> Path:
    """The folder `name` ("models", "training" or "export") as a Path."""
    packaged = Path(str(importlib.resources.files("mobilenet_sep"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / name
