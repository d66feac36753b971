"""The training engine: one custom loop for the default strategy, MirroredStrategy and
MultiWorkerMirroredStrategy alike.

Why not `model.fit`: under MultiWorkerMirroredStrategy (TF 2.21, Keras 3.15) fit fails at its first
step (keras-team/keras#20585), while a step run with `strategy.run` works everywhere. So the engine
is that step, with what fit gives around it: progress reports, a checkpoint per epoch and exact
resume, TensorBoard summaries, best and final `.keras` files and `metrics.json`.

A run is a sequence of small steps: set up (data, then the model, built once, and its optimizer),
restore the last checkpoint, then per epoch train, evaluate and save, and finally save the model.

Exact resume: a checkpoint holds the model, the optimizer (its step counter drives the learning
rate) and the number of finished epochs; epoch k's batches are a pure function of the seed and k
(see `data.LoadedDataset.epoch`). Kill the process at any point, rerun the same call: it goes on
from the last finished epoch, or from the one before when the last checkpoint is damaged
(`checkpoints`), and ends with the files an uninterrupted run writes. Only the chief writes into
the output folder, holding its lock (`run_folder.locked`); other workers write their part of the
(collective) checkpoint into a temporary folder they delete, as TF recommends.
"""

import dataclasses
import logging
import os
import shutil
import time

from mobilenet_sep import zoo
from mobilenet_sep.data import DataOptions, LoadedDataset, load_dataset
from mobilenet_sep.train import checkpoints, run_folder
from mobilenet_sep.train.distribute import make_strategy, worker_id
from mobilenet_sep.train.evaluate import Evaluator, per_example_loss
from mobilenet_sep.train.optimizer import build_optimizer, learning_rate_schedule
from mobilenet_sep.train.recipe import check_recipe, load_recipe
from mobilenet_sep.train.steps import random_states, set_trainable, statistics_sync, train_step_function
from mobilenet_sep.zoo.mobilenet_v1 import load_base_weights


@dataclasses.dataclass
class TrainResult:
    """What a run produced; `metrics` is what the chief writes to metrics.json (on every worker)."""

    output_dir: str
    metrics: dict
    is_chief: bool
    best_model: str | None
    final_model: str | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Progress:
    """What the engine reports as it runs. This one ignores it all; the CLI draws bars and lines."""

    def start(self, plan):
        """plan: epochs, initial_epoch, steps_per_epoch, model, parameters, replicas, examples, ..."""

    def step(self, epoch, step, loss):
        """After each training step: 0-based epoch and step, the batch's loss."""

    def epoch_end(self, record):
        """After each epoch: its record in metrics.json's history."""

    def notice(self, message):
        """Something the user should know, in one line: a damaged checkpoint skipped, a stale lock taken over."""
        logging.getLogger(__name__).warning(message)


def recipe_input_shape(recipe: dict) -> tuple:
    """The input shape the recipe's model will have, read from the zoo without building it."""
    overrides = {key: value for key, value in recipe["model"].items() if key != "name"}
    shape = zoo.get_entry(recipe["model"]["name"]).arguments(**overrides)["input_shape"]
    if shape is None or None in tuple(shape):
        raise ValueError(f"Training needs a fixed input size. Received: model.input_shape={shape!r}")
    return tuple(shape)


def model_from_recipe(recipe: dict, **extra):
    """The recipe's [model]: its zoo `name` built with the table's other keys as overrides, then `extra`."""
    arguments = {key: value for key, value in recipe["model"].items() if key != "name"}
    return zoo.create_model(recipe["model"]["name"], **{**arguments, **extra})


def recipe_datasets(recipe: dict, input_shape: tuple) -> tuple[LoadedDataset, LoadedDataset]:
    """The recipe's training and test LoadedDatasets for a model input shape."""
    data, train = recipe["data"], recipe["train"]
    common = {
        "input_shape": tuple(input_shape),
        "batch_size": train["batch_size"],
        "seed": train["seed"],
        "data_dir": data["data_dir"] or None,
        "download": data["download"],
        "augment": data["augment"],
    }
    train_data = load_dataset(data["dataset"], DataOptions("train", training=True, **common))
    test_data = load_dataset(data["test_dataset"] or data["dataset"], DataOptions("test", **common))
    if test_data.num_classes != train_data.num_classes:
        raise ValueError(
            f"The test set has {test_data.num_classes} classes, the training set {train_data.num_classes}. "
            f"Received: test_dataset={data['test_dataset']!r}"
        )
    return train_data, test_data


def _pretrained_base(model, recipe):
    """Load `finetune.weights` into the model's base by layer name; the names of the layers filled."""
    weights = recipe["finetune"]["weights"]
    if not weights:
        return set()
    entry = zoo.get_entry(recipe["model"]["name"])
    if entry.builder != "mobilenet_v1":
        raise ValueError(
            f"The {entry.name} builder takes no pretrained base weights. Received: finetune.weights={weights!r}"
        )
    overrides = {key: value for key, value in recipe["model"].items() if key != "name"}
    arguments = entry.arguments(**overrides, classes=model.output_shape[-1])
    return load_base_weights(model, weights, arguments)


@dataclasses.dataclass
class _Run:
    """One call of `train`: what it was given, then the model, data and files it works with."""

    recipe: dict
    output_dir: str
    strategy: object
    progress: Progress
    started: float = dataclasses.field(default_factory=time.perf_counter)

    @property
    def is_chief(self):
        return self.strategy.extended.should_checkpoint

    def load_data(self):
        """The datasets, read for the model's input shape, and the epoch length."""
        settings = self.recipe["train"]
        self.train_data, self.test_data = recipe_datasets(self.recipe, recipe_input_shape(self.recipe))
        classes = self.train_data.num_classes
        if self.recipe["model"].get("classes", classes) != classes:
            received = self.recipe["model"]["classes"]
            raise ValueError(f"The dataset has {classes} classes. Received: model.classes={received!r}")
        self.global_batch = settings["batch_size"]
        self.steps_per_epoch = self.train_data.num_examples // self.global_batch
        if settings["steps_per_epoch"]:
            self.steps_per_epoch = min(self.steps_per_epoch, settings["steps_per_epoch"])

    def build(self):
        """The model (built once), its optimizer and the checkpoint that holds them, in the strategy's scope."""
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(self.recipe["train"]["seed"])
        with self.strategy.scope():
            self.model = model_from_recipe(self.recipe, classes=self.train_data.num_classes)
            self.base_names = _pretrained_base(self.model, self.recipe)
            self.sync_statistics = statistics_sync(self.model, self.strategy)
            self.schedule = learning_rate_schedule(self.recipe, self.steps_per_epoch)
            self.optimizer = build_optimizer(self.recipe, self.model, self.schedule)
            self.finished_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="finished_epochs")
            self.checkpoint = tf.train.Checkpoint(
                model=self.model,
                optimizer=self.optimizer,
                finished_epochs=self.finished_epochs,
                random_states=random_states(self.model),
            )
        self.loss = per_example_loss(self.model, self.train_data.num_classes, self.recipe["train"]["label_smoothing"])
        self.evaluator = Evaluator(self.model, self.train_data.num_classes, self.strategy)
        self.test_batches = self.evaluator.distribute(self.test_data.dataset)

    def restore(self):
        """Continue from the newest intact checkpoint of the same run, if any; the history up to it."""
        import tensorflow as tf

        run_folder.check_same_run(self.output_dir, self.recipe)
        latest = checkpoints.newest_intact(os.path.join(self.output_dir, run_folder.CHECKPOINTS), self.progress.notice)
        if latest:
            try:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as error:
                reason = " ".join(str(error).split())[:200]
                raise ValueError(
                    f"The checkpoint in the output directory does not fit this model ({reason}). "
                    f"Received: out={self.output_dir!r}"
                ) from None
        self.initial_epoch = int(self.finished_epochs.numpy())
        previous = run_folder.read_json(os.path.join(self.output_dir, run_folder.METRICS)) or {}
        self.history = [record for record in previous.get("history", []) if record["epoch"] <= self.initial_epoch]

    def open_outputs(self):
        """From here on the run writes: the chief into output_dir (first clearing what killed writes left),
        other workers into a scratch folder."""
        self.write_dir = self.output_dir
        if not self.is_chief:
            self.write_dir = os.path.join(self.output_dir, f".worker-{worker_id(self.strategy)}")
        folder = os.path.join(self.write_dir, run_folder.CHECKPOINTS)
        self.checkpoints = checkpoints.Checkpoints(self.checkpoint, folder)
        if self.is_chief:
            run_folder.remove_leftovers(self.output_dir)
            run_folder.write_json(
                os.path.join(self.output_dir, run_folder.RECIPE),
                {"recipe": self.recipe, "fingerprint": run_folder.fingerprint(self.recipe)},
            )
        self.log = run_folder.ScalarLog(os.path.join(self.output_dir, run_folder.LOGS), self.is_chief)

    def plan(self):
        return {
            "model": self.model.name,
            "parameters": self.model.count_params(),
            "epochs": self.recipe["train"]["epochs"],
            "initial_epoch": self.initial_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.global_batch,
            "replicas": self.strategy.num_replicas_in_sync,
            "train_examples": self.train_data.num_examples,
            "test_examples": self.test_data.num_examples,
            "output_dir": self.output_dir,
        }

    def frozen(self, epoch):
        finetune = self.recipe["finetune"]
        return bool(self.base_names) and finetune["freeze_base"] and epoch < finetune["frozen_epochs"]

    def train_epoch(self, epoch, step):
        """One epoch of `step` calls: (loss sum, correct count, seconds, seconds from the second step)."""
        batches = self.train_data.epoch(epoch).take(self.steps_per_epoch)
        iterator = iter(self.evaluator.distribute(batches))
        start = steady_start = time.perf_counter()
        loss_sum = correct = 0.0
        for index in range(self.steps_per_epoch):
            batch_loss, batch_correct = (float(value) for value in step(iterator))
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
            self.progress.step(epoch, index, batch_loss)
            if index == 0:  # throughput is measured from the second step: the first may compile the step
                steady_start = time.perf_counter()
        end = time.perf_counter()
        return loss_sum, correct, end - start, end - steady_start

    def evaluate_epoch(self, epoch, trained):
        """Sync the statistics, evaluate on the test set; the epoch's history record."""
        loss_sum, correct, train_seconds, steady_seconds = trained
        self.sync_statistics()
        self.test_metrics = self.evaluator.run(self.test_batches)
        images = self.steps_per_epoch * self.global_batch
        steady_images = (self.steps_per_epoch - 1) * self.global_batch
        test = {f"test_{key}": self.test_metrics[key] for key in ("loss", "top1", "top5") if key in self.test_metrics}
        return {
            "epoch": epoch + 1,
            "loss": loss_sum / self.steps_per_epoch,
            "top1": correct / images,
            "learning_rate": float(self.schedule(self.optimizer.iterations - 1)),  # of the epoch's last step
            **test,
            "train_seconds": train_seconds,
            "images_per_second": steady_images / steady_seconds if steady_images else images / train_seconds,
            "wall_seconds": time.perf_counter() - self.epoch_started,
            "frozen_base": self.frozen(epoch),
        }

    def save_epoch(self, record):
        """Record, keep the best model, then checkpoint: a kill between these steps loses nothing finished."""
        self.history.append(record)
        self.log.write(record)
        if self.is_chief:
            if record["test_top1"] >= max(entry["test_top1"] for entry in self.history):
                run_folder.save_model(self.model, os.path.join(self.output_dir, run_folder.BEST))
            run_folder.write_json(os.path.join(self.output_dir, run_folder.METRICS), self.summary(complete=False))
        self.finished_epochs.assign(record["epoch"])
        self.checkpoints.save(record["epoch"])  # every worker takes part; the chief's copy stays
        if not self.is_chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)
        self.progress.epoch_end(record)

    def run_epochs(self):
        """Every epoch left; the training step is rebuilt when fine-tuning thaws the base."""
        self.test_metrics, step, base_frozen = None, None, None
        for epoch in range(self.initial_epoch, self.recipe["train"]["epochs"]):
            if base_frozen != self.frozen(epoch):
                base_frozen = self.frozen(epoch)
                set_trainable(self.model, self.base_names, trainable=not base_frozen)
                step = train_step_function(self.model, self.optimizer, self.strategy, self.loss, self.global_batch)
            self.epoch_started = time.perf_counter()
            self.save_epoch(self.evaluate_epoch(epoch, self.train_epoch(epoch, step)))
        if self.test_metrics is None:  # the run had already finished: measure the restored model again
            self.test_metrics = self.evaluator.run(self.test_batches)

    def work(self):
        """The run's steps in order: data, model, restore, outputs, epochs, final files; the TrainResult."""
        self.load_data()
        self.build()
        self.restore()
        self.open_outputs()
        self.progress.start(self.plan())
        self.run_epochs()
        return self.finish()

    def finish(self):
        """The final model and metrics.json (chief only); the TrainResult."""
        metrics = self.summary(complete=True)
        if not self.is_chief:
            return TrainResult(self.output_dir, metrics, False, None, None)
        best, final = (os.path.join(self.output_dir, name) for name in (run_folder.BEST, run_folder.FINAL))
        run_folder.save_model(self.model, final)
        run_folder.write_json(os.path.join(self.output_dir, run_folder.METRICS), metrics)
        return TrainResult(self.output_dir, metrics, True, best, final)

    def summary(self, complete):
        """metrics.json: the final test figures, the run's totals and the per-epoch history."""
        history, data = self.history, self.recipe["data"]
        rates = sorted(record["images_per_second"] for record in history)
        best = max(history, key=lambda record: record["test_top1"]) if history else None
        final = {}
        if complete:
            final = {key: self.test_metrics[key] for key in ("top1", "top5", "loss") if key in self.test_metrics}
        return {
            "complete": complete,
            **final,
            "model": self.model.name,
            "parameters": self.model.count_params(),
            "dataset": data["dataset"],
            "test_dataset": data["test_dataset"] or data["dataset"],
            "classes": self.train_data.num_classes,
            "class_names": self.train_data.class_names,
            "train_examples": self.train_data.num_examples,
            "test_examples": self.test_data.num_examples,
            "skipped_files": self.train_data.skipped + self.test_data.skipped,
            "epochs": len(history),
            "best_epoch": best["epoch"] if best else None,
            "best_top1": best["test_top1"] if best else None,
            "resumed_from_epoch": self.initial_epoch,
            "replicas": self.strategy.num_replicas_in_sync,
            "train_seconds": sum(record["train_seconds"] for record in history),
            "images_per_second": rates[len(rates) // 2] if rates else None,  # the median epoch
            "wall_seconds": time.perf_counter() - self.started,
            "history": history,
            **({"confusion_matrix": self.test_metrics["confusion_matrix"]} if complete else {}),
        }


def train(recipe: dict | str, output_dir: str, strategy="default", progress: Progress | None = None) -> TrainResult:
    """Train as `recipe` says (a dict or a recipe file), writing into `output_dir`; a TrainResult.

    strategy: "default", "mirrored", "multi-worker" (needs TF_CONFIG) or a tf.distribute.Strategy.
    Bad input (recipe, data, output folder, a checkpoint of another run, a folder another live run
    is writing into) raises ValueError before anything in `output_dir` changes.
    """
    recipe = check_recipe(recipe) if isinstance(recipe, dict) else load_recipe(recipe)
    strategy = make_strategy(strategy) if isinstance(strategy, str) else strategy
    run = _Run(recipe, os.path.abspath(os.fspath(output_dir)), strategy, progress or Progress())
    if not run.is_chief:
        return run.work()
    run_folder.check_writable(os.fspath(output_dir))  # the error names the folder as the caller did
    with run_folder.locked(run.output_dir, run.progress.notice):
        return run.work()
