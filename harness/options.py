"""How a run is carried out beyond its recipe: where the data lives, quick-run overrides, the seeding scheme.
Plain data, shared by the engines, the runner, `validate` and `bench`."""

from __future__ import annotations

from dataclasses import dataclass

from .bounds import OVERRIDE_LIMITS, clipped
from .errors import HarnessError
from .seeds import VARIED, source_seeds


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out, beyond the registry: where data lives and quick-run overrides."""

    data_dir: str | None = None
    mirror: str | None = None
    epochs: int | None = None  # overrides the recipe: the row is not faithful
    train_limit: int | None = None  # first N training samples only: not faithful either
    eval_limit: int | None = None  # evaluate on the first N samples of each split only: not faithful
    save_weights: bool = False  # keep each run's final state_dict at <results-dir>/weights/<run_id>.pt
    # None: the tutorials' scheme, one `torch.manual_seed(seed)` drawing everything in their order. Else the
    # source (one of VARIED) that the run's seed drives, each other source seeded with `base_seed`: not faithful.
    vary: str | None = None
    base_seed: int = 0

    def __post_init__(self):
        if self.vary is not None and self.vary not in VARIED:
            raise HarnessError(f"--vary: unknown source {clipped(self.vary)!r}; choose from {', '.join(VARIED)}")

    @property
    def overrides(self) -> dict:
        named = {key: getattr(self, key) for key in OVERRIDE_LIMITS}  # the options a row's `overrides` may name
        if self.vary is not None:
            named.update(vary=self.vary, base_seed=self.base_seed)
        return {k: v for k, v in named.items() if v is not None}

    def seeds_of(self, seed: int) -> dict[str, int | None] | None:
        """The run's seed per source; None under the tutorials' single seed."""
        return None if self.vary is None else source_seeds(self.vary, self.base_seed, seed)

    def epochs_for(self, experiment) -> int:
        return self.epochs or experiment.training["epochs"]
