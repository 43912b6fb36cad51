"""`harness check`: do the recorded results meet the thresholds the registry declares?

A threshold is a minimum of the mean over seeds of one metric, for faithful runs that finished (the
latest row of each cell counts). An experiment with thresholds but no faithful rows fails: a check
that cannot see its results does not pass.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .results import ResultsStore, is_current, latest_rows


def threshold_failures(registry: dict, results_dir: Path | str) -> list[str]:
    rows = latest_rows(ResultsStore(results_dir).rows())
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row["faithful"] == "true" and row["experiment"] in registry:
            if is_current(row, registry[row["experiment"]]):
                groups[(row["experiment"], row["device"], row["engine"])].append(row)
    failures = []
    for exp in registry.values():
        if not exp.thresholds:
            continue
        mine = {k: v for k, v in groups.items() if k[0] == exp.id}
        if not mine:
            failures.append(f"{exp.id}: no faithful results for the current recipe (config {exp.config_hash()}); run `harness run {exp.id}`")
            continue
        for (exp_id, device, engine), group in sorted(mine.items()):
            bad = [r for r in group if r["status"] != "ok"]
            if bad:
                failures.append(f"{exp_id} [{device}, {engine}]: {len(bad)} of {len(group)} run(s) ended {bad[0]['status']}: {bad[0]['message']}")
                continue
            for metric, minimum in exp.thresholds.items():
                values = [float(r[metric]) for r in group if r[metric] != ""]
                mean = sum(values) / len(values) if values else math.nan
                if not values or not mean >= minimum:
                    failures.append(
                        f"{exp_id} [{device}, {engine}]: mean {metric} {mean:.4f} over {len(values)} seed(s) is below the threshold {minimum}"
                    )
    return failures
