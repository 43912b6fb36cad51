"""How numbers read in the report: accuracies in percent, losses to four places, p-values to two digits."""

from __future__ import annotations

import math
import re

from tabulate import tabulate

from ..stats import Summary

DASH = "–"


def is_accuracy(metric: str) -> bool:
    return metric.endswith("_acc")


def metric_range(metric: str) -> tuple[float, float]:
    """What a metric can reach: an accuracy lies in [0, 1], a loss is at least 0."""
    return (0.0, 1.0) if is_accuracy(metric) else (0.0, math.inf)


def fmt(metric: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return DASH
    return f"{100 * value:.2f}%" if is_accuracy(metric) else f"{value:.4f}"


def fmt_spread(metric: str, value: float | None) -> str:
    """`fmt`, with two significant digits where the fixed places would show a spread that is not 0 as 0."""
    text = fmt(metric, value)
    if value and not any(c in "123456789" for c in text):
        return f"{100 * value:.1e}%" if is_accuracy(metric) else f"{value:.1e}"
    return text


def fmt_diff(metric: str, value: float) -> str:
    if math.isnan(value):
        return DASH
    return f"{100 * value:+.2f} pp" if is_accuracy(metric) else f"{value:+.4f}"


def fmt_interval(metric: str, low: float, high: float, diff: bool = False) -> str:
    if math.isnan(low):
        return DASH
    show = fmt_diff if diff else fmt
    return f"[{show(metric, low)}, {show(metric, high)}]"


def fmt_p(p: float) -> str:
    return DASH if math.isnan(p) else f"{p:.2g}"


def fmt_runs(value: float) -> str:
    """A run count from `stats.runs_needed`: '–' where none could be computed."""
    return DASH if math.isnan(value) else f"{value:.0f}"


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


def headline_metric(exp) -> str:
    return exp.published["metric"] if exp.published else "test_acc"


def table(rows: list[list], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
