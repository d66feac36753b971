"""The pointwise CNN's paper batch (128 clouds x 2048 points) on a GPU, under JAX: forward and forward + backward times.

Usage: python benchmarks/pointcloud_gpu.py [--batch 128] [--points 2048] [--repeats 10] [--allow-cpu]
       [--out benchmarks/results/pointcloud_gpu.json]

Keras runs on its JAX backend (KERAS_BACKEND=jax unless set otherwise) and the network uses the
grid query (`query="grid"`: tensor ops, the only one that runs on a GPU), compiled with jax.jit:
forward is the model's output in inference mode, forward + backward the gradient of the
cross-entropy in training mode with respect to every weight. Both are timed in alternating rounds
(measure.time_interleaved) after one warm-up call each, as medians with quartiles; the GPU's peak
memory comes from JAX's allocator. No test needs this script; without a GPU it stops, unless
--allow-cpu asks for a (slow) run on the CPU to check the script itself.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "pointcloud_gpu.json")
SEED_ARTICLE = {"forward": 1.272, "forward_backward": 3.695, "machine": "Intel i7-6900K, 16 threads (CPU)"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10, help="alternating rounds")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU when there is no GPU")
    parser.add_argument("--out", default=RESULT, help=f"result file (default {os.path.relpath(RESULT)})")
    args = parser.parse_args()

    import jax
    import keras
    import numpy as np

    from mobilenet_sep.data.pointclouds import SHAPES, synthetic_cloud
    from mobilenet_sep.speed.measure import time_interleaved
    from mobilenet_sep.speed.stats import Spread
    from mobilenet_sep.utils.record import package_versions, result_record, script_command, write_result
    from mobilenet_sep.zoo.pointwise_cnn import PointwiseCNN

    if keras.backend.backend() != "jax":
        raise SystemExit(f"This script runs Keras on JAX. Received: KERAS_BACKEND={keras.backend.backend()!r}")
    device = jax.devices()[0]
    if device.platform != "gpu" and not args.allow_cpu:
        raise SystemExit(f"No GPU for JAX (first device: {device}); --allow-cpu runs on the CPU instead.")

    rng = np.random.default_rng(0)
    clouds = np.stack([synthetic_cloud(rng, SHAPES[k % len(SHAPES)], args.points) for k in range(args.batch)])
    clouds = jax.device_put(clouds.astype("float32"), device)
    labels = jax.device_put(np.arange(args.batch) % 40, device)
    model = PointwiseCNN(input_shape=(args.points, 3), classes=40, query="grid")
    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [variable.value for variable in model.non_trainable_variables]
    loss = keras.losses.SparseCategoricalCrossentropy()

    @jax.jit
    def forward(trainable, non_trainable, clouds):
        return model.stateless_call(trainable, non_trainable, clouds, training=False)[0]

    def training_loss(trainable, non_trainable, clouds, labels):
        outputs, _ = model.stateless_call(trainable, non_trainable, clouds, training=True)
        return loss(labels, outputs)

    gradients = jax.jit(jax.grad(training_loss))
    runs = [
        lambda: forward(trainable, non_trainable, clouds).block_until_ready(),
        lambda: jax.block_until_ready(gradients(trainable, non_trainable, clouds, labels)),
    ]
    timed = time_interleaved(runs, warmup=1, repeats=args.repeats, budget_s=float("inf"))
    spreads = [Spread.of(seconds) for seconds in timed]
    peak = (device.memory_stats() or {}).get("peak_bytes_in_use")

    print(f"pointwise CNN (grid query, jax.jit), batch {args.batch} x {args.points} points on {device.device_kind}")
    print(f"{args.repeats} alternating rounds: median (quartiles) in seconds; the seed article's are from its CPU")
    names = (("forward", "forward"), ("forward + backward", "forward_backward"))
    for (name, seed), spread in zip(names, spreads, strict=True):
        quartiles = f"({spread.p25:.4f}-{spread.p75:.4f})"
        print(f"{name:20}{spread.median:9.4f} {quartiles}   seed article {SEED_ARTICLE[seed]:.3f}")
    if peak is not None:
        print(f"peak device memory {peak / 2**30:.2f} GiB")
    figures = {
        "batch": args.batch,
        "points": args.points,
        "device": str(device.device_kind),
        "platform": device.platform,
        "forward_s": spreads[0].to_dict(),
        "forward_backward_s": spreads[1].to_dict(),
        "peak_device_bytes": peak,
        "jax": package_versions(("jax", "jaxlib")),
    }
    short = None if (args.batch, args.points) == (128, 2048) else f"batch {args.batch} x {args.points} points"
    record = result_record(figures | {"seed_article": SEED_ARTICLE}, command=script_command(), short_run=short)
    print(f"result written to {write_result(args.out, record)}")


if __name__ == "__main__":
    main()
