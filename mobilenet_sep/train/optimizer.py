"""The optimizer a recipe asks for: RMSprop (the paper's), SGD or Adam, warm-up + cosine learning rate,
and weight decay that spares depthwise kernels unless asked (the paper: little or no decay on them).
"""

import math

import keras

from mobilenet_sep.layers import DepthwiseConv

OPTIMIZER_CLASSES = {"rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}
DEPTHWISE_LAYERS = (DepthwiseConv, keras.layers.DepthwiseConv2D)


@keras.saving.register_keras_serializable(package="mobilenet_sep")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak`, then cosine decay to `final_fraction * peak` at `total_steps`.

    From `scaled_from_step` on, the rate is multiplied by `scale`: fine-tuning unfreezes the base
    network there and continues with a lower rate. `decay="constant"` keeps `peak` after warm-up.
    """

    def __init__(
        self, peak, total_steps, warmup_steps=0, final_fraction=0.0, decay="cosine", scaled_from_step=0, scale=1.0
    ):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_fraction = float(final_fraction)
        self.decay = decay
        self.scaled_from_step = int(scaled_from_step)
        self.scale = float(scale)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = max(self.warmup_steps, 1)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = keras.ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        decayed = self.final_fraction + (1.0 - self.final_fraction) * cosine if self.decay == "cosine" else 1.0
        rate = keras.ops.where(step < self.warmup_steps, (step + 1.0) / warmup, decayed) * self.peak
        return keras.ops.where(step >= self.scaled_from_step, rate * self.scale, rate)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_fraction": self.final_fraction,
            "decay": self.decay,
            "scaled_from_step": self.scaled_from_step,
            "scale": self.scale,
        }


def learning_rate_schedule(recipe, steps_per_epoch):
    """The recipe's schedule over `train.epochs` epochs of `steps_per_epoch` steps."""
    schedule, finetune = recipe["schedule"], recipe["finetune"]
    frozen = finetune["freeze_base"] and finetune["frozen_epochs"] > 0
    return WarmupCosine(
        peak=recipe["optimizer"]["learning_rate"],
        total_steps=recipe["train"]["epochs"] * steps_per_epoch,
        warmup_steps=round(schedule["warmup_epochs"] * steps_per_epoch),
        final_fraction=schedule["final_fraction"],
        decay=schedule["decay"],
        scaled_from_step=finetune["frozen_epochs"] * steps_per_epoch if frozen else 0,
        scale=finetune["unfrozen_learning_rate_scale"] if frozen else 1.0,
    )


def depthwise_kernels(model):
    """The depthwise kernels of a model, however deeply their layers are nested."""
    return [layer.kernel for layer in model._flatten_layers() if isinstance(layer, DEPTHWISE_LAYERS)]


def build_optimizer(recipe, model, schedule):
    """The Keras optimizer of `recipe["optimizer"]` following `schedule`, built for all of `model`'s weights.

    Keys other than name, learning_rate and the weight-decay ones go to the Keras class
    (RMSprop: rho, momentum, epsilon; SGD: momentum, nesterov; Adam: beta_1, beta_2, epsilon).
    Call it inside the strategy scope; it is built before any layer is frozen so that
    checkpoints hold the same slots in every fine-tuning phase.
    """
    settings = dict(recipe["optimizer"])
    name = settings.pop("name")
    settings.pop("learning_rate")
    weight_decay = settings.pop("weight_decay")
    decay_depthwise = settings.pop("decay_depthwise")
    excluded_names = settings.pop("weight_decay_exclude")
    try:
        optimizer = OPTIMIZER_CLASSES[name](
            learning_rate=schedule,
            weight_decay=weight_decay or None,
            **settings,
        )
    except (TypeError, ValueError) as error:
        message = " ".join(str(error).split())[:200]
        extra = ", ".join(f"optimizer.{key}={value!r}" for key, value in settings.items())
        raise ValueError(f"The {name} optimizer rejects a setting: {message}. Received: {extra}") from None
    if weight_decay:
        optimizer.exclude_from_weight_decay(
            var_list=[] if decay_depthwise else depthwise_kernels(model), var_names=excluded_names or None
        )
    optimizer.build(model.trainable_variables)
    return optimizer
