"""The report's environment section: where and with what the counted runs were made."""

from __future__ import annotations

import pandas as pd

from .formatting import table

ENV_COLUMNS = ["host", "device", "device_name", "torch_version", "python_version", "git_commit", "threads"]


def environment_section(runs: pd.DataFrame, registry: dict) -> list[str]:
    lines = ["## Environment", ""]
    env = runs[ENV_COLUMNS].astype(str).replace({"nan": "", "": "?"})
    combos = env.value_counts(sort=False).reset_index(name="runs")
    lines += [table(combos.values.tolist(), [*ENV_COLUMNS, "runs"]), ""]
    checksums = runs.assign(dataset=[registry[e].data["dataset"] for e in runs["experiment"]])
    md5 = checksums.groupby(["dataset", "dataset_md5"]).size().reset_index(name="runs")
    lines += ["Dataset checksums (`dataset_md5`) the runs were trained on:", "",
              table(md5.values.tolist(), ["dataset", "dataset_md5", "runs"]), ""]
    mixed = []
    for column in ("torch_version", "python_version", "git_commit", "threads"):
        values = sorted(env[column].unique())
        if len(values) > 1:
            mixed.append(f"{column} ({', '.join(values)})")
    for device, names in env.groupby("device")["device_name"].unique().items():
        if len(names) > 1:
            mixed.append(f"device_name for {device} ({', '.join(sorted(names))})")
    for dataset, sums in md5.groupby("dataset")["dataset_md5"].unique().items():
        if len(sums) > 1:
            mixed.append(f"dataset_md5 of {dataset} ({', '.join(sorted(s or '?' for s in sums))})")
    if mixed:
        lines += ["**Mixed environment**: the runs differ in " + "; ".join(mixed) +
                  ". Numbers pooled across them may not be comparable.", ""]
    else:
        lines += ["All runs share one environment (torch, Python, commit, thread count, device names, data).", ""]
    dirty = sorted({c for c in env["git_commit"] if c.endswith("+dirty")})
    if dirty:
        lines += [f"**Uncommitted code**: runs from {', '.join(dirty)} were made with changes not in any commit.", ""]
    return lines


