"""Exact per-layer multiply-adds and parameters of a built Keras model, their renderers, and TensorFlow's
own count as a cross-check."""

from mobilenet_sep.profiler.counting import (
    HEADLINE_KINDS,
    KINDS,
    LayerCost,
    Profile,
    profile,
    register_counter,
)

__all__ = ["HEADLINE_KINDS", "KINDS", "LayerCost", "Profile", "profile", "register_counter"]
