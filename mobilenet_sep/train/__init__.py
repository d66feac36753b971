"""Training: the engine (one loop for every tf.distribute strategy, exact resume), its compiled steps,
recipes, the optimizer and schedule, the run folder, tf.distribute strategies, evaluation and its plot."""
