"""TensorFlow's own operation count of a model: the independent cross-check of `profiler`'s counts."""


def tensorflow_float_ops(model) -> dict[str, tuple[str, int]]:
    """TensorFlow's own count, an independent cross-check: {graph op name: (op type, float ops)}.

    Freezes a tf.function of the model at batch 1 to a graph and profiles it with
    `tf.compat.v1.profiler` and `ProfileOptionBuilder.float_operation()`, the
    classic recipe. TensorFlow counts 2 float ops per multiply-add and also counts
    BiasAdd, BatchNorm's mul and add, Softmax, ... as ops of their own: its Conv2D,
    DepthwiseConv2dNative and MatMul ops compare with our rows' `flops`.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((1, *model.inputs[0].shape[1:]), model.inputs[0].dtype)
    function = tf.function(lambda inputs: model(inputs, training=False)).get_concrete_function(spec)
    graph_def = convert_variables_to_constants_v2(function).graph.as_graph_def()
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        options = builder(builder.float_operation()).with_empty_output().build()
        root = tf.compat.v1.profiler.profile(graph, options=options, cmd="scope")
    op_types = {node.name: node.op for node in graph_def.node}
    counts, pending = {}, [root]
    while pending:
        node = pending.pop()
        pending.extend(node.children)
        if node.float_ops and node.name in op_types:
            counts[node.name] = (op_types[node.name], node.float_ops)
    return counts
