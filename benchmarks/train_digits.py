"""The digits recipe end to end: held-out top-1 and wall time, over one or more seeds.

Usage: python benchmarks/train_digits.py [--recipe digits] [--seeds 0 1 2] [--set TABLE.KEY=VALUE ...] [--keep DIR]
       [--out benchmarks/results/train_digits.json]

Each seed is a full `mobilenet-sep train` run (the library call behind it) into a fresh folder; the
wall time counts everything from the call to the saved files: model building, tracing, training,
per-epoch evaluation and checkpoints. Goal (issue 4): >= 97% top-1 on the held-out digits within
5 minutes on a 2-core CPU. The figures of every seed go to `--out` with the command and machine
(README.md and training/README.md quote them from there).
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "train_digits.json")
KEPT = ("model", "top1", "best_top1", "best_epoch", "epochs", "train_examples", "test_examples", "images_per_second")
"""What the result keeps of each run's metrics.json, beside the wall time."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE")
    parser.add_argument("--keep", help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--out", default=RESULT, help=f"result file (default {os.path.relpath(RESULT)})")
    args = parser.parse_args()

    from mobilenet_sep.speed.measure import available_threads
    from mobilenet_sep.train.engine import train
    from mobilenet_sep.train.recipe import load_recipe
    from mobilenet_sep.utils.record import result_record, script_command, write_result

    out = args.keep or tempfile.mkdtemp(prefix="train_digits-")
    rows = []
    for seed in args.seeds:
        recipe = load_recipe(args.recipe, [*args.set, f"train.seed={seed}"])
        start = time.perf_counter()
        metrics = train(recipe, os.path.join(out, f"seed-{seed}")).metrics
        rows.append((seed, metrics["top1"], metrics["best_top1"], time.perf_counter() - start, metrics))
        print(
            f"seed {seed}: final top-1 {metrics['top1']:.2%}, best {metrics['best_top1']:.2%} "
            f"(epoch {metrics['best_epoch']}), {metrics['epochs']} epochs, wall {rows[-1][3]:.1f} s, "
            f"{metrics['images_per_second']:.0f} training images/s (median epoch)",
            flush=True,
        )
    finals = [row[1] for row in rows]
    walls = [row[3] for row in rows]
    print(
        f"{rows[0][4]['model']} on {args.recipe}: final top-1 min {min(finals):.2%} / median "
        f"{statistics.median(finals):.2%}; wall median {statistics.median(walls):.1f} s, max {max(walls):.1f} s "
        f"(goal: >= 97% within 300 s); runs in {out}"
    )
    figures = {
        "recipe": args.recipe,
        "overrides": args.set,
        "runs": [{"seed": seed, "wall_seconds": wall, **{key: metrics[key] for key in KEPT}} for seed, _, _, wall, metrics in rows],
        "final_top1_median": statistics.median(finals),
        "wall_seconds_median": statistics.median(walls),
    }
    short = "overrides " + " ".join(args.set) if args.set else None
    record = result_record(figures, command=script_command(), threads=available_threads(), short_run=short)
    print(f"wrote {write_result(args.out, record)}")


if __name__ == "__main__":
    main()
