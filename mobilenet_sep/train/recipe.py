"""Training recipes: TOML files in `training/`, checked key by key, every value overridable.

A recipe has six tables. `[model]` and `[optimizer]` are open: besides the keys below, every key
goes to the zoo builder (`input_shape`, `alpha`, `dropout`, `batchnorm_momentum`,
`synchronized_batchnorm` for tf.distribute runs equal to one device, ...) or to the Keras optimizer
(`momentum`, `rho`, `epsilon`, ...), which reject what they do not know. The other tables are
closed: a key not in `DEFAULTS` is an error naming it. No value anywhere may be NaN or infinite.
"""

import copy
import math
import os
import tomllib

from mobilenet_sep.utils import checks
from mobilenet_sep.utils.resources import data_folder

DEFAULTS = {
    "model": {"name": "mobilenet_v1_0.25_128"},
    "data": {"dataset": "digits", "test_dataset": "", "augment": "default", "data_dir": "", "download": False},
    "train": {"epochs": 10, "batch_size": 64, "seed": 0, "label_smoothing": 0.0, "steps_per_epoch": 0},
    "optimizer": {
        "name": "rmsprop",
        "learning_rate": 0.01,
        "weight_decay": 0.0,
        "decay_depthwise": False,
        "weight_decay_exclude": ["gamma", "beta", "bias"],
    },
    "schedule": {"decay": "cosine", "warmup_epochs": 0.0, "final_fraction": 0.0},
    "finetune": {"weights": "", "freeze_base": False, "frozen_epochs": 1, "unfrozen_learning_rate_scale": 0.1},
}
"""Every table and key with its default. `train.steps_per_epoch` 0 runs whole epochs; empty strings
mean "not set"."""

OPEN_TABLES = ("model", "optimizer")
OPTIMIZERS = ("rmsprop", "sgd", "adam")
DECAYS = ("cosine", "constant")


def _fail(key, value, requirement):
    raise ValueError(f"Recipe key {key} {requirement}. Received: {key}={value!r}")


def _check_finite(key, value):
    """No NaN or infinity anywhere, open tables and lists included: TOML writes them (`nan`, `inf`), no
    setting means them, and the builder or the optimizer would take some of them silently."""
    if isinstance(value, float) and not math.isfinite(value):
        _fail(key, value, "must be a finite number")
    if isinstance(value, list):
        for item in value:
            _check_finite(key, item)


def _check_type(key, value, default):
    if isinstance(default, bool):
        if not isinstance(value, bool):
            _fail(key, value, "must be true or false")
    elif isinstance(default, (int, float)):
        allowed = int if isinstance(default, int) else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            _fail(key, value, f"must be {'an integer' if allowed is int else 'a number'}")
    elif isinstance(default, str):
        if not isinstance(value, str):
            _fail(key, value, "must be a string")
    elif isinstance(default, list) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        _fail(key, value, "must be a list of strings")


def _unknown_key(key, known):
    hint = checks.did_you_mean(key, known)
    raise ValueError(f"Unknown recipe key.{hint} Received: key={key!r}")


def _check_values(recipe):
    train, optimizer, schedule, finetune = (recipe[table] for table in ("train", "optimizer", "schedule", "finetune"))
    if train["epochs"] < 1:
        _fail("train.epochs", train["epochs"], "must be >= 1")
    if train["batch_size"] <= 0:
        _fail("train.batch_size", train["batch_size"], "must be > 0")
    if train["steps_per_epoch"] < 0:
        _fail("train.steps_per_epoch", train["steps_per_epoch"], "must be >= 0 (0: whole epochs)")
    if not 0 <= train["label_smoothing"] < 1:
        _fail("train.label_smoothing", train["label_smoothing"], "must be in [0, 1)")
    if optimizer["name"] not in OPTIMIZERS:
        _fail("optimizer.name", optimizer["name"], f"must be one of {', '.join(OPTIMIZERS)}")
    if not optimizer["learning_rate"] > 0:
        _fail("optimizer.learning_rate", optimizer["learning_rate"], "must be > 0")
    if optimizer["weight_decay"] < 0:
        _fail("optimizer.weight_decay", optimizer["weight_decay"], "must be >= 0")
    if schedule["decay"] not in DECAYS:
        _fail("schedule.decay", schedule["decay"], f"must be one of {', '.join(DECAYS)}")
    if schedule["warmup_epochs"] < 0:
        _fail("schedule.warmup_epochs", schedule["warmup_epochs"], "must be >= 0")
    if not 0 <= schedule["final_fraction"] <= 1:
        _fail("schedule.final_fraction", schedule["final_fraction"], "must be in [0, 1]")
    if finetune["freeze_base"] and not finetune["weights"]:
        _fail("finetune.freeze_base", True, "needs finetune.weights (imagenet or a .h5 path) to freeze")
    if finetune["frozen_epochs"] < 0:
        _fail("finetune.frozen_epochs", finetune["frozen_epochs"], "must be >= 0")
    if not finetune["unfrozen_learning_rate_scale"] > 0:
        _fail("finetune.unfrozen_learning_rate_scale", finetune["unfrozen_learning_rate_scale"], "must be > 0")


def check_recipe(recipe):
    """A full recipe (defaults filled in) from a partial one; ValueError naming the first bad key."""
    if not isinstance(recipe, dict):
        raise ValueError(f"A recipe is a table of tables. Received: recipe={recipe!r}")
    full = copy.deepcopy(DEFAULTS)
    for table, values in recipe.items():
        if table not in DEFAULTS:
            _unknown_key(table, list(DEFAULTS))
        if not isinstance(values, dict):
            _fail(table, values, "must be a table")
        for key, value in values.items():
            _check_finite(f"{table}.{key}", value)
            if key in DEFAULTS[table]:
                _check_type(f"{table}.{key}", value, DEFAULTS[table][key])
            elif table not in OPEN_TABLES:
                _unknown_key(f"{table}.{key}", [f"{table}.{known}" for known in DEFAULTS[table]])
            full[table][key] = value
    _check_values(full)
    return full


def _parse_value(text):
    """A TOML value (`0.01`, `true`, `[1, 2]`, `"a"`) or, failing that, the bare text as a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(recipe, assignment):
    """Set `table.key=value` in a (partial) recipe in place, e.g. `optimizer.learning_rate=0.01`; `table.key=` unsets."""
    path, equals, text = assignment.partition("=")
    table, dot, key = path.strip().partition(".")
    if not equals or not dot or not key:
        raise ValueError(f"An override is table.key=value, e.g. train.epochs=5. Received: set={assignment!r}")
    recipe.setdefault(table, {})
    if not isinstance(recipe[table], dict):
        _fail(table, recipe[table], "must be a table")
    if text.strip():
        recipe[table][key.strip()] = _parse_value(text.strip())
    else:  # `table.key=` removes the key: back to the default, or gone from an open table
        recipe[table].pop(key.strip(), None)
    return recipe


def recipe_path(name_or_path):
    """A recipe file: a path, or a name in the `training/` folder (`digits` or `digits.toml`)."""
    path = os.fspath(name_or_path)
    if os.path.isfile(path):
        return path
    shipped = data_folder("training") / (path if path.endswith(".toml") else f"{path}.toml")
    if os.sep not in path and shipped.is_file():
        return str(shipped)
    known = sorted(file.stem for file in data_folder("training").glob("*.toml"))
    raise ValueError(f"No such recipe file; shipped recipes: {', '.join(known)}. Received: recipe={path!r}")


def load_recipe(name_or_path, overrides=()):
    """Read a recipe file, apply `table.key=value` overrides, fill in defaults and check every key."""
    path = recipe_path(name_or_path)
    try:
        with open(path, "rb") as file:
            recipe = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML ({error}). Received: recipe={path!r}") from None
    for assignment in overrides:
        apply_override(recipe, assignment)
    return check_recipe(recipe)
