"""The sources of randomness a run can seed one by one, and the seed each gets (`--vary`, docs/variance.md)."""

from __future__ import annotations

# The sources of randomness a run can seed one by one (`--vary`): the model's initial weights, the
# train/valid/test split, the loaders' shuffling order, the draws made while training (dropout masks),
# and one ulp added after initialisation to one weight that its seed picks.
SOURCES = ("init", "split", "order", "dropout", "bit")
# What `--vary` takes: a source; `kernels`, CUDA's nondeterministic kernels allowed (every seed at the
# base); `none`, every seed at the base (reruns, whose spread must be 0 where kernels are deterministic).
VARIED = (*SOURCES, "kernels", "none")
SEED_COLUMNS = tuple(f"seed_{source}" for source in SOURCES)


def source_seeds(vary: str, base_seed: int, seed: int) -> dict[str, int | None]:
    """Each source's seed in a run that varies `vary` with `seed`, the others at `base_seed`. No ulp is
    added (bit None) unless the bit is what varies."""
    seeds: dict[str, int | None] = {source: base_seed for source in SOURCES}
    seeds["bit"] = None
    if vary in SOURCES:
        seeds[vary] = seed
    return seeds
