"""The compiled pieces of a training run: the distributed step, BatchNorm statistics kept in sync
across replicas, and the random states a checkpoint must hold for exact resume."""

from mobilenet_sep.zoo.inference_model import check_trainable


def random_states(model):
    """The states of the model's seed generators (dropout): Keras does not put them in TF checkpoints."""
    return [variable.value for variable in model.variables if variable.path.endswith("seed_generator_state")]


def statistics_sync(model, strategy):
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


def set_trainable(model, layer_names, trainable):
    """Freeze (or thaw) the named layers: fine-tuning's pretrained base."""
    for layer in model.layers:
        if layer.name in layer_names:
            layer.trainable = trainable


def train_step_function(model, optimizer, strategy, loss, global_batch):
    """The compiled training step `step(iterator) -> (loss, correct)`: each replica computes its
    gradients, the optimizer all-reduces and applies them; loss and correct count are summed.
    An inference-only model (`mobilenet_sep.fuse`) is refused with a one-line error."""
    import tensorflow as tf

    check_trainable(model)
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
