"""The benchmark's bookkeeping (no timing is asserted: machines are noisy)."""

from harness.bench import add_speedups, markdown
from harness.cli import main


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
