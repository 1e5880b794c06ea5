"""The KL weight schedule a variational model trains with (`VAE.training_callbacks`)."""

import keras


class BetaSchedule(keras.callbacks.Callback):
    """Sets the KL weight each epoch (linear warm-up from 0) and logs it as `beta`.

    With `warmup_epochs=N`, epoch e (from 0) trains with beta * min(1, e / N), so the
    full weight is reached at epoch N; with 0 the weight stays at `beta`.

    Args:
        beta: float. Final KL weight, >= 0.
        warmup_epochs: int. Length of the linear warm-up, >= 0. Defaults to 0.

    Example:

    >>> model.fit(data, epochs=20, callbacks=[BetaSchedule(1.0, warmup_epochs=5)])
    """

    def __init__(self, beta, warmup_epochs=0):
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs}")
        self.beta = float(beta)
        self.warmup_epochs = warmup_epochs

    def value(self, epoch):
        if self.warmup_epochs == 0:
            return self.beta
        return self.beta * min(1.0, epoch / self.warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.beta.assign(self.value(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = float(self.model.beta.numpy())
