"""How numbers read in the report: a metric's values as the catalogue formats them (accuracies in percent,
losses to four places), p-values to two digits, tables."""

from __future__ import annotations

import re

from tabulate import tabulate

from ..catalogue import DASH, fmt
from ..stats import Summary


def mean_std(metric: str, s: Summary) -> str:
    if s.n == 0:
        return DASH
    return fmt(metric, s.mean) + ("" if s.n == 1 else f" ± {fmt(metric, s.std)}")


def spread(s: Summary, pattern: str) -> str:
    """Mean ± standard deviation in a pattern of the caller's ('{:.1f} s')."""
    if s.n == 0:
        return DASH
    return pattern.format(s.mean) + ("" if s.n == 1 else " ± " + pattern.format(s.std))


def short_source(source: str) -> str:
    """'T1 "..." (...), #7' -> 'T1 #7'; other sources as written."""
    m = re.match(r"(T\d+)\b.*?(#[\w\-]+)?\s*(\(.*\))?$", source)
    return " ".join(p for p in (m.group(1), m.group(2)) if p) if m else source


def table(rows: list[list], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
