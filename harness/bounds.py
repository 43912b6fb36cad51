"""Limits on what the command line, the registry and the results files may ask for.

A value beyond these is refused before anything is allocated: no one means a trillion seeds or a
hundred million epochs, and a typo of that size would otherwise run until the machine gives out.
"""

from __future__ import annotations

import os

from .errors import HarnessError

# Seeds reach torch.manual_seed (which takes up to 2**64 - 1) and, for iris, NumPy's RandomState
# through sklearn's random_state, which takes 0 to 2**32 - 1: the narrower range holds for every recipe.
MAX_SEED = 2**32 - 1
MAX_SEEDS = 1000  # seeds in one invocation
MAX_EPOCHS = 100_000  # the longest recipe trains 2000
MAX_SAMPLES = 1_000_000  # --train-limit / --eval-limit; the largest training set holds 60000
# The quick-run overrides `harness run` takes, as a row's `overrides` names them, and their bounds.
OVERRIDE_LIMITS = {"epochs": MAX_EPOCHS, "train_limit": MAX_SAMPLES, "eval_limit": MAX_SAMPLES}
MAX_BENCH_STEPS = 100_000
MAX_BENCH_REPEATS = 1000  # --repeats and --warmup


def usable_cpus() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_count(name: str, value: int | None, most: int, *, least: int = 1) -> None:
    """Refuse an option's integer outside [least, most] (None: not given)."""
    if value is None:
        return
    if value < least:
        kind = "a positive integer" if least == 1 else f"{least} or more"
        raise HarnessError(f"{name} must be {kind}, got {value}")
    if value > most:
        raise HarnessError(f"{name} {value} is beyond what a run can mean; allowed: {least} to {most}")
