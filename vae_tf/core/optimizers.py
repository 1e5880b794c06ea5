"""Adam with TensorFlow's fused update kernel (the same arithmetic in one op per weight),
and the staged learning rate schedule of the IWAE paper.

Keras's Adam updates each weight with about fifteen element-wise ops (read, subtract,
multiply, assign, ...). On a CPU their dispatch and memory traffic cost more than the
arithmetic: `vae-tf benchmark` measured the MLP VAE training about 10% faster with the
fused kernel (docs/guides/performance.md).
"""

LR_SCHEDULES = ("constant", "staged")  # "staged": `StagedDecay`, the IWAE paper's
ADAM_EPSILON = 1e-7  # Keras's default

import keras
import tensorflow as tf

from vae_tf.runtime import compat


@keras.saving.register_keras_serializable(package="vae_tf")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose dense updates run as `ResourceApplyAdam`.

    The kernel computes Keras's update (m and v moving averages, bias correction folded
    into the step size, epsilon added to sqrt(v)), so training follows the same path
    up to float rounding. AMSGrad and sparse gradients take Keras's own update.

    Example:

    >>> model.compile(optimizer=FusedAdam(learning_rate=1e-3))
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        momentum, velocity = compat.adam_slots(self, variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=momentum.value.handle,
            v=velocity.value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


@keras.saving.register_keras_serializable(package="vae_tf")
class StagedDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate schedule of Burda, Grosse & Salakhutdinov (2016), "Importance
    Weighted Autoencoders", section 5: stage i (i = 0, 1, ..., `stages` - 1) lasts
    3^i passes over the training set at `initial_learning_rate` * 10^(-i/7).

    With the paper's 8 stages that is 3,280 passes, from 1e-3 down to 1e-3 * 10^(-1);
    after the last stage the rate stays at the last stage's.

    Args:
        initial_learning_rate: float. The rate of stage 0.
        steps_per_pass: int. Optimizer steps in one pass over the training set.
        stages: int. Number of stages. Defaults to 8, the paper's.

    Example:

    >>> schedule = StagedDecay(1e-3, steps_per_pass=600)
    >>> float(schedule(600))  # pass 1 is in stage 1
    0.000719...
    """

    def __init__(self, initial_learning_rate, steps_per_pass, stages=8):
        if not initial_learning_rate > 0:
            raise ValueError(f"initial_learning_rate must be > 0, got {initial_learning_rate}")
        if not isinstance(steps_per_pass, int) or steps_per_pass < 1:
            raise ValueError(f"steps_per_pass must be an integer >= 1, got {steps_per_pass}")
        if not isinstance(stages, int) or stages < 1:
            raise ValueError(f"stages must be an integer >= 1, got {stages}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.steps_per_pass = steps_per_pass
        self.stages = stages

    @staticmethod
    def stage_ends(stages=8):
        """The number of passes at the end of each stage: 1, 4, 13, 40, ... ((3^(i+1) - 1) / 2)."""
        return tuple((3 ** (i + 1) - 1) // 2 for i in range(stages))

    def __call__(self, step):
        passes = tf.cast(step, tf.int64) // self.steps_per_pass
        # Integer comparisons with the stage ends: no rounding at a stage boundary.
        ends = tf.constant(self.stage_ends(self.stages)[:-1], tf.int64)
        stage = tf.reduce_sum(tf.cast(passes >= ends, tf.float32))
        return self.initial_learning_rate * tf.pow(10.0, -stage / 7.0)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "steps_per_pass": self.steps_per_pass, "stages": self.stages}
