"""Our MobileNetV1 and keras.applications.MobileNet exported side by side: op lists, file sizes, LiteRT latency, parity.

Usage: python benchmarks/export_vs_keras_applications.py [--alpha 1.0] [--size 224] [--threads 2]
       [--rounds 5] [--repeats 50] [--out DIR]

Both models compute the same function: keras.applications' model gets random
weights and random BatchNorm statistics, and ours takes its weights layer by
layer (the layer names are the same). Each is exported with mobilenet_sep's
exporter (ONNX; TFLite fp32; full int8 calibrated on the same random images),
which verifies the file against its Keras model, then each TFLite file is timed
with mobilenet_sep.measure at batch 1, alternating between the two models for
--rounds rounds so that machine noise hits both alike; the median over all runs
is reported. Outputs are logits (no softmax) so parity is measured where it is
strictest. Goals (issue 5): same op count, fp32 latency ratio <= 1.02, int8 file
<= 4.4 MB, int8 latency <= 2.1 ms at batch 1 on 2 threads (keras.applications,
measured before: 5.64 ms fp32, 2.05 ms int8, 16.1 MB / 4.36 MB). Those sizes are
MiB (2^20 bytes): 16.1 MiB is 16.9 million bytes; sizes here are printed in MiB.
"""

import argparse
import os
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

CALIBRATION_IMAGES = 32
MIB = 2**20


def twin_models(alpha, size):
    """keras.applications.MobileNet with random BatchNorm statistics, and ours with the very same weights."""
    import keras
    import numpy as np

    import mobilenet_sep
    from helpers import randomize_batchnorm
    from mobilenet_sep.export_common import relative_error

    theirs = keras.applications.MobileNet(
        alpha=alpha, input_shape=(size, size, 3), weights=None, classifier_activation=None
    )
    randomize_batchnorm(theirs)
    ours = mobilenet_sep.MobileNetV1(alpha=alpha, input_shape=(size, size, 3), classifier_activation=None)
    for layer in ours.layers:
        if layer.weights:
            layer.set_weights(theirs.get_layer(layer.name).get_weights())
    images = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    difference = relative_error(ours(images, training=False), theirs(images, training=False))
    return {"ours": ours, "keras.applications": theirs}, difference


def export_all(models, folder, calibration):
    """{(name, kind): ExportResult} for kind in onnx, fp32, int8."""
    from mobilenet_sep.export import export_model

    results = {}
    for name, model in models.items():
        stem = os.path.join(folder, name.replace(".", "_"))
        results[name, "onnx"] = export_model(model, f"{stem}.onnx", "onnx")
        results[name, "fp32"] = export_model(model, f"{stem}.tflite", "tflite")
        results[name, "int8"] = export_model(
            model, f"{stem}_int8.tflite", "tflite", quantization="int8", representative_images=calibration
        )
    return results


def time_side_by_side(results, names, threads, rounds, repeats):
    """{(name, kind): every batch-1 run time (s)}, the models alternating round by round."""
    from mobilenet_sep.measure import measure_file

    seconds = {}
    for _ in range(rounds):
        for kind in ("fp32", "int8"):
            for name in names:
                (timing,) = measure_file(results[name, kind].path, threads=threads, warmup=10, repeats=repeats)
                seconds.setdefault((name, kind), []).extend(timing.seconds)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", help="keep the exported files in this folder (default: a temporary one)")
    args = parser.parse_args()

    import numpy as np

    models, difference = twin_models(args.alpha, args.size)
    names = list(models)
    print(f"alpha {args.alpha}, {args.size}x{args.size}; ours vs keras.applications Keras outputs: {difference:.2e}")
    calibration = np.random.default_rng(1).uniform(-1, 1, (CALIBRATION_IMAGES, args.size, args.size, 3))
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.out or temporary
        results = export_all(models, folder, calibration.astype("float32"))
        seconds = time_side_by_side(results, names, args.threads, args.rounds, args.repeats)

    print("\nverification against each model's own Keras outputs (relative error; int8: top-1 agreement)")
    for name in names:
        onnx, fp32, int8 = (results[name, kind].verification for kind in ("onnx", "fp32", "int8"))
        print(
            f"  {name:20s} ONNX {onnx.relative_error:.2e}  TFLite fp32 {fp32.relative_error:.2e}  "
            f"int8 {int8.relative_error:.2e} (agreement {100 * int8.top1_agreement:.0f} %)"
        )

    print("\nTFLite op lists")
    sequences = {}
    for name in names:
        for kind in ("fp32", "int8"):
            metadata = results[name, kind].metadata["graph"]
            sequences[name, kind] = metadata["sequence"]
            print(f"  {name:20s} {kind}: {len(metadata['sequence'])} ops {metadata['ops']}")
    for kind in ("fp32", "int8"):
        same = sequences[names[0], kind] == sequences[names[1], kind]
        identical = results[names[0], kind].metadata["sha256"] == results[names[1], kind].metadata["sha256"]
        print(f"  {kind}: op sequences (with fused activations) identical: {same}; files byte-identical: {identical}")

    print(f"\nLiteRT at batch 1, {args.threads} threads, median of {args.rounds} alternating rounds (p25-p75)")
    medians = {}
    for name in names:
        for kind in ("fp32", "int8"):
            runs = seconds[name, kind]
            medians[name, kind] = statistics.median(runs)
            low, high = np.percentile(runs, [25, 75])
            size = results[name, kind].file_bytes / MIB
            print(
                f"  {name:20s} {kind}: {1e3 * medians[name, kind]:.2f} ms ({1e3 * low:.2f}-{1e3 * high:.2f}), "
                f"{size:.2f} MiB, {len(runs)} runs"
            )
    print("\ngoals")
    ops_same = all(len(sequences[names[0], kind]) == len(sequences[names[1], kind]) for kind in ("fp32", "int8"))
    fp32_ratio = medians["ours", "fp32"] / medians["keras.applications", "fp32"]
    int8_ratio = medians["ours", "int8"] / medians["keras.applications", "int8"]
    int8_mib = results["ours", "int8"].file_bytes / MIB
    print(f"  same op count: {ops_same}")
    print(f"  fp32 latency ratio ours / keras.applications: {fp32_ratio:.3f} (goal <= 1.02)")
    print(f"  int8 latency ratio ours / keras.applications: {int8_ratio:.3f}")
    print(f"  int8 file: {int8_mib:.2f} MiB (goal <= 4.4)")
    print(f"  int8 latency: {1e3 * medians['ours', 'int8']:.2f} ms (goal <= 2.1, on a quiet machine)")


if __name__ == "__main__":
    main()
