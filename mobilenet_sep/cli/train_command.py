"""`mobilenet-sep train RECIPE [overrides] [--out DIR] [--strategy ...] [--weights W --freeze-base]`."""

import json
import os

from rich.console import Console
from rich.table import Table

from mobilenet_sep.cli import options
from mobilenet_sep.cli.common import import_tensorflow, print_json
from mobilenet_sep.cli.progress import TrainProgress
from mobilenet_sep.train.distribute import STRATEGIES

FLAGS = {
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "learning_rate": "optimizer.learning_rate",
    "dataset": "data.dataset",
    "test_dataset": "data.test_dataset",
    "data_dir": "data.data_dir",
    "weights": "finetune.weights",
}
"""Dedicated flags and the recipe key each one sets (like --set KEY=VALUE)."""


def add_parser(commands):
    parser = commands.add_parser(
        "train",
        help="train a zoo model from a recipe (training/*.toml), with resume and tf.distribute",
        description="Train a zoo model as a TOML recipe says. Rerun the same command after an interruption "
        "to resume from the last finished epoch.",
    )
    parser.add_argument("recipe", help="recipe file, or the name of one in training/ (e.g. digits)")
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE", help="override a recipe key")
    parser.add_argument("--epochs", type=int, help="train.epochs")
    parser.add_argument("--batch-size", type=int, help="train.batch_size: the global batch, split across replicas")
    parser.add_argument("--seed", type=int, help="train.seed")
    parser.add_argument("--learning-rate", type=float, help="optimizer.learning_rate")
    parser.add_argument(
        "--dataset", help="data.dataset: digits, tfds:NAME[:SPLIT], folder:PATH, ... (clears data.test_dataset)"
    )
    parser.add_argument("--test-dataset", help="data.test_dataset (default: the test split of --dataset)")
    parser.add_argument("--data-dir", help="data.data_dir: where tensorflow-datasets keeps its files")
    parser.add_argument("--download", action="store_true", help="data.download: let tensorflow-datasets download")
    parser.add_argument("--weights", help="finetune.weights: imagenet or a no-top legacy .h5 file")
    parser.add_argument(
        "--freeze-base", action="store_true", help="finetune.freeze_base: train the new classifier alone first"
    )
    parser.add_argument("--out", help="output directory (default: runs/RECIPE_NAME)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default", help="multi-worker reads TF_CONFIG")
    options.add_json(parser, "a table: metrics.json on stdout (progress on stderr)")
    parser.set_defaults(run=run)


def build_overrides(args):
    """The --set assignments followed by those of the dedicated flags."""
    assignments = list(args.set)
    if args.dataset is not None:  # a recipe's test set belongs to its own dataset
        assignments.append("data.test_dataset=")
    for flag, key in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:  # TOML spells non-finite floats nan and inf, JSON NaN and Infinity
            text = repr(value) if isinstance(value, float) else json.dumps(value)
            assignments.append(f"{key}={text}")
    if args.download:
        assignments.append("data.download=true")
    if args.freeze_base:
        assignments.append("finetune.freeze_base=true")
    return assignments


def _print_result(console, result):
    metrics = result.metrics
    table = Table(title="test set, final model", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_row("top-1", f"{metrics['top1']:.2%}")
    if "top5" in metrics:
        table.add_row("top-5", f"{metrics['top5']:.2%}")
    table.add_row("loss", f"{metrics['loss']:.4f}")
    table.add_row("best top-1 (epoch)", f"{metrics['best_top1']:.2%} ({metrics['best_epoch']})")
    table.add_row("epochs", str(metrics["epochs"]))
    table.add_row("training images/s", f"{metrics['images_per_second']:,.0f}" if metrics["images_per_second"] else "-")
    table.add_row("wall time (this run)", f"{metrics['wall_seconds']:.1f} s")
    console.print(table)
    if metrics["skipped_files"]:
        console.print(f"skipped {metrics['skipped_files']} unreadable image file(s)")
    if result.is_chief:
        console.print(f"wrote {result.best_model}, {result.final_model}, metrics.json, TensorBoard logs in logs/")


def run(args, console):
    from mobilenet_sep.train.recipe import load_recipe, recipe_path

    recipe = load_recipe(args.recipe, build_overrides(args))
    output_dir = args.out or os.path.join("runs", os.path.splitext(os.path.basename(recipe_path(args.recipe)))[0])
    import_tensorflow()
    from mobilenet_sep.train.engine import train

    progress_console = Console(stderr=True) if args.json else console
    with TrainProgress(progress_console) as progress:
        result = train(recipe, output_dir, strategy=args.strategy, progress=progress)
    if args.json:
        print_json(console, result.metrics)
    else:
        _print_result(console, result)
