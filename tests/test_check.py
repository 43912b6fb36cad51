"""`harness check` in process, line by line: the thresholds (a mean against the registry's minimum) and
the integrity of the files (what the harness could not have written), each failure's exact message."""

import csv

import pytest

from harness.check import integrity_failures, threshold_failures
from harness.rows import same as _same

from .test_compare import BASE, EXP, shifted
from .test_compare import write_results as write_with

CLEAN = {**BASE, "train_loss": [0.6] * 5}  # every final figure of runs.csv also in the last epoch row


def write_results(directory, registry, values=CLEAN):
    return write_with(directory, registry, {**CLEAN, **values})


@pytest.fixture
def only(registry):
    return {EXP: registry[EXP]}  # iris-ce: test_acc >= 0.90


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def rewrite(path, table):
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(table)


def with_extra_run(out, **fields) -> list[str]:
    """runs.csv with one more row, seed 0's copied as run 0123456789ab with `fields` changed, and its epoch rows
    copied too; the row appended."""
    table = rows(out / "runs.csv")
    extra = list(table[1])
    extra[0] = "0123456789ab"
    for column, value in fields.items():
        extra[table[0].index(column)] = value
    rewrite(out / "runs.csv", table + [extra])
    epochs = rows(out / "epochs.csv")
    rewrite(out / "epochs.csv", epochs + [[extra[0], *line[1:]] for line in epochs[1:] if line[0] == table[1][0]])
    return extra


# ---------------------------------------------------------------------------------------------------
# Thresholds


def test_a_mean_below_its_threshold_fails_and_one_low_seed_does_not(registry, only, tmp_path):
    assert threshold_failures(only, write_results(tmp_path / "met", registry)) == []
    one_low = {"test_acc": [0.85] + BASE["test_acc"][1:]}  # one seed below, the mean above
    assert threshold_failures(only, write_results(tmp_path / "one", registry, one_low)) == []
    (failure,) = threshold_failures(only, write_results(tmp_path / "missed", registry, shifted(CLEAN, "test_acc", -0.07)))
    assert failure == "iris-ce [cpu, fast]: mean test_acc 0.8905 over 5 seed(s) is below the threshold 0.9"


def test_a_mean_exactly_at_its_threshold_passes(registry, only, tmp_path):
    at = {"test_acc": [0.90] * 5}
    assert threshold_failures(only, write_results(tmp_path / "at", registry, at)) == []


def test_every_experiment_is_checked_and_each_says_why(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    chosen = {e: registry[e] for e in ("iris-mylinear", EXP, "mnist-mlp")}  # one with results between two without
    failures = threshold_failures(chosen, out)
    assert [f.split(":")[0] for f in failures] == ["iris-mylinear", "mnist-mlp"]
    assert failures[1] == (f"mnist-mlp: no faithful results for the current recipe (config {registry['mnist-mlp'].config_hash()}); "
                           "run `harness run mnist-mlp`")
    # A dataset variant without results is not required (it runs on request), and the loop goes on past it.
    assert not any("@" in f for f in threshold_failures(registry, out))


def test_failed_runs_fail_the_cell_and_say_how(registry, only, tmp_path):
    out = write_results(tmp_path / "r", registry)
    table = rows(out / "runs.csv")
    header = table[0]
    for line in table[2:4]:  # seeds 1 and 2 diverged
        line[header.index("status")] = "diverged"
        line[header.index("message")] = "loss is nan at epoch 2"
        line[header.index("diverged_epoch")] = "2"
    rewrite(out / "runs.csv", table)
    assert threshold_failures(only, out) == ["iris-ce [cpu, fast]: 2 of 5 run(s) ended diverged: loss is nan at epoch 2"]


def test_a_cell_without_the_metric_fails(registry, only, tmp_path):
    out = write_results(tmp_path / "r", registry)
    for table_name in ("runs.csv", "epochs.csv"):  # not recorded at all, in the run's row or its epochs'
        table = rows(out / table_name)
        for line in table[1:]:
            line[table[0].index("test_acc")] = ""
        rewrite(out / table_name, table)
    assert threshold_failures(only, out) == ["iris-ce [cpu, fast]: mean test_acc nan over 0 seed(s) is below the threshold 0.9"]


def test_numbers_alike_in_value_are_the_same():
    assert _same("0.5", "0.5") and _same("0.50", "0.5") and _same("nan", "NaN")
    assert not _same("0.5", "0.6") and not _same("ok", "0.5") and not _same("nan", "0.5") and not _same("0.5", "nan")
    assert _same("", "") and not _same("", "0")


# ---------------------------------------------------------------------------------------------------
# Integrity


def test_clean_results_are_sound(registry, tmp_path):
    assert integrity_failures(registry, write_results(tmp_path / "r", registry)) == []


def test_a_short_row_and_a_repeated_run_id_are_named(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    table = rows(out / "runs.csv")
    rewrite(out / "runs.csv", table + [table[1][:5], table[2]])
    failures = integrity_failures(registry, out)
    n = len(table[0])
    assert f"{out / 'runs.csv'} line 7: 5 fields, expected {n} (a partial or hand-edited row)" in failures
    assert f"{out / 'runs.csv'} line 8: run_id {table[2][0]} repeats line 3" in failures


def test_a_stale_row_is_named_unless_its_cell_ran_again(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    with_extra_run(out, config_hash="0ld0ld0ld0ld")
    assert integrity_failures(registry, out) == []  # seed 0 has a current row: the stale one is history
    out = write_results(tmp_path / "s", registry)
    with_extra_run(out, config_hash="0ld0ld0ld0ld", seed="9")
    (failure,) = integrity_failures(registry, out)
    assert failure == (f"{out / 'runs.csv'} line 7: run 0123456789ab is stale: config_hash 0ld0ld0ld0ld is not the "
                       f"registry's {registry[EXP].config_hash()} (the recipe changed, or the row was edited); run "
                       "`harness run iris-ce` again for this seed, device and engine")
    out = write_results(tmp_path / "t", registry)
    with_extra_run(out, config_hash="0ld0ld0ld0ld", seed="9", experiment="retired")
    assert integrity_failures(registry, out)[0] == (
        f"{out / 'runs.csv'} line 7: run 0123456789ab is stale: experiment 'retired' is not in the registry; name the "
        "folder of its recipe with --experiments-dir DIR, or move its rows out of this directory")


def test_a_quick_run_is_judged_by_its_own_recipe(registry, tmp_path):
    quick = dict(overrides='{"epochs": 5}', faithful="false")
    out = write_results(tmp_path / "r", registry)
    with_extra_run(out, **quick, config_hash=registry[EXP].config_hash({"epochs": 5}))
    # Its hash is that of the recipe with its overrides: not stale.
    assert integrity_failures(registry, out) == []
    out = write_results(tmp_path / "s", registry)
    with_extra_run(out, **quick, config_hash="0ld0ld0ld0ld")  # stale: the message names its own recipe's hash
    stale = [f for f in integrity_failures(registry, out) if "is stale:" in f]
    assert stale and f"is not the registry's {registry[EXP].config_hash({'epochs': 5})} " in stale[0]


def test_epoch_rows_without_a_run_and_runs_without_epoch_rows(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    epochs = rows(out / "epochs.csv")
    orphan = [["feedfacecafe", *line[1:]] for line in epochs[1:4]]  # three rows of a run never recorded
    kept = [line for line in epochs[1:] if line[0] != epochs[1][0]]  # the first run's epoch rows removed
    rewrite(out / "epochs.csv", [epochs[0], *kept, *orphan])
    failures = integrity_failures(registry, out)
    assert (f"{out / 'epochs.csv'}: 3 row(s) of run feedfacecafe, which has no row in runs.csv "
            "(an interrupted write or an edit); delete them") in failures
    assert f"{out / 'runs.csv'} line 2: run {epochs[1][0]} has no rows in epochs.csv" in failures
    assert len(failures) == 2


def test_an_empty_epoch_and_a_final_figure_unlike_the_last_epoch_are_named(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    epochs = rows(out / "epochs.csv")
    epochs[1][epochs[0].index("epoch")] = ""
    rewrite(out / "epochs.csv", epochs)
    assert f"{out / 'epochs.csv'} line 2: run {epochs[1][0]}: epoch is empty" in integrity_failures(registry, out)

    out = write_results(tmp_path / "s", registry)
    table = rows(out / "runs.csv")
    table[3][table[0].index("test_acc")] = "0.5"
    rewrite(out / "runs.csv", table)
    assert integrity_failures(registry, out) == [f"{out / 'runs.csv'} line 4: run {table[3][0]}: test_acc '0.5' disagrees "
                                                 "with its last epochs.csv row ('0.9598')"]


def test_the_last_epoch_row_is_the_highest_epoch_whatever_the_order(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    epochs = rows(out / "epochs.csv")
    rewrite(out / "epochs.csv", [epochs[0], *reversed(epochs[1:])])  # epoch 2 before epoch 1
    assert integrity_failures(registry, out) == []


def test_a_diverged_run_is_checked_against_its_epochs_and_an_error_row_is_not(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    table = rows(out / "runs.csv")
    header = table[0]
    table[2][header.index("status")], table[2][header.index("message")] = "error", "out of memory"
    rewrite(out / "runs.csv", table)
    epochs = rows(out / "epochs.csv")
    rewrite(out / "epochs.csv", [line for line in epochs if line[0] != table[2][0]])
    assert integrity_failures(registry, out) == []  # an error row need not have epochs


def test_each_failed_cell_and_each_group_is_reported(registry, only, tmp_path):
    out = write_results(tmp_path / "r", registry)  # cpu, fast: seeds 1 and 2 fail, each its own way
    table = rows(out / "runs.csv")
    header = table[0]
    for line, status, message in zip(table[2:4], ("diverged", "error"), ("loss is nan at epoch 2", "out of memory")):
        line[header.index("status")], line[header.index("message")] = status, message
        line[header.index("diverged_epoch")] = "2" if status == "diverged" else ""
    rewrite(out / "runs.csv", table)
    write_with(out, registry, shifted(CLEAN, "test_acc", -0.07), engine="reference")  # a second group, its mean low
    assert threshold_failures(only, out) == [
        "iris-ce [cpu, fast]: 2 of 5 run(s) ended diverged: loss is nan at epoch 2",  # the first failed run named
        "iris-ce [cpu, reference]: mean test_acc 0.8905 over 5 seed(s) is below the threshold 0.9",
    ]


def test_an_experiment_without_thresholds_does_not_end_the_check(registry, tmp_path):
    import dataclasses

    out = write_results(tmp_path / "r", registry)
    chosen = {"free": dataclasses.replace(registry[EXP], id="free", thresholds={}), "mnist-mlp": registry["mnist-mlp"]}
    assert [f.split(":")[0] for f in threshold_failures(chosen, out)] == ["mnist-mlp"]


def test_an_unreadable_table_is_named_and_the_others_still_checked(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    (out / "epochs.csv").write_text("run_id,epoch\n")  # not a results table: too few columns
    failures = integrity_failures(registry, out)
    assert len(failures) == 1 and str(out / "epochs.csv") in failures[0]  # and no "has no rows in epochs.csv" for each run
    # trace.csv is still read beyond the unreadable epochs.csv: an orphan row there is found.
    from harness.catalogue import TRACE_COLUMNS

    rewrite(out / "trace.csv", [TRACE_COLUMNS, ["feedfacecafe", *["1"] * (len(TRACE_COLUMNS) - 1)]])
    assert any("trace.csv: 1 row(s) of run feedfacecafe" in f for f in integrity_failures(registry, out))


def test_a_repeated_epoch_row_counts_its_later_copy(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    epochs = rows(out / "epochs.csv")
    again = list(epochs[2])  # the first run's epoch 2, written again with another test accuracy
    again[epochs[0].index("test_acc")] = "0.5"
    rewrite(out / "epochs.csv", [*epochs, again])
    assert any(f"run {epochs[2][0]}: test_acc '0.9605' disagrees with its last epochs.csv row ('0.5')" in f
               for f in integrity_failures(registry, out))


def test_every_finished_run_is_held_to_its_epochs(registry, tmp_path):
    out = write_results(tmp_path / "r", registry)
    table = rows(out / "runs.csv")
    header = table[0]
    table[1][header.index("status")], table[1][header.index("message")] = "error", "out of memory"  # first: skipped
    epochs = rows(out / "epochs.csv")
    rewrite(out / "epochs.csv", [line for line in epochs if line[0] != table[2][0]])  # second: no epoch rows
    table[3][header.index("epochs")] = "3"  # third: claims an epoch its rows do not have
    rewrite(out / "runs.csv", table)
    assert integrity_failures(registry, out) == [
        f"{out / 'runs.csv'} line 3: run {table[2][0]} has no rows in epochs.csv",
        f"{out / 'runs.csv'} line 4: run {table[3][0]}: epochs '3' disagrees with its last epochs.csv row ('2')",
    ]


def test_a_variant_with_results_is_checked_after_those_without(registry, tmp_path):
    # Variants run on request only: those without results are passed over, and the one with results is
    # checked whatever its place (the last in order here).
    from harness.registry import variants

    last = list(variants(registry))[-1]
    out = write_results(tmp_path / "r", registry, shifted(CLEAN, "test_acc", -0.5))
    table = rows(out / "runs.csv")
    header = table[0]
    for line in table[1:]:
        line[header.index("experiment")] = last
        line[header.index("config_hash")] = variants(registry)[last].config_hash()
    rewrite(out / "runs.csv", table)
    assert [f for f in threshold_failures(registry, out) if "@" in f] == [
        f"{last} [cpu, fast]: mean test_acc 0.4605 over 5 seed(s) is below the threshold "
        f"{variants(registry)[last].thresholds['test_acc']}"]


def test_an_epoch_row_numbered_0_is_still_a_run_s_last(registry, tmp_path):
    # The harness numbers epochs from 1; a hand-edited 0 is read as the epoch it says, not as no row at all.
    out = write_results(tmp_path / "r", registry)
    epochs = rows(out / "epochs.csv")
    first = epochs[1][0]
    mine = [line for line in epochs[1:] if line[0] == first]
    mine[0][epochs[0].index("epoch")] = "0"
    rewrite(out / "epochs.csv", [epochs[0], mine[0], *[line for line in epochs[1:] if line[0] != first]])
    assert integrity_failures(registry, out) == [f"{out / 'runs.csv'} line 2: run {first}: epochs '2' disagrees with its "
                                                 "last epochs.csv row ('0')"]
