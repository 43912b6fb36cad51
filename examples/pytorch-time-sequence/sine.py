"""The data of pytorch/examples' time_sequence_prediction: generate_sine_wave.py's 100 sine waves of 1000
steps (period 2*pi*20), each shifted by a random whole number of steps in [-80, 80) drawn from NumPy's
seed 2, in float64. train.py trains on waves 3 to 99 and tests on waves 0 to 2, the inputs each wave but
its last value and the targets each wave but its first: every step predicts the next."""

import numpy as np


def waves(samples: int = 100, length: int = 1000, period: float = 20.0, shift_seed: int = 2, tested: int = 3) -> dict:
    shift = int(4 * period)
    # RandomState(2) draws as generate_sine_wave.py's np.random.seed(2) then np.random.randint do.
    starts = np.random.RandomState(shift_seed).randint(-shift, shift, samples).reshape(samples, 1)
    steps = np.arange(length) + starts
    data = np.sin(steps / 1.0 / period).astype("float64")
    inputs, targets = data[:, :-1], data[:, 1:]
    return {"train": (inputs[tested:], targets[tested:]), "test": (inputs[:tested], targets[:tested])}
