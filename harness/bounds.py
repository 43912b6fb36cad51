"""Limits on what the command line, the registry and the results files may ask for.

A value beyond these is refused before anything is allocated: no one means a trillion seeds or a
hundred million epochs, and a typo of that size would otherwise run until the machine gives out.
"""

from __future__ import annotations

import os
import re

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
MAX_CPUS_PER_TASK = 1024  # Ray cells: more than any one node holds would wait for ever as unschedulable


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


def parse_seeds(text: str) -> list[int]:
    """'0-4', '0,3,7' or a mix ('0-2,9') into a sorted list without repeats, within the bounds.

    The count is known from the ranges before any list is built, so an absurd range costs nothing.
    """
    ranges = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if not m:
            raise HarnessError(f"--seeds: {clipped(part)!r} is not a seed or range; use forms like 0-4 or 0,3,7")
        # Length first: int() refuses numbers of more than 4300 digits with an error of its own.
        if any(len(g) > len(str(MAX_SEED)) or int(g) > MAX_SEED for g in m.groups() if g):
            raise HarnessError(f"--seeds: {clipped(part)!r} goes beyond the largest seed, {MAX_SEED} (2**32 - 1, what NumPy takes)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise HarnessError(f"--seeds: range {part!r} runs backwards; write it as {hi}-{lo}")
        ranges.append(range(lo, hi + 1))
    if sum(map(len, ranges)) > MAX_SEEDS:  # repeats counted too: this bounds the work of listing them
        raise HarnessError(f"--seeds {clipped(text)!r} names more than {MAX_SEEDS} seeds; run at most {MAX_SEEDS} at a time")
    return sorted({seed for r in ranges for seed in r})


def clipped(text: str, width: int = 40) -> str:
    """User input quoted in a message, cut short: an error line stays one readable line."""
    return text if len(text) <= width else text[: width - 3] + "..."
