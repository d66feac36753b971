"""The export vocabulary, light enough for the CLI to read at start-up: formats, quantizations, opset."""

FORMATS = ("onnx", "tflite", "keras")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
DEFAULT_OPSET = 17

MAX_TOP1_DROP = 1.0
"""Points of top-1 accuracy a quantized file may lose against the Keras model (where the data has labels)."""
MIN_AGREEMENT = 0.90
"""Least share of inputs on which a quantized file picks the Keras model's class."""
