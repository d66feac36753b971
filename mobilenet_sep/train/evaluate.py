"""How well a classifier does on a dataset: top-1, top-5 (more than 5 classes), loss, confusion matrix.

One evaluation step serves the command `mobilenet-sep evaluate` and every epoch of training, on
any tf.distribute strategy: each replica sums its counts, the strategy adds them up.
"""

import keras
import numpy as np


def outputs_are_logits(model):
    """False when the model ends in a softmax (the zoo's default), True for raw scores."""
    last = model.layers[-1]
    return not (
        isinstance(last, keras.layers.Softmax) or getattr(last, "activation", None) is keras.activations.softmax
    )


def per_example_loss(model, num_classes, label_smoothing=0.0):
    """Cross-entropy per example from integer labels, for the model's kind of output."""
    import tensorflow as tf

    from_logits = outputs_are_logits(model)

    def loss(labels, outputs):
        targets = tf.one_hot(labels, num_classes)
        return keras.losses.categorical_crossentropy(
            targets, outputs, from_logits=from_logits, label_smoothing=label_smoothing
        )

    return loss


class Evaluator:
    """A compiled evaluation step for one model under one strategy, run over whole datasets."""

    def __init__(self, model, num_classes, strategy=None):
        import tensorflow as tf

        output_size = model.output_shape[-1]
        if output_size != num_classes:
            raise ValueError(
                f"The model has {output_size} outputs but the dataset has {num_classes} classes. "
                f"Received: num_classes={num_classes}"
            )
        self.strategy = strategy or tf.distribute.get_strategy()
        self.num_classes = num_classes
        loss = per_example_loss(model, num_classes)
        top_k = min(5, num_classes)

        def replica_sums(inputs, labels):
            outputs = model(inputs, training=False)
            scores = tf.cast(outputs, tf.float32)
            predicted = tf.argmax(scores, axis=-1, output_type=labels.dtype)
            return {
                "loss": tf.reduce_sum(loss(labels, outputs)),
                "top1": tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32)),
                "top5": tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, scores, top_k), tf.float32)),
                "count": tf.cast(tf.size(labels), tf.float32),
                "confusion": tf.math.confusion_matrix(labels, predicted, num_classes, dtype=tf.float32),
            }

        @tf.function(reduce_retracing=True)  # one trace for full and partial batches
        def step(inputs, labels):
            sums = self.strategy.run(replica_sums, args=(inputs, labels))
            return {key: self.strategy.reduce("SUM", value, axis=None) for key, value in sums.items()}

        self._step = step

    def distribute(self, dataset):
        """The dataset split across the strategy's replicas (a no-op for the default strategy)."""
        return distribute_dataset(self.strategy, dataset)

    def run(self, distributed_dataset):
        """{top1, top5 (more than 5 classes), loss, examples, confusion_matrix} over one pass."""
        totals = None
        for inputs, labels in distributed_dataset:
            sums = {key: value.numpy() for key, value in self._step(inputs, labels).items()}
            totals = sums if totals is None else {key: totals[key] + sums[key] for key in totals}
        if totals is None or totals["count"] == 0:
            raise ValueError("The evaluation dataset is empty. Received: examples=0")
        count = totals["count"]
        metrics = {"top1": float(totals["top1"] / count), "loss": float(totals["loss"] / count)}
        if self.num_classes > 5:
            metrics["top5"] = float(totals["top5"] / count)
        metrics["examples"] = int(count)
        metrics["confusion_matrix"] = np.rint(totals["confusion"]).astype(int).tolist()
        return metrics


def distribute_dataset(strategy, dataset):
    """Split batches across replicas; shard by element so any source works on many workers."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def evaluate(model, loaded_dataset, strategy=None):
    """Metrics of `model` (a Keras classifier) on a LoadedDataset, plus its class names."""
    evaluator = Evaluator(model, loaded_dataset.num_classes, strategy)
    metrics = evaluator.run(evaluator.distribute(loaded_dataset.dataset))
    metrics["class_names"] = list(loaded_dataset.class_names)
    return metrics
