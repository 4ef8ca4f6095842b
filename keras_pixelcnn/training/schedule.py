"""The cosine learning-rate schedule of a run, with a new cycle each time the run is trained longer.

`kpixel fit --lr-schedule cosine` decays the learning rate from its peak to 0 over the run's
steps. Re-running a finished (or stopped) run with a larger `--epochs` starts a new cosine cycle
at the first epoch trained after the extension, from the peak down to 0 at the new last epoch:
a warm restart (SGDR: Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm
Restarts", ICLR 2017). The epochs already trained keep the schedule they were trained with, and
each segment ends annealed, so the model at the end of every extension is a finished cosine run
of its own. Re-spreading one cosine over the new total instead would make the rate jump from
about 0 back to a mid-cycle value, and the result would still not be a plain run of the new
length, since the first epochs followed the shorter curve.
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class CosineCycles(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine decay to 0 within each cycle `[boundaries[i], boundaries[i + 1])` of steps.

    With one cycle, `CosineCycles(lr, [0, n])` is `keras.optimizers.schedules.CosineDecay(lr, n)`.
    Steps past the last boundary stay at 0.

    Args:
        initial_learning_rate: the peak rate, at the first step of every cycle.
        boundaries: increasing step counts, from 0 to the total number of steps.

    Example:
        >>> schedule = CosineCycles(1e-3, [0, 100, 300])  # 100 steps, then 200 more
        >>> float(schedule(100))  # the second cycle starts at the peak
        0.001
    """

    def __init__(self, initial_learning_rate, boundaries, name="CosineCycles"):
        boundaries = [int(step) for step in boundaries]
        if len(boundaries) < 2 or boundaries[0] != 0 or any(b <= a for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError(f"Expected boundaries increasing from 0, at least two. Received: boundaries={boundaries}")
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.boundaries = boundaries
        self.name = name

    def __call__(self, step):
        dtype = "float32"
        step = ops.cast(step, dtype)
        starts = ops.convert_to_tensor(self.boundaries[:-1], dtype)
        lengths = ops.convert_to_tensor([b - a for a, b in zip(self.boundaries, self.boundaries[1:])], dtype)
        # The cycle holding `step`: how many later cycles have started (the last one holds what follows).
        cycle = ops.sum(ops.cast(ops.greater_equal(step, starts[1:]), "int32"))
        length = ops.take(lengths, cycle)
        # As keras' CosineDecay (alpha = 0), on the step counted from the cycle's start.
        local = ops.minimum(step - ops.take(starts, cycle), length)
        completed_fraction = local / length
        cosine_decayed = 0.5 * (1.0 + ops.cos(ops.array(math.pi, dtype) * completed_fraction))
        return ops.multiply(ops.cast(self.initial_learning_rate, dtype), cosine_decayed)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "boundaries": self.boundaries,
                "name": self.name}


def cosine_boundaries(epochs, steps_per_epoch, extended_at=()):
    """Cycle boundaries in steps for a run of `epochs`, extended after each epoch count in `extended_at`."""
    starts = sorted({int(epoch) for epoch in extended_at if 0 < int(epoch) < epochs})
    return [0] + [epoch * steps_per_epoch for epoch in starts] + [epochs * steps_per_epoch]
