"""The training engine: one custom loop for the default strategy, MirroredStrategy and
MultiWorkerMirroredStrategy alike.

Why not `model.fit`: under MultiWorkerMirroredStrategy (TF 2.21, Keras 3.15) fit fails at its first
step (keras-team/keras#20585), while a step run with `strategy.run` works everywhere. So the engine
is that step, with what fit gives around it: progress reports, a checkpoint per epoch and exact
resume, TensorBoard summaries, best and final `.keras` files and `metrics.json`.

Exact resume: a checkpoint holds the model, the optimizer (its step counter drives the learning
rate) and the number of finished epochs; epoch k's batches are a pure function of the seed and k
(see `data.LoadedDataset.epoch`). Kill the process at any point, rerun the same call: it goes on
from the last finished epoch. Only the chief writes into the output folder; other workers write
their part of the (collective) checkpoint into a temporary folder they delete, as TF recommends.
"""

import dataclasses
import os
import shutil
import time

from mobilenet_sep import run_folder, zoo
from mobilenet_sep.data import DataOptions, load_dataset
from mobilenet_sep.distribute import make_strategy, worker_id
from mobilenet_sep.evaluate import Evaluator, per_example_loss
from mobilenet_sep.optimizer import build_optimizer, learning_rate_schedule
from mobilenet_sep.recipe import check_recipe, load_recipe


@dataclasses.dataclass
class TrainResult:
    """What a run produced; `metrics` is what the chief writes to metrics.json (on every worker)."""

    output_dir: str
    metrics: dict
    is_chief: bool
    best_model: str | None
    final_model: str | None


class Progress:
    """What the engine reports as it runs. This one ignores it all; the CLI draws bars and lines."""

    def start(self, plan):
        """plan: epochs, initial_epoch, steps_per_epoch, model, parameters, replicas, examples, ..."""

    def step(self, epoch, step, loss):
        """After each training step: 0-based epoch and step, the batch's loss."""

    def epoch_end(self, record):
        """After each epoch: its record in metrics.json's history."""


def model_from_recipe(recipe, **extra):
    """The recipe's [model]: its zoo `name` built with the table's other keys as overrides
    (`image_size` becomes `input_shape`), then `extra` (classes=10, include_top=False, ...)."""
    arguments = {key: value for key, value in recipe["model"].items() if key not in ("name", "image_size")}
    size = recipe["model"]["image_size"]
    if size:
        height, width = size if isinstance(size, list) else (size, size)
        arguments["input_shape"] = (height, width, 3)
    return zoo.load_model(recipe["model"]["name"], **{**arguments, **extra})


def _finetune_base(model, recipe):
    """Load the pretrained base into `model` by layer name; return the names of the layers it filled."""
    weights = recipe["finetune"]["weights"]
    if not weights:
        return set()
    try:
        base = model_from_recipe({**recipe, "model": {**recipe["model"], "include_top": False, "weights": weights}})
    except ValueError as error:
        if "model.include_top" not in str(error) and "model.weights" not in str(error):
            raise
        raise ValueError(
            f"The {recipe['model']['name']} builder takes no pretrained base weights. Received: finetune.weights={weights!r}"
        ) from None
    names = {layer.name for layer in base.layers if layer.weights}
    for name in names:
        model.get_layer(name).set_weights(base.get_layer(name).get_weights())
    return names


def _random_states(model):
    """The states of the model's seed generators (dropout): Keras does not put them in TF checkpoints."""
    return [variable.value for variable in model.variables if variable.path.endswith("seed_generator_state")]


def _statistics_sync(model, strategy):
    """A function that sets every replica's moving statistics (BatchNorm's) to their mean over replicas.

    Keras updates these non-trainable variables on each replica from its own batches and never
    reconciles them, so replicas drift apart and a saved model would keep replica 0's. Averaged at
    the end of each epoch they equal the moving average of the replica-averaged batch statistics.
    Call it while every layer is trainable: later, frozen layers' kernels are non-trainable too.
    """
    import tensorflow as tf

    statistics = [v.value for v in model.non_trainable_variables if v.dtype.startswith("float")]
    if strategy.num_replicas_in_sync == 1 or not statistics:
        return lambda: None

    def replica_sync():
        means = tf.distribute.get_replica_context().all_reduce("MEAN", [v.read_value() for v in statistics])
        for variable, mean in zip(statistics, means, strict=True):
            variable.assign(mean)

    @tf.function
    def sync():
        strategy.run(replica_sync)

    return sync


def _set_base_trainable(model, base_names, trainable):
    for layer in model.layers:
        if layer.name in base_names:
            layer.trainable = trainable


def train_step_function(model, optimizer, strategy, loss, global_batch):
    """The compiled training step `step(iterator) -> (loss, correct)`: each replica computes its
    gradients, the optimizer all-reduces and applies them; loss and correct count are summed."""
    import tensorflow as tf

    variables = model.trainable_variables

    def replica_step(inputs, labels):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            batch_loss = tf.nn.compute_average_loss(loss(labels, outputs), global_batch_size=global_batch)
            if model.losses:
                batch_loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        optimizer.apply_gradients(zip(tape.gradient(batch_loss, variables), variables, strict=True))
        predicted = tf.argmax(outputs, axis=-1, output_type=labels.dtype)
        return batch_loss, tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))

    @tf.function
    def step(iterator):
        batch_loss, correct = strategy.run(replica_step, args=next(iterator))
        return strategy.reduce("SUM", batch_loss, axis=None), strategy.reduce("SUM", correct, axis=None)

    return step


def recipe_datasets(recipe, input_shape):
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


class _Run:
    """One call of `train`: the model, data and files it works with, epoch by epoch."""

    def __init__(self, recipe, output_dir, strategy, progress):
        import keras
        import tensorflow as tf

        self.started = time.perf_counter()
        self.recipe, self.progress, self.strategy = recipe, progress, strategy
        self.output_dir = output_dir
        self.is_chief = strategy.extended.should_checkpoint

        settings = recipe["train"]
        keras.utils.set_random_seed(settings["seed"])
        input_shape = model_from_recipe(recipe).input_shape[1:]  # the data must fit the model's input
        self.train_data, self.test_data = recipe_datasets(recipe, input_shape)
        classes = self.train_data.num_classes
        if recipe["model"].get("classes", classes) != classes:
            raise ValueError(f"The dataset has {classes} classes. Received: model.classes={recipe['model']['classes']}")
        self.global_batch = settings["batch_size"]
        self.steps_per_epoch = self.train_data.num_examples // self.global_batch
        if settings["steps_per_epoch"]:
            self.steps_per_epoch = min(self.steps_per_epoch, settings["steps_per_epoch"])

        if self.is_chief:
            run_folder.check_writable(output_dir)
        latest = run_folder.check_same_run(output_dir, recipe)

        keras.utils.set_random_seed(settings["seed"])
        with strategy.scope():
            self.model = model_from_recipe(recipe, classes=classes)
            self.base_names = _finetune_base(self.model, recipe)
            self.sync_statistics = _statistics_sync(self.model, strategy)
            self.schedule = learning_rate_schedule(recipe, self.steps_per_epoch)
            self.optimizer = build_optimizer(recipe, self.model, self.schedule)
            self.finished_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="finished_epochs")
            checkpoint = tf.train.Checkpoint(
                model=self.model,
                optimizer=self.optimizer,
                finished_epochs=self.finished_epochs,
                random_states=_random_states(self.model),
            )
        if latest:
            try:
                checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as error:
                reason = " ".join(str(error).split())[:200]
                raise ValueError(
                    f"The checkpoint in the output directory does not fit this model ({reason}). "
                    f"Received: out={output_dir!r}"
                ) from None
        self.initial_epoch = int(self.finished_epochs.numpy())

        # From here on the run writes: the chief into output_dir, other workers into a scratch folder.
        self.write_dir = output_dir if self.is_chief else os.path.join(output_dir, f".worker-{worker_id(strategy)}")
        self.manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(self.write_dir, run_folder.CHECKPOINTS), max_to_keep=2
        )
        previous = run_folder.read_json(os.path.join(output_dir, run_folder.METRICS)) or {}
        self.history = [record for record in previous.get("history", []) if record["epoch"] <= self.initial_epoch]
        if self.is_chief:
            os.makedirs(output_dir, exist_ok=True)
            run_folder.write_json(
                os.path.join(output_dir, run_folder.RECIPE),
                {"recipe": recipe, "fingerprint": run_folder.fingerprint(recipe)},
            )
        self.log = run_folder.ScalarLog(os.path.join(output_dir, run_folder.LOGS), self.is_chief)
        self.loss = per_example_loss(self.model, classes, settings["label_smoothing"])
        self.evaluator = Evaluator(self.model, classes, strategy)
        self.test_batches = self.evaluator.distribute(self.test_data.dataset)

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
        """One epoch of `step` calls and an evaluation; its history record."""
        batches = self.train_data.epoch(epoch).take(self.steps_per_epoch)
        iterator = iter(self.evaluator.distribute(batches))
        start = time.perf_counter()
        loss_sum = correct = 0.0
        for index in range(self.steps_per_epoch):
            batch_loss, batch_correct = (float(value) for value in step(iterator))
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
            self.progress.step(epoch, index, batch_loss)
            if index == 0:  # throughput is measured from the second step: the first may compile the step
                steady_start = time.perf_counter()
        train_seconds = time.perf_counter() - start
        steady_seconds = time.perf_counter() - steady_start
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
            "wall_seconds": time.perf_counter() - start,
            "frozen_base": self.frozen(epoch),
        }

    def finish_epoch(self, record):
        """Record, keep the best model, then checkpoint: a kill between these steps loses nothing finished."""
        self.history.append(record)
        self.log.write(record)
        if self.is_chief:
            if record["test_top1"] >= max(entry["test_top1"] for entry in self.history):
                run_folder.save_model(self.model, os.path.join(self.output_dir, run_folder.BEST))
            run_folder.write_json(os.path.join(self.output_dir, run_folder.METRICS), self.summary(complete=False))
        self.finished_epochs.assign(record["epoch"])
        self.manager.save(checkpoint_number=record["epoch"])  # every worker takes part; the chief's copy stays
        if not self.is_chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)
        self.progress.epoch_end(record)

    def run(self):
        self.progress.start(self.plan())
        self.test_metrics, step, base_frozen = None, None, None
        for epoch in range(self.initial_epoch, self.recipe["train"]["epochs"]):
            if base_frozen != self.frozen(epoch):  # fine-tuning: the step is rebuilt when the base thaws
                base_frozen = self.frozen(epoch)
                _set_base_trainable(self.model, self.base_names, trainable=not base_frozen)
                step = train_step_function(self.model, self.optimizer, self.strategy, self.loss, self.global_batch)
            self.finish_epoch(self.train_epoch(epoch, step))
        if self.test_metrics is None:  # the run had already finished: measure the restored model again
            self.test_metrics = self.evaluator.run(self.test_batches)
        metrics = self.summary(complete=True)
        best, final = os.path.join(self.output_dir, run_folder.BEST), os.path.join(self.output_dir, run_folder.FINAL)
        if not self.is_chief:
            return TrainResult(self.output_dir, metrics, False, None, None)
        run_folder.save_model(self.model, final)
        run_folder.write_json(os.path.join(self.output_dir, run_folder.METRICS), metrics)
        return TrainResult(self.output_dir, metrics, True, best, final)

    def summary(self, complete):
        """metrics.json: the final test figures, the run's totals and the per-epoch history."""
        history, recipe = self.history, self.recipe
        train_seconds = sum(record["train_seconds"] for record in history)
        rates = [record["images_per_second"] for record in history]
        best = max(history, key=lambda record: record["test_top1"]) if history else None
        final = {}
        if complete:
            final = {key: self.test_metrics[key] for key in ("top1", "top5", "loss") if key in self.test_metrics}
        return {
            "complete": complete,
            **final,
            "model": self.model.name,
            "parameters": self.model.count_params(),
            "dataset": recipe["data"]["dataset"],
            "test_dataset": recipe["data"]["test_dataset"] or recipe["data"]["dataset"],
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
            "train_seconds": train_seconds,
            "images_per_second": sorted(rates)[len(rates) // 2] if rates else None,  # the median epoch
            "wall_seconds": time.perf_counter() - self.started,
            "history": history,
            **({"confusion_matrix": self.test_metrics["confusion_matrix"]} if complete else {}),
        }


def train(recipe, output_dir, strategy="default", progress=None):
    """Train as `recipe` says (a dict or a recipe file), writing into `output_dir`; a TrainResult.

    strategy: "default", "mirrored", "multi-worker" (needs TF_CONFIG) or a tf.distribute.Strategy.
    Bad input (recipe, data, output folder, a checkpoint of another run) raises ValueError before
    anything in `output_dir` changes.
    """
    recipe = check_recipe(recipe) if isinstance(recipe, dict) else load_recipe(recipe)
    strategy = make_strategy(strategy) if isinstance(strategy, str) else strategy
    output_dir = os.path.abspath(os.fspath(output_dir))
    return _Run(recipe, output_dir, strategy, progress or Progress()).run()
