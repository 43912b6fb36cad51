"""Training engines: the same recipe and numbers, obtained different ways.

- `reference`: the tutorials' own loops (per-sample transforms, DataLoader with shuffling).
- `fast`: the dataset pre-processed once into tensors on the run's device, batches taken with the
  permutation the reference DataLoader would draw; bit-identical to `reference` on the CPU. On CUDA
  each step is replayed from a CUDA graph.
- `multiseed`: the seeds of one experiment trained together as one batched model (`torch.func.vmap`),
  each with its own weights, split, shuffling order, dropout masks and optimiser state.
- `script`: a script recipe's script run unchanged per seed as a subprocess, its printed figures read.

Every engine is a function `(experiment, seeds, device, options) -> list[RunOutcome]`, one outcome
per seed, in the order given.
"""

from __future__ import annotations

from . import fast, multiseed, reference, script

ENGINES = {
    "reference": reference.run,
    "fast": fast.run,
    "multiseed": multiseed.run,
    "script": script.run,
}
SCRIPT_ENGINE = "script"  # the engine of script recipes, and theirs only


def default_engine(experiment) -> str:
    """The engine a recipe runs on when none is asked for: fast, or script for a script recipe."""
    return SCRIPT_ENGINE if experiment.script else "fast"


# Engines that train several seeds in one call; the others get one seed at a time.
MULTI_SEED_ENGINES: set[str] = {"multiseed"}
