"""The model zoo: named configurations read from `models/*.toml`, built by name.

A catalogue file names a `builder` (a function registered with `@register_builder`) and lists
`[[models]]` entries, each a `name`, the `config` passed to the builder, and the reference figures
published for it (keyed by source, e.g. `paper`, `tf_slim`).
"""

import dataclasses
import fnmatch
import functools
import inspect
import os
import re
import tomllib
import zipfile
from collections.abc import Callable

from mobilenet_sep.utils import checks
from mobilenet_sep.utils.registry import Registry
from mobilenet_sep.utils.resources import data_folder

OTHER_MODEL_FILES = (".h5", ".onnx", ".tflite")
"""Files that are not models `load_model` reads: named where one is given, rather than "unknown model name"."""

BUILDERS = Registry("model builder")
"""Builder name (a catalogue's `builder`) -> the function that builds its models."""


def register_builder(name: str) -> Callable:
    """Decorator: make the function the builder that catalogues call `name`."""
    return BUILDERS.register(name)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One named configuration and the figures published for it."""

    name: str
    builder: str
    config: dict
    published: dict
    sources: dict

    def arguments(self, **overrides) -> dict:
        """Every argument the builder would get: its defaults, then the entry's config, then `overrides`."""
        builder = BUILDERS[self.builder]
        accepted = inspect.signature(builder).parameters
        for key in overrides:
            if key not in accepted:
                raise ValueError(
                    f"{self.name} is built by {builder.__name__}, which takes no such argument "
                    f"(it takes: {', '.join(accepted)}). Received: {key}={overrides[key]!r}"
                )
        defaults = {key: parameter.default for key, parameter in accepted.items()}
        arguments = {**defaults, **self.config, **overrides}
        if isinstance(arguments.get("input_shape"), list):
            arguments["input_shape"] = tuple(arguments["input_shape"])
        return arguments

    def build(self, **overrides) -> "keras.Model":
        """The Keras model of this entry, with `overrides` replacing config values."""
        return BUILDERS[self.builder](**self.arguments(**overrides))


@functools.cache
def catalogue() -> dict[str, "ModelEntry"]:
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


def list_models(pattern: str = "*") -> list[str]:
    """Names matching a glob pattern, in natural order: `list_models("*_224")`."""
    return sorted((name for name in catalogue() if fnmatch.fnmatchcase(name, pattern)), key=_natural_key)


def get_entry(name: str) -> ModelEntry:
    """The ModelEntry of `name`; an unknown name raises ValueError with the closest names."""
    entries = catalogue()
    if str(name).endswith(OTHER_MODEL_FILES):
        raise ValueError(
            f"A model is a zoo name or a .keras file, not a {os.path.splitext(str(name))[1]} file (benchmark times "
            f".onnx and .tflite files; .h5 ImageNet weights go to weights=/--weights). Received: model={name!r}"
        )
    if name not in entries:
        hint = checks.did_you_mean(name, entries, cutoff=0.5, count=3) or " See list_models()."
        raise ValueError(f"Unknown model name.{hint} Received: name={name!r}")
    return entries[name]


def create_model(name: str, **overrides):
    """Build the zoo model `name`; keyword arguments override its config (classes=10, ...)."""
    return get_entry(name).build(**overrides)


def load_model(name_or_path: str | os.PathLike, **overrides):
    """A zoo name or a `.keras` file (loaded with safe_mode=True): the one door every command uses."""
    path = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    if not str(path).endswith(".keras"):
        return create_model(name_or_path, **overrides)
    if overrides:
        key, value = next(iter(overrides.items()))
        raise ValueError(f"Overrides apply to zoo names, not to saved .keras files. Received: {key}={value!r}")
    if not os.path.isfile(path):
        raise ValueError(f"No such model file. Received: model={path!r}")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found" of an empty, truncated or foreign file
        what = "empty" if os.path.getsize(path) == 0 else "not a zip archive, as .keras files are (truncated?)"
        raise ValueError(f"Cannot load {path}: the file is {what}. Received: model={path!r}")
    import keras

    import mobilenet_sep.layers  # noqa: F401  registers our layers for deserialization

    try:
        return keras.saving.load_model(name_or_path, safe_mode=True)
    except Exception as error:  # corrupt archives raise zipfile, OSError, ValueError, ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"Cannot load {path}: {reason[:300].rstrip('.')}. Received: model={path!r}") from None


def twin_names(name: str) -> tuple[str, str]:
    """(separable, standard-conv twin) zoo names for either member of the pair."""
    get_entry(name)  # an unknown name raises with suggestions
    separable = name.removeprefix("conv_")
    standard = f"conv_{separable}"
    if not {separable, standard} <= set(catalogue()):
        raise ValueError(f"Only the zoo's MobileNets have a standard-conv twin. Received: name={name!r}")
    return separable, standard
