"""The model zoo: named configurations read from `models/*.toml`, built by name.

A catalogue file names a `builder` (a function below) and lists `[[models]]`
entries, each a `name`, the `config` passed to the builder, and the reference
figures published for it (keyed by source, e.g. `paper`, `tf_slim`).
"""

import dataclasses
import difflib
import fnmatch
import functools
import importlib
import inspect
import os
import re
import tomllib

from mobilenet_sep.resources import data_folder

BUILDERS = {
    "mobilenet_v1": "mobilenet_sep.mobilenet:MobileNetV1",
    "pointwise_cnn": "mobilenet_sep.pointcloud:PointwiseCNN",
}
"""Builder name -> "module:function", imported on first build so listing the zoo stays light."""


def _builder(name):
    module, function = BUILDERS[name].split(":")
    return getattr(importlib.import_module(module), function)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One named configuration and the figures published for it."""

    name: str
    builder: str
    config: dict
    published: dict
    sources: dict

    def build(self, **overrides):
        builder = _builder(self.builder)
        accepted = inspect.signature(builder).parameters
        for key in overrides:
            if key not in accepted:
                raise ValueError(
                    f"{self.name} is built by {builder.__name__}, which takes no such argument "
                    f"(it takes: {', '.join(accepted)}). Received: {key}={overrides[key]!r}"
                )
        config = {**self.config, **overrides}
        if isinstance(config.get("input_shape"), list):
            config["input_shape"] = tuple(config["input_shape"])
        return builder(**config)


@functools.cache
def catalogue():
    """{name: ModelEntry} from every `models/*.toml`, read once."""
    entries = {}
    for path in sorted(data_folder("models").glob("*.toml")):
        with open(path, "rb") as file:
            data = tomllib.load(file)
        sources = data.get("sources", {})
        for record in data["models"]:
            record = dict(record)
            name, config = record.pop("name"), record.pop("config")
            if name in entries:
                raise ValueError(f"Model name defined twice in {path.name}. Received: name={name!r}")
            entries[name] = ModelEntry(name, data["builder"], config, record, sources)
    return entries


def _natural_key(name):
    """Sort numbers as numbers: 0.25 < 0.5 < 1.0 and 128 < 224."""
    return [float(part) if part[0].isdigit() else part for part in re.findall(r"\d+(?:\.\d+)?|\D+", name)]


def list_models(pattern="*"):
    """Names matching a glob pattern, in natural order: `list_models("*_224")`."""
    return sorted((name for name in catalogue() if fnmatch.fnmatchcase(name, pattern)), key=_natural_key)


def get_entry(name):
    """The ModelEntry of `name`; an unknown name raises ValueError with the closest names."""
    entries = catalogue()
    if name not in entries:
        close = difflib.get_close_matches(str(name), list(entries), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See list_models()."
        raise ValueError(f"Unknown model name.{hint} Received: name={name!r}")
    return entries[name]


def create_model(name, **overrides):
    """Build the zoo model `name`; keyword arguments override its config (classes=10, ...)."""
    return get_entry(name).build(**overrides)


def load_model(name_or_path, **overrides):
    """A zoo name or a `.keras` file (loaded with safe_mode=True): the one door every command uses."""
    if not str(name_or_path).endswith(".keras"):
        return create_model(name_or_path, **overrides)
    if overrides:
        key, value = next(iter(overrides.items()))
        raise ValueError(f"Overrides apply to zoo names, not to saved .keras files. Received: {key}={value!r}")
    if not os.path.isfile(name_or_path):
        raise ValueError(f"No such model file. Received: model={os.fspath(name_or_path)!r}")
    import keras

    for builder in BUILDERS:  # importing each builder's module registers its layers for deserialization
        _builder(builder)
    try:
        return keras.saving.load_model(name_or_path, safe_mode=True)
    except Exception as error:  # corrupt archives raise zipfile, OSError, ValueError, ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"Cannot load {name_or_path}: {reason[:300]}. Received: model={os.fspath(name_or_path)!r}"
        ) from None
