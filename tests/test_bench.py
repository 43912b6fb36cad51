"""The benchmark's bookkeeping (no timing is asserted: machines are noisy)."""

import csv
from functools import partial

import torch

from harness.bench import add_speedups, markdown
from harness.cli import main
from harness.engines import ENGINES


def row(experiment, engine, rate, device="cpu"):
    return {"experiment": experiment, "engine": engine, "device": device, "device_name": "test cpu", "seeds": 1,
            "threads": 2, "samples_per_s": rate, "samples_per_s_iqr": 10.0, "step_time_ms_median": 1.0,
            "epoch_time_s": 3.0, "speedup_vs_reference": None, "torch_version": "x", "git_commit": "c", "repeats": 5, "steps": 200}


def test_speedups_are_over_reference_on_the_same_experiment_and_device():
    rows = [row("a", "reference", 100.0), row("a", "fast", 400.0), row("b", "fast", 50.0), row("a", "fast", 900.0, "cuda")]
    add_speedups(rows)
    assert [r["speedup_vs_reference"] for r in rows] == [1.0, 4.0, None, None]
    text = markdown(rows, "harness bench a b")
    assert "| a            | fast" in text and "4.00x" in text and "`harness bench a b`" in text


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
    assert float(rows[0]["speedup_vs_reference"]) == 1.0
    assert all(float(r["samples_per_s"]) > 0 and r["threads"] and r["device_name"] for r in rows)
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert "## Training throughput" in out.with_suffix(".md").read_text()


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
