"""The benchmark's bookkeeping (no timing is asserted: machines are noisy)."""

import csv
import math
from functools import partial

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from harness import bench
from harness.bench import Measurement, speedup
from harness.bench import _speedup_text as markdown_ratio
from harness.cli import main
from harness.engines import ENGINES


def test_speedups_are_the_median_per_round_ratio_over_reference():
    # Four rounds; the machine slows in the third (both engines alike): the ratio stays 4 in every round.
    reference = [Measurement(1.0, 100, 1), Measurement(1.1, 100, 1), Measurement(3.0, 100, 1), Measurement(1.0, 100, 1)]
    fast = [Measurement(m.seconds / 4, 100, 1) for m in reference]
    ratio, low, high = speedup(fast, reference)
    assert ratio == pytest.approx(4.0) and math.isnan(low) and math.isnan(high)  # no spread: no interval
    assert speedup(reference, fast)[0] == pytest.approx(0.25)  # B over A, not A over B
    # Ratios that vary: the interval is scipy's percentile bootstrap of their median, and holds it.
    fast = [Measurement(m.seconds / r, 100, 1) for m, r in zip(reference, (3.8, 4.1, 4.0, 4.3))]
    ratio, low, high = speedup(fast, reference)
    ratios = np.array([3.8, 4.1, 4.0, 4.3])
    expected = scipy_stats.bootstrap((ratios,), np.median, n_resamples=9999, method="percentile",
                                     random_state=np.random.default_rng(0)).confidence_interval
    assert ratio == pytest.approx(np.median(ratios)) and (low, high) == pytest.approx((expected.low, expected.high))
    # The tables print the ratio with its interval.
    row = {"speedup_vs_reference": ratio, "speedup_ci_low": low, "speedup_ci_high": high}
    assert markdown_ratio(row) == f"{ratio:.2f}x [{low:.2f}, {high:.2f}]"


def test_rounds_interleave_the_engines(monkeypatch):
    order = []

    def fake(exp, engine, device, steps, warmup, seeds, options):
        order.append(engine)
        return Measurement(1.0, 10, 1)

    monkeypatch.setattr(bench, "measure_once", fake)
    bench.interleaved(None, ["reference", "fast", "multiseed"], "cpu", 5, 3, 1, 2, None)
    assert order == ["reference", "fast", "multiseed"] * 3


def test_bad_bench_options_are_one_line_errors(capsys):
    assert main(["bench", "mnist-mlp", "--steps", "0"]) == 2
    assert "--steps must be a positive integer" in capsys.readouterr().err
    assert main(["bench", "mnist-mlp", "--engines", "fast,turbo"]) == 2
    assert "unknown engine 'turbo'" in capsys.readouterr().err


def test_a_tiny_real_bench_writes_csv_plot_and_markdown(tmp_path, capsys):
    out = tmp_path / "bench.csv"
    assert main(["bench", "iris-ce", "--engines", "reference,fast,multiseed", "--steps", "5", "--repeats", "2",
                 "--warmup", "1", "--seeds", "3", "--out", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["engine"], r["seeds"]) for r in rows] == [("reference", "1"), ("fast", "1"), ("multiseed", "3")]
    assert float(rows[0]["speedup_vs_reference"]) == 1.0 and rows[0]["repeats"] == "2"
    assert all(float(r["samples_per_s"]) > 0 and r["threads"] and r["device_name"] for r in rows)
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    text = out.with_suffix(".md").read_text()
    assert "## Training throughput" in text and "2 rounds, each measuring every engine once in turn" in text


def test_a_vmap_fallback_fails_the_benchmark(tmp_path, monkeypatch, capsys):
    """A multiseed measurement that vmap would run seed after seed is refused, not reported."""
    real = ENGINES["multiseed"]

    def with_an_unbatched_op(exp, seeds, device, options):
        torch.func.vmap(partial(torch.histc, bins=4))(torch.ones(2, 3))  # no batching rule (torch 2.14)
        return real(exp, seeds, device, options)

    monkeypatch.setitem(ENGINES, "multiseed", with_an_unbatched_op)
    out = tmp_path / "bench.csv"
    assert main(["bench", "iris-ce", "--engines", "multiseed", "--steps", "2", "--repeats", "1", "--out", str(out)]) == 1
    assert "vmap ran an op seed after seed" in capsys.readouterr().err
    assert not out.exists()
