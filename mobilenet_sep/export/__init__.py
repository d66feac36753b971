"""Export to ONNX, TFLite and .keras, every file verified against the Keras model before it is kept.

`exporter` is the door (`export_model`, `export_data`); `to_onnx`, `to_tflite` and `to_keras` the writers;
`fuse` folds BatchNorm into the convolutions (an inference-only Keras model);
`verify` the shared checks and the atomic finish; `formats` the vocabulary the CLI reads at start-up.
"""
