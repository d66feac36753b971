"""Recipes: shipped files parse, overrides reach every key, unknown or bad keys fail with one line naming them."""

import pytest

from mobilenet_sep.train.recipe import DEFAULTS, apply_override, check_recipe, load_recipe, recipe_path
from mobilenet_sep.utils.resources import data_folder

SHIPPED = sorted(path.stem for path in data_folder("training").glob("*.toml"))


def test_digits_is_shipped():
    assert "digits" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipes_are_complete_and_valid(name):
    recipe = load_recipe(name)
    assert set(recipe) == set(DEFAULTS)
    for table, defaults in DEFAULTS.items():
        assert set(defaults) <= set(recipe[table])


def test_defaults_fill_what_a_recipe_leaves_out():
    recipe = check_recipe({"model": {"name": "mobilenet_v1_0.25_128", "alpha": 0.5}})
    assert recipe["model"] == {"name": "mobilenet_v1_0.25_128", "alpha": 0.5}  # open table
    assert recipe["train"] == DEFAULTS["train"] and recipe["optimizer"]["name"] == "rmsprop"


def test_overrides_parse_toml_values_and_bare_strings():
    recipe = load_recipe(
        "digits",
        [
            "train.epochs=3",
            "optimizer.learning_rate=5e-4",
            "data.download=true",
            "data.dataset=tfds:cifar10:train[:10%]",  # bare text is a string
            'data.test_dataset="tfds:cifar10:test"',
            "model.input_shape=[48, 40, 3]",
            "optimizer.weight_decay_exclude=['bias']",
            "model.dropout=",  # unset: the builder's default again
        ],
    )
    assert recipe["train"]["epochs"] == 3 and recipe["optimizer"]["learning_rate"] == 5e-4
    assert recipe["data"]["download"] is True and recipe["data"]["dataset"] == "tfds:cifar10:train[:10%]"
    assert recipe["data"]["test_dataset"] == "tfds:cifar10:test" and recipe["model"]["input_shape"] == [48, 40, 3]
    assert recipe["optimizer"]["weight_decay_exclude"] == ["bias"] and "dropout" not in recipe["model"]
    assert load_recipe("digits")["model"]["dropout"] == 0.1  # the file itself is untouched


@pytest.mark.parametrize(
    "assignment,message",
    [
        ("train.epoch=3", "Did you mean: train.epochs.*Received: key='train.epoch'"),
        ("trainer.epochs=3", "Received: key='trainer'"),
        ("schedule.warmup=2", "Received: key='schedule.warmup'"),
        ("train.batch_size=0", "Received: train.batch_size=0"),
        ("train.batch_size=-8", "Received: train.batch_size=-8"),
        ("train.batch_size=2.5", "must be an integer. Received: train.batch_size=2.5"),
        ("train.epochs=0", "Received: train.epochs=0"),
        ("train.label_smoothing=1.5", "Received: train.label_smoothing=1.5"),
        ("optimizer.name=lamb", "Received: optimizer.name='lamb'"),
        ("optimizer.learning_rate=0", "Received: optimizer.learning_rate=0"),
        ("schedule.decay=step", "Received: schedule.decay='step'"),
        ("data.download=yes", "must be true or false. Received: data.download='yes'"),
        ("finetune.freeze_base=true", "needs finetune.weights.*Received: finetune.freeze_base=True"),
        ("epochs=3", "table.key=value"),
        ("train.epochs", "table.key=value"),
    ],
)
def test_bad_keys_and_values_are_one_line_errors(assignment, message):
    with pytest.raises(ValueError, match=message) as error:
        load_recipe("digits", [assignment])
    assert "\n" not in str(error.value)


def test_apply_override_creates_tables_and_unsets():
    recipe = apply_override({}, "train.seed=7")
    assert recipe == {"train": {"seed": 7}}
    assert apply_override(recipe, "train.seed=") == {"train": {}}


def test_recipe_files_by_name_or_path(tmp_path):
    assert recipe_path("digits") == recipe_path("digits.toml") == str(data_folder("training") / "digits.toml")
    own = tmp_path / "mine.toml"
    own.write_text('[model]\nname = "mobilenet_v1_0.5_128"\n[train]\nepochs = 2\n')
    assert load_recipe(own)["train"]["epochs"] == 2
    with pytest.raises(ValueError, match="No such recipe file; shipped recipes: .*digits.*Received: recipe='nope'"):
        load_recipe("nope")
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\nepochs = 2")
    with pytest.raises(ValueError, match="is not valid TOML"):
        load_recipe(broken)
    with pytest.raises(ValueError, match="Received: key='trian'"):
        load_recipe(own, ["trian.epochs=1"])


@pytest.mark.parametrize(
    "recipe,key",
    [
        ({"optimizer": {"learning_rate": float("inf")}}, "optimizer.learning_rate"),
        ({"optimizer": {"learning_rate": float("nan")}}, "optimizer.learning_rate"),
        ({"optimizer": {"weight_decay": float("inf")}}, "optimizer.weight_decay"),
        ({"optimizer": {"momentum": float("nan")}}, "optimizer.momentum"),  # an open table: Keras would take it
        ({"schedule": {"warmup_epochs": float("inf")}}, "schedule.warmup_epochs"),
        ({"model": {"alpha": float("-inf")}}, "model.alpha"),
        ({"model": {"input_shape": [32, float("nan"), 3]}}, "model.input_shape"),
    ],
)
def test_nan_and_infinity_are_refused_in_every_table(recipe, key):
    with pytest.raises(ValueError, match=rf"Recipe key {key} must be a finite number. Received: {key}="):
        check_recipe(recipe)


def test_toml_nan_and_inf_from_the_command_line_are_refused():
    with pytest.raises(ValueError, match="Received: optimizer.learning_rate=inf"):
        load_recipe("digits", ["optimizer.learning_rate=inf"])
    with pytest.raises(ValueError, match="Received: model.dropout=nan"):
        load_recipe("digits", ["model.dropout=nan"])
