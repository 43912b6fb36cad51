"""A hostile environment, made from outside as a user's shell would: planted symbolic links, a torn
results file, a full file system, concurrent processes and SIGKILL. Whatever happens, nothing outside
the results directory changes, no finished run is lost, and every failure is one line."""

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import safe_files
from harness.check import integrity_failures
from harness.named_datasets import IDX_FILES
from harness.registry import load_registry
from harness.report import load_results
from harness.results import ResultsStore

from .conftest import ROOT
from .test_reliability import assert_one_line_error, harness, make_registry, read

QUICK = ["--seeds", "0", "--epochs", "2"]
SECRET = "secret text of a file the harness never wrote\n"


@pytest.fixture
def outside(tmp_path):
    """A file and a folder outside the results directory, which nothing may change or show."""
    home = tmp_path / "outside"
    home.mkdir()
    (home / "secret.txt").write_text(SECRET)
    (home / "folder").mkdir()
    (home / "folder" / "keep.png").write_text(SECRET)
    return home


def snapshot(directory):
    return {p.relative_to(directory): (p.is_symlink(), p.read_text() if p.is_file() else None)
            for p in sorted(directory.rglob("*"))}


def assert_untouched_and_unshown(outside, before, *outputs):
    assert snapshot(outside) == before
    for text in outputs:
        assert "secret text" not in text


def run_quick(capsys, results, *extra, seeds="0"):
    return harness(capsys, "run", "iris-mse", "--seeds", seeds, "--epochs", "2", "--results-dir", results, *extra)


# ---------------------------------------------------------------------------------------------------
# Symbolic links planted in the results directory: refused with one line, their targets untouched


def claim_path(results, registry, seed=0):
    key = ("iris-mse", registry["iris-mse"].config_hash({"epochs": 2}), "cpu", "fast", seed)
    return ResultsStore(results)._claim_path(key)


# docs/results-files.md, "Nothing outside the results directory is touched": "a link where it keeps a file or folder of its
# own ... is refused with one line naming it, exit status 2, before anything trains", "no file elsewhere
# changes and none has its contents printed"
@pytest.mark.parametrize("planted", ["claim", ".claims", ".lock", "runs.csv", "epochs.csv", "dangling runs.csv"])
def test_link_in_the_results_directory_is_refused_and_its_target_untouched(tmp_path, capsys, registry, outside, planted):
    results = tmp_path / "res"
    (results / ".claims").mkdir(parents=True)
    target = {"claim": outside / "secret.txt", ".claims": outside / "folder", "dangling runs.csv": outside / "new.csv"}.get(
        planted, outside / "secret.txt")
    link = claim_path(results, registry) if planted == "claim" else results / planted.split()[-1]
    if planted == ".claims":
        (results / ".claims").rmdir()
    link.symlink_to(target)
    before = snapshot(outside)
    status, out, err = run_quick(capsys, results)
    assert status == 2
    assert_one_line_error(err, str(link), "symbolic link", "remove the link")
    assert_untouched_and_unshown(outside, before, out, err)
    assert not (results / "runs.csv").is_file() or planted == "runs.csv"


# docs/results-files.md: "none has its contents printed": a file at a claim's name is taken over, never read out
def test_foreign_file_at_a_claim_is_replaced_and_never_shown(tmp_path, capsys, registry):
    results = tmp_path / "res"
    claim = claim_path(results, registry)
    claim.parent.mkdir(parents=True)
    claim.write_text(SECRET)
    status, out, err = run_quick(capsys, results)
    assert status == 0 and "taking over a stale claim (a claim file the harness did not write)" in out
    assert "secret text" not in out + err and not claim.exists()


# docs/results-files.md: "new files are created only where nothing (not even a dangling link) is"
def test_dangling_link_at_the_gitignore_is_not_created_through(tmp_path, capsys, outside):
    results = tmp_path / "res"
    results.mkdir()
    (results / ".gitignore").symlink_to(outside / "created.txt")
    before = snapshot(outside)
    status, _, _ = run_quick(capsys, results)
    assert status == 0 and len(read(results / "runs.csv")) == 1
    assert snapshot(outside) == before


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """A results directory with one quick run, to copy."""
    results = tmp_path_factory.mktemp("one-run") / "res"
    from harness.cli import main

    assert main(["run", "iris-mse", *QUICK, "--results-dir", str(results)]) == 0
    return results


# docs/results-files.md: a link at `REPORT.md` or `plots/` "is refused with one line naming it"; "Nothing is written,
# truncated, deleted or read through a link"
@pytest.mark.parametrize("planted", ["plots", "REPORT.md", "dangling REPORT.md"])
def test_report_writes_and_deletes_nothing_through_a_link(one_run, tmp_path, capsys, outside, planted):
    results = tmp_path / "res"
    shutil.copytree(one_run, results)
    target = {"plots": outside / "folder", "REPORT.md": outside / "secret.txt"}.get(planted, outside / "new.md")
    link = results / planted.split()[-1]
    link.symlink_to(target)
    before = snapshot(outside)
    status, out, err = harness(capsys, "report", "--results-dir", results)
    assert status == 2
    assert_one_line_error(err, str(link), "symbolic link")
    assert_untouched_and_unshown(outside, before, out, err)


# docs/results-files.md: "Nothing is written, truncated, deleted or read through a link" (`harness bench`'s files too)
def test_bench_writes_nothing_through_a_link(tmp_path, capsys, outside):
    (tmp_path / "bench.md").symlink_to(outside / "secret.txt")
    before = snapshot(outside)
    status, out, err = harness(capsys, "bench", "iris-ce", "--engines", "fast", "--steps", "2", "--repeats", "1",
                               "--warmup", "0", "--out", tmp_path / "bench.csv")
    assert status == 2
    assert_one_line_error(err, str(tmp_path / "bench.md"), "symbolic link")
    assert_untouched_and_unshown(outside, before, out, err)


# docs/results-files.md: "a link among the plots is removed, never followed"
def test_links_among_the_plots_are_removed_not_followed(one_run, tmp_path, capsys, outside):
    results = tmp_path / "res"
    shutil.copytree(one_run, results)
    (results / "plots").mkdir()
    (results / "plots" / "speed.png").symlink_to(outside / "folder" / "keep.png")
    before = snapshot(outside)
    status, _, _ = harness(capsys, "report", "--results-dir", results)
    assert status == 0
    assert snapshot(outside) == before
    assert not (results / "plots" / "speed.png").is_symlink() and (results / "plots" / "speed.png").stat().st_size > 1000


def swap_for_link(folder: Path, target: Path) -> Path:
    """What a process racing the harness could do: move the folder aside and put a link in its place."""
    aside = folder.with_name(folder.name + "-aside")
    folder.rename(aside)
    folder.symlink_to(target)
    return aside


# docs/results-files.md: `plots/` and `.claims/` "are held open while the harness works in them", "so a link swapped in
# for either meanwhile is never followed either"
def test_plots_swapped_for_a_link_mid_report_change_nothing_outside(one_run, tmp_path, capsys, outside, monkeypatch):
    results = tmp_path / "res"
    shutil.copytree(one_run, results)
    (results / "plots").mkdir()
    (results / "plots" / "old.png").write_bytes(b"a plot no longer drawn")
    (outside / "folder" / "speed.png").write_text(SECRET)  # what the report would replace through the link
    before = snapshot(outside)
    held = {}
    remove_matching = safe_files.Folder.remove_matching

    def swap_then_remove(folder, which):  # the swap falls after the folder is checked and opened
        held["aside"] = swap_for_link(results / "plots", outside / "folder")
        return remove_matching(folder, which)

    monkeypatch.setattr(safe_files.Folder, "remove_matching", swap_then_remove)
    status, out, err = harness(capsys, "report", "--results-dir", results)
    assert status == 0, err
    assert_untouched_and_unshown(outside, before, out, err)
    drawn = sorted(p.name for p in held["aside"].iterdir())  # the folder the report checked got the plots
    assert "speed.png" in drawn and "old.png" not in drawn and not any(safe_files.is_temporary(n) for n in drawn)


def test_claims_swapped_for_a_link_mid_run_change_nothing_outside(tmp_path, registry, outside):
    results = tmp_path / "res"
    store = ResultsStore(results)
    key = ("iris-mse", registry["iris-mse"].config_hash({"epochs": 2}), "cpu", "fast", 0)
    (claim,), _ = store.claim([key], set)
    (outside / "folder" / claim.path.name).write_text(SECRET)  # what releasing through the link would delete
    before = snapshot(outside)
    aside = swap_for_link(results / ".claims", outside / "folder")
    store.release([claim])
    assert snapshot(outside) == before
    assert not (aside / claim.path.name).exists()  # the claim the process made is the one it removed


# ---------------------------------------------------------------------------------------------------
# Damaged files and failed attempts: no finished run lost


# docs/results-files.md: "A last row cut short (even inside a quoted field) is ended before anything is appended, so new
# rows are rows of their own (`harness check` names the torn one)"
def test_rows_after_a_torn_last_row_are_recorded(one_run, tmp_path, capsys):
    results = tmp_path / "res"
    shutil.copytree(one_run, results)
    line = (results / "runs.csv").read_text().splitlines()[1]
    cut = line.index('"{""epochs') + 5  # inside the quoted overrides field
    with open(results / "runs.csv", "a") as f:
        f.write("torn00000000" + line[12:cut])  # a copy of the row, cut short
    status, out, _ = run_quick(capsys, results, seeds="0-1")
    assert status == 0 and "skipping 1 finished" in out
    seeds = {r["seed"]: r for r in read(results / "runs.csv") if r["status"]}
    assert seeds["1"]["status"] == "ok" and seeds["1"]["kernel_settings"] is not None
    # Recorded for good: not trained again, and `check` names the torn row only.
    status, out, _ = run_quick(capsys, results, seeds="0-1")
    assert status == 0 and "nothing to run" in out
    failures = integrity_failures(load_registry(ROOT / "experiments"), results)
    assert len(failures) == 1 and "line 3" in failures[0] and "partial or hand-edited row" in failures[0], failures


def worker_pids(driver_pid):
    """The pool workers of a `harness run --jobs` driver (not multiprocessing's resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == driver_pid and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return pids


def torch_loaded(pid):
    try:
        return b"libtorch_cpu" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False


def running(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie holds no memory: it waits for init to reap it


def poll(condition, bound=120.0):
    """Wait until `condition()` holds; generous bound, as the machine may be loaded."""
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "harness", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")


# docs/results-files.md: "A later attempt at a cell that fails (a `--force` re-run whose worker is killed, say) never hides
# the cell's finished run: the latest *finished* row of a cell is the one `run`, `check` and `report` count"
@pytest.mark.slow
@needs_proc
def test_killed_workers_of_a_forced_rerun_never_hide_the_finished_runs(tmp_path, capsys):
    reg = make_registry(tmp_path / "reg")
    results = tmp_path / "res"
    args = ["iris-mse", "--seeds", "0-1", "--epochs", "500", "--results-dir", results, "--experiments-dir", reg]
    status, _, _ = harness(capsys, "run", *args)
    assert status == 0
    driver = start("run", *args, "--force", "--jobs", "2")
    poll(lambda: len(worker_pids(driver.pid)) == 2 or driver.poll() is not None)
    for pid in worker_pids(driver.pid):
        with contextlib.suppress(ProcessLookupError):  # gone with the first one
            os.kill(pid, signal.SIGKILL)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 1, err
    rows = read(results / "runs.csv")
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "error"]
    # The cells stay finished for `run`, `check` and `report` alike.
    status, out, _ = harness(capsys, "run", *args)
    assert status == 0 and "nothing to run" in out
    status, out, _ = harness(capsys, "check", "--results-dir", results, "--experiments-dir", reg)
    assert status == 0, out
    counted = load_results(results, load_registry(reg)).runs
    assert sorted(counted["run_id"]) == sorted(r["run_id"] for r in rows[:2])


# ---------------------------------------------------------------------------------------------------
# A full disk, and what takes its place


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB file system (tmpfs, mounted as root); skipped where mounting is not permitted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(path, leave=0):
    """Write `path` until the file system is full, then give `leave` bytes back."""
    with open(path, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
        f.truncate(max(0, f.tell() - leave))


def temporaries(directory):
    return [p.name for p in directory.rglob("*.tmp")]


# docs/results-files.md, "A full disk changes nothing": "one line, exit status 2, with the files as they were and no
# temporary file left; one left by a process killed while writing is removed by the next command"
def test_full_disk_is_one_line_and_temporaries_never_keep_it_full(small_disk, capsys):
    results = small_disk / "res"
    assert run_quick(capsys, results)[0] == 0
    recorded = (results / "runs.csv").read_bytes()
    fill(small_disk / "filler", leave=4096)  # room for a claim, not for the rows
    status, _, err = run_quick(capsys, results, seeds="1")
    assert status == 2
    assert_one_line_error(err, "No space left on device")
    assert (results / "runs.csv").read_bytes() == recorded and temporaries(small_disk) == []
    assert not list((results / ".claims").iterdir())
    # A temporary file left by a process killed while writing fills the disk: the next run removes it.
    (small_disk / "filler").unlink()
    fill(results / ".runs.csv.4242.tmp")
    status, _, err = run_quick(capsys, results, seeds="1")
    assert status == 0, err
    assert len(read(results / "runs.csv")) == 2 and temporaries(small_disk) == []


# docs/results-files.md: "A directory where a results file should be ... is one line too"
@pytest.mark.parametrize("name", ["runs.csv", "epochs.csv", ".lock"])
def test_directory_where_a_results_file_should_be_is_one_line(tmp_path, capsys, name):
    results = tmp_path / "res"
    (results / name).mkdir(parents=True)
    status, _, err = run_quick(capsys, results)
    assert status == 2
    assert_one_line_error(err, str(results / name), "is a directory", "move it aside")
    status, _, err = harness(capsys, "check", "--results-dir", results)
    assert status in (1, 2) and "Traceback" not in err


def without_root_privileges():
    """In the child: as root, give up reading and writing past file permissions (its uid stays 0)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                os._exit(97)


# docs/results-files.md: "a file or lock the harness may not read or write, is one line too"
@pytest.mark.slow
def test_unreadable_results_file_or_lock_is_one_line(tmp_path):
    results = tmp_path / "res"
    results.mkdir()
    (results / "runs.csv").write_text("run_id\n")
    (results / "runs.csv").chmod(0)
    check = subprocess.run([sys.executable, "-m", "harness", "check", "--results-dir", results], cwd=ROOT,
                           capture_output=True, text=True, preexec_fn=without_root_privileges)
    if check.returncode == 97:
        pytest.skip("cannot give up root's file privileges here")
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert check.stdout.splitlines() == [f"FAIL {results / 'runs.csv'}: cannot read it (Permission denied); check its permissions"]
    (results / "runs.csv").unlink()
    (results / ".lock").touch()
    (results / ".lock").chmod(0)
    run = subprocess.run([sys.executable, "-m", "harness", "run", "iris-mse", *QUICK, "--results-dir", results], cwd=ROOT,
                         capture_output=True, text=True, preexec_fn=without_root_privileges)
    assert run.returncode == 2
    assert_one_line_error(run.stderr, f"{results / '.lock'}: cannot open the directory's lock (Permission denied)")


# ---------------------------------------------------------------------------------------------------
# Concurrency


# docs/results-files.md: "Concurrent first runs on an empty `--data-dir` prepare each dataset once, in turn under a lock of
# its own, every file extracted to a temporary file of its own and renamed into place once verified"
def test_concurrent_first_runs_on_an_empty_data_dir(mnist, tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / ".train-images-idx3-ubyte.0123456789abcdef.tmp").write_bytes(b"\0" * 4096)  # a killed process's
    prepare = f"from harness.datasets import ensure_idx; ensure_idx('mnist', {str(tmp_path / 'data')!r}, {str(mnist / 'MNIST' / 'raw')!r})"
    procs = [subprocess.Popen([sys.executable, "-c", prepare], cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)  # verified, nothing partial left


# docs/results-files.md: "`harness check` reads under the lock too, so a run recording its rows meanwhile is never seen
# half-way"
@pytest.mark.slow
def test_check_while_a_run_records_sees_no_damage(tmp_path, registry):
    results = tmp_path / "res"
    proc = start("run", "iris-mse", "--seeds", "0-9", "--epochs", "1", "--results-dir", results)
    checks = 0
    while proc.poll() is None:
        if (results / "runs.csv").exists():  # a results directory from its first row on
            assert integrity_failures(registry, results) == []
            checks += 1
        time.sleep(0.05)  # leave the run a core
    assert proc.returncode == 0 and checks > 0, proc.communicate()
    assert integrity_failures(registry, results) == [] and len(read(results / "runs.csv")) == 10


# docs/results-files.md: "Workers of `--jobs` end with their driver, even one killed with SIGKILL"
@pytest.mark.slow
@needs_proc
def test_workers_end_when_their_driver_is_killed(tmp_path):
    results = tmp_path / "res"
    driver = start("run", "iris-mse", "--seeds", "0-19", "--epochs", "2000", "--jobs", "2", "--results-dir", results)
    poll(lambda: sum(map(torch_loaded, worker_pids(driver.pid))) == 2 or driver.poll() is not None)  # about to train
    workers = worker_pids(driver.pid)
    assert len(workers) == 2 and driver.poll() is None
    driver.kill()
    driver.wait()
    poll(lambda: not any(running(pid) for pid in workers), bound=30)
