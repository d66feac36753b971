"""Runtime ops back to Keras layers: names, fusions and one run's timeline."""

import pytest

from mobilenet_sep.profiler import profile
from mobilenet_sep.speed.attribution import Claim, LayerGraph, kernel_seconds, timeline_shares


@pytest.fixture(scope="module")
def graph(tiny):
    return LayerGraph.of(tiny, profile(tiny))


def test_timeline_shares_split_overlaps_and_give_gaps_to_the_next_op():
    events = [(0.0, 2.0, "a"), (1.0, 3.0, "b"), (5.0, 6.0, "c"), (6.0, 7.0, "a")]
    shares = timeline_shares(events)
    # a runs alone 0-1, shares 1-2 with b; b alone 2-3; the idle 3-5 is c's dispatch; a again 6-7.
    assert shares == pytest.approx({"a": 1.0 + 0.5 + 1.0, "b": 0.5 + 1.0, "c": 2.0 + 1.0})
    assert sum(shares.values()) == pytest.approx(7.0)  # the span, exactly
    assert kernel_seconds(events) == pytest.approx({"a": 3.0, "b": 2.0, "c": 1.0})
    assert timeline_shares([]) == {}


def test_op_names_name_layers_through_keras_copy_suffixes(graph):
    assert graph.layer_named_in("mobilenet_v1_0.25_32_1/conv_dw_1_bn_1/batchnorm/mul_1") == "conv_dw_1_bn"
    assert graph.layer_named_in("gradient_tape/mobilenet_v1_0.25_32_1/conv_pw_13_1/Conv2DBackpropInput") == "conv_pw_13"
    assert graph.layer_named_in("model/conv_dw_1_relu_1/Relu6;model/conv_dw_1_bn_1/batchnorm/mul_1") == "conv_dw_1_relu"
    assert graph.layer_named_in("PartitionedCall:0") is None
    assert graph.layer_named_in("ReorderOutput_token_5") is None


def test_a_fused_convolution_claims_its_batchnorm_and_activation(graph):
    # ONNX Runtime names the fused node after the ReLU6 whose output it writes: walk back to the convolution.
    assert graph.claim(["conv_dw_3_relu"], "Conv") == Claim("conv_dw_3", ("conv_dw_3_relu", "conv_dw_3_bn"))
    # TFLite names every op it fused: the convolution is the op, the others are fused into it.
    named = ["conv_dw_2_relu", "conv_dw_2_bn", "conv_dw_2", "conv_pad_2"]
    assert graph.claim(named, "DEPTHWISE_CONV_2D+RELU6") == Claim(
        "conv_dw_2", ("conv_dw_2_relu", "conv_dw_2_bn", "conv_pad_2")
    )
    # An elementwise op named after the activation is the activation itself.
    assert graph.claim(["conv1_relu"], "Relu6") == Claim("conv1_relu")
    assert graph.host("conv_pw_4_bn", {"conv_pw_4"}) == "conv_pw_4"
    assert graph.host("conv_pad_4", {"conv_dw_4"}) == "conv_dw_4"  # a padding folds into the convolution after it
    assert graph.host("conv_pad_4", set()) is None
    assert graph.host("dropout", {"conv_preds"}) is None
    assert graph.successor("reshape_2", set()) == "predictions"
    assert graph.successor(None, set()) == "conv1"
