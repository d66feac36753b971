"""Inference-only models: what `mobilenet_sep.fuse` returns, and the one check that refuses to train them.

The class sits in the zoo, below training and export, so that `load_model` revives it
(safe_mode) and the training engine can refuse it without importing export.
"""

import keras


@keras.saving.register_keras_serializable(package="mobilenet_sep")
class InferenceModel(keras.Model):
    """A functional model for inference only: BatchNorm folded into its convolutions, dropout gone.

    Training it would train a different network (no batch statistics, no dropout), so Keras'
    `fit` / `train_on_batch` and the training engine refuse it. `fusion` says how it was
    made: the source model, each (convolution, BatchNorm) pair folded, the layers left as
    they were, the layers removed; it is saved in the `.keras` file.
    """

    fusion: dict | None = None

    def train_step(self, *args, **kwargs):
        check_trainable(self)

    def get_config(self):
        return {**super().get_config(), "fusion": self.fusion}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        fusion = config.pop("fusion", None)
        model = super().from_config(config, custom_objects)
        model.fusion = fusion
        return model


def is_inference_only(model) -> bool:
    """True for models that must not be trained (see `InferenceModel`)."""
    return isinstance(model, InferenceModel)


def check_trainable(model) -> None:
    """A one-line ValueError for an inference-only model; nothing for any other."""
    if is_inference_only(model):
        raise ValueError(
            f"{model.name} is inference-only (BatchNorm folded into its convolutions, dropout removed) "
            f"and cannot be trained; train the original model, then fuse it. Received: model={model.name!r}"
        )
