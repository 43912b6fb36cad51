"""Training engines: the same recipe and numbers, obtained different ways.

- `reference`: the tutorials' own loops (per-sample transforms, DataLoader with shuffling).
- `fast`: the dataset pre-processed once into tensors on the run's device, batches taken with the
  permutation the reference DataLoader would draw; bit-identical to `reference` on the CPU.

Every engine is a function `(experiment, seeds, device, options) -> list[RunOutcome]`, one outcome
per seed, in the order given.
"""

from __future__ import annotations

from . import fast, reference

ENGINES = {
    "reference": reference.run,
    "fast": fast.run,
}
# Engines that train several seeds in one call; the others get one seed at a time.
MULTI_SEED_ENGINES: set[str] = set()
