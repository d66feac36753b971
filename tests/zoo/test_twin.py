"""The fair twin: the other member of a MobileNetV1 pair, with the model's head, input, stride and every override."""

import keras
import pytest

import mobilenet_sep
from mobilenet_sep import zoo
from mobilenet_sep.profiler import profile
from mobilenet_sep.zoo.twin import builder_arguments

DIGITS_RECIPE_MODEL = {  # training/digits.toml's overrides, with the 10 classes training adds from the data
    "input_shape": (32, 32, 3),
    "output_stride": 16,
    "batchnorm_momentum": 0.9,
    "dropout": 0.1,
    "classes": 10,
}


def _block_shapes(model):
    """The feature-map shape after the stem and after each of the 13 blocks (separable or standard)."""
    layers = {layer.name for layer in model.layers}
    block = "conv_pw_{}_relu" if "conv_pw_1" in layers else "conv_{}_relu"
    names = ["conv1_relu"] + [block.format(index) for index in range(1, 14)]
    return [tuple(model.get_layer(name).output.shape) for name in names]


def _assert_fair(model, twin):
    """Same input, same head (classes, dropout, activation), same feature-map sizes block by block (output stride)."""
    assert twin.input_shape == model.input_shape and twin.output_shape == model.output_shape
    for name in ("conv_preds", "dropout", "predictions", "conv1_bn"):
        mine, theirs = model.get_layer(name).get_config(), twin.get_layer(name).get_config()
        assert {**mine, "name": None} == {**theirs, "name": None}, name
    assert _block_shapes(model) == _block_shapes(twin)


def test_the_trained_digits_model_and_its_twin_count_what_the_issue_says():
    """training/digits.toml's model: 4,246,016 mult-adds; its twin with the same 10-class head 35,505,152 (8.36x)."""
    model = mobilenet_sep.create_model("mobilenet_v1_0.5_128", **DIGITS_RECIPE_MODEL)
    twin = zoo.twin(model)
    _assert_fair(model, twin)
    assert twin.name == "conv_mobilenet_v1_0.5_32"
    assert (profile(model).mult_adds, profile(twin).mult_adds) == (4_246_016, 35_505_152)
    assert (model.count_params(), twin.count_params()) == (834_666, 7_081_594)
    assert f"{profile(twin).mult_adds / profile(model).mult_adds:.2f}" == "8.36"
    # The check fails on the twin the demo used to build: the zoo's 1000-class head (36,012,032 mult-adds).
    unfair = mobilenet_sep.create_model("conv_mobilenet_v1_0.5_128", **{**DIGITS_RECIPE_MODEL, "classes": 1000})
    assert profile(unfair).mult_adds == 36_012_032
    with pytest.raises(AssertionError):
        _assert_fair(model, unfair)


@pytest.mark.parametrize(
    "overrides",
    [
        {"input_shape": (40, 56, 3), "classes": 7, "output_stride": 8, "classifier_activation": None},
        {"alpha": 0.3, "depth_multiplier": 2, "min_depth": 16, "input_shape": (33, 33, 3), "dropout": 0.25},
        {"input_shape": (48, 48, 3), "include_top": False, "pooling": "max", "batchnorm_momentum": 0.5},
    ],
)
def test_every_override_is_read_back_and_shared(overrides):
    model = mobilenet_sep.MobileNetV1(**overrides)
    arguments = builder_arguments(model)  # raises unless they rebuild the model layer for layer
    for key, value in overrides.items():
        assert arguments[key] == pytest.approx(value, rel=1e-3) if key == "alpha" else arguments[key] == value, key
    twin = zoo.twin(model)
    expected = mobilenet_sep.MobileNetV1(**{**overrides, "depth_multiplier": 1, "separable": False})
    assert profile(twin).mult_adds == profile(expected).mult_adds and twin.count_params() == expected.count_params()
    assert twin.input_shape == model.input_shape and twin.output_shape == model.output_shape


def test_a_zoo_name_and_its_overrides_give_the_same_twin_as_the_built_model():
    overrides = {"input_shape": (64, 48, 3), "classes": 10, "output_stride": 16, "dropout": 0.2}
    by_name = zoo.twin("mobilenet_v1_0.25_128", **overrides)
    expected = mobilenet_sep.create_model("conv_mobilenet_v1_0.25_128", **overrides)
    assert by_name.name == expected.name == "conv_mobilenet_v1_0.25_64x48"
    assert profile(by_name).to_dict() == profile(expected).to_dict()  # every layer, shape and count
    separable, standard = zoo.pair("conv_mobilenet_v1_0.25_128", **overrides)  # either member of the pair
    assert (separable.name, standard.name) == ("mobilenet_v1_0.25_64x48", "conv_mobilenet_v1_0.25_64x48")
    assert profile(standard).to_dict() == profile(expected).to_dict()


def test_keras_applications_mobilenet_has_a_twin_too():
    theirs = keras.applications.MobileNet(
        alpha=0.25, input_shape=(64, 48, 3), weights=None, classes=5, classifier_activation=None
    )
    twin = zoo.twin(theirs)
    ours = mobilenet_sep.MobileNetV1(alpha=0.25, input_shape=(64, 48, 3), classes=5, classifier_activation=None)
    assert profile(twin).mult_adds == profile(zoo.twin(ours)).mult_adds
    assert twin.output_shape == (None, 5)


def test_models_without_a_twin_are_refused():
    inputs = keras.Input((32, 32, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv1")(inputs), name="other")
    with pytest.raises(ValueError, match="Only a MobileNetV1 has a twin.*Received: model='other'"):
        zoo.twin(other)
    with pytest.raises(ValueError, match="Received: name='pointwise_cnn'"):
        zoo.twin("pointwise_cnn")
    with pytest.raises(ValueError, match="Received: classes=3"):
        zoo.twin(mobilenet_sep.MobileNetV1(alpha=0.25, input_shape=(32, 32, 3)), classes=3)
