"""Does the input pipeline keep up? Training images/s of one step fed by a recipe's pipeline vs fed in-memory tensors.

Usage: python benchmarks/input_pipeline.py [--recipe digits] [--steps 40] [--rounds 5] [--set TABLE.KEY=VALUE ...]

The same compiled training step of the engine (`train.train_step_function`, same model, optimizer
and batch) runs on two inputs: the recipe's training pipeline (decode, resize, cache, shuffle,
augment, scale, batch, prefetch: epoch after epoch) and one synthetic batch kept in memory and
repeated (no input work at all). Rounds alternate between the two so machine noise hits both alike;
the median images/s of each is reported with their ratio, and the median of the per-round ratios
(robust to slow drifts of a shared machine). Goal (issue 4): ratio >= 0.90.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digits")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE")
    args = parser.parse_args()

    import tensorflow as tf

    from mobilenet_sep.train.evaluate import distribute_dataset, per_example_loss
    from mobilenet_sep.train.optimizer import build_optimizer, learning_rate_schedule
    from mobilenet_sep.train.recipe import load_recipe
    from mobilenet_sep.train.engine import model_from_recipe, recipe_datasets, train_step_function

    recipe = load_recipe(args.recipe, args.set)
    batch = recipe["train"]["batch_size"]
    input_shape = model_from_recipe(recipe).input_shape[1:]
    pipeline, _ = recipe_datasets(recipe, input_shape)
    model = model_from_recipe(recipe, classes=pipeline.num_classes)
    steps_per_epoch = pipeline.num_examples // batch
    optimizer = build_optimizer(recipe, model, learning_rate_schedule(recipe, steps_per_epoch))
    strategy = tf.distribute.get_strategy()
    step = train_step_function(model, optimizer, strategy, per_example_loss(model, pipeline.num_classes), batch)

    # The pipeline, epoch after epoch as the engine reads it; the synthetic batch, repeated.
    epochs = tf.data.Dataset.range(10**6).flat_map(pipeline.epoch)
    rng = tf.random.Generator.from_seed(0)
    images = rng.uniform((batch, *input_shape), -1.0, 1.0)
    labels = rng.uniform((batch,), 0, pipeline.num_classes, dtype=tf.int64)
    synthetic = tf.data.Dataset.from_tensors((images, labels)).repeat()
    iterators = {
        "pipeline": iter(distribute_dataset(strategy, epochs)),
        "in-memory": iter(distribute_dataset(strategy, synthetic)),
    }
    rates = {name: [] for name in iterators}
    for round_index in range(args.rounds + 1):  # round 0 warms up (compiles the step, fills the cache)
        for name, iterator in iterators.items():
            step(iterator)[0].numpy()
            start = time.perf_counter()
            for _ in range(args.steps):
                loss = step(iterator)[0]
            loss.numpy()
            seconds = time.perf_counter() - start
            if round_index:
                rates[name].append(args.steps * batch / seconds)

    print(f"recipe {args.recipe}: {model.name}, batch {batch}, {args.steps} steps x {args.rounds} rounds")
    for name, values in rates.items():
        print(
            f"{name:>10}: median {statistics.median(values):8.1f} images/s  (rounds: {', '.join(f'{v:.0f}' for v in values)})"
        )
    ratio = statistics.median(rates["pipeline"]) / statistics.median(rates["in-memory"])
    paired = statistics.median(p / m for p, m in zip(rates["pipeline"], rates["in-memory"], strict=True))
    print(
        f"pipeline / in-memory = {ratio:.3f} (ratio of medians), {paired:.3f} (median of per-round ratios); goal >= 0.90"
    )


if __name__ == "__main__":
    main()
