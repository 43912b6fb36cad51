"""`make gpu-check`: every CUDA path of the harness tested and measured by one time-boxed command.

On a machine with CUDA it runs these steps in order, each in its own time box (seconds, `--box
NAME=S`) with its own log, going on past a step that fails or runs out of time:

  1. tests      the tests marked `cuda` (`pytest -m cuda`; they skip where there is no CUDA)
  2. reruns     every MNIST experiment twice, short, seed 0: are the metrics bit-identical?
  3. bench      reference, fast and multiseed (64 seeds) on CUDA -> bench_gpu.{csv,png,md}
  4. all        every experiment with the harness's default seeds (`make all DEVICES=cuda`), timed
  5. multiseed  every experiment with 64 seeds through the multiseed engine, timed, same directory

Without CUDA it says so and runs the same steps on the CPU, each cut down to seconds (one tiny
MNIST run, one iris experiment): a dry run of this script's plumbing, not a measurement.

It needs nothing installed beyond the harness's own requirements (no venv, no pip): the harness runs
as `python -m harness` from this checkout, with this interpreter. Into `--out` it writes summary.md,
bench_gpu.{csv,md,png} and gpu-check.tar.gz (every log, the rerun and results CSVs); with CUDA the
bench files are copied into results/ as well.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.bounds import usable_cpus  # noqa: E402  (no torch: the requirements are checked first)

# Each step's time box in seconds: 7.5 minutes together, the rest of 8 for start-up and grace periods.
BOXES = {"tests": 60, "reruns": 60, "bench": 90, "all": 120, "multiseed": 120}
GRACE_S = 10  # a step out of time gets SIGTERM (the harness then records its finished runs), then SIGKILL
MULTISEED_SEEDS = 64
DEFAULT_MIRROR = ROOT / "data" / "mnist-mirror"
BENCH_FILES = ("bench_gpu.csv", "bench_gpu.md", "bench_gpu.png")
TARBALL = "gpu-check.tar.gz"
IMPORT_NAMES = {"scikit-learn": "sklearn"}  # requirement names that differ from their module's


@dataclass
class Step:
    name: str
    title: str
    commands: list[list[str]]
    box: float = 0.0
    status: str = "not run"
    seconds: float = 0.0
    findings: str = ""
    failed: bool = False

    @property
    def number(self) -> int:
        return list(BOXES).index(self.name) + 1

    @property
    def log_name(self) -> str:
        return f"{self.number}-{self.name}.log"


@dataclass
class Places:
    """Where everything goes: `out` is what the caller takes away, `work` the scratch beside it."""

    out: Path
    work: Path
    results: Path
    data: Path

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def reruns(self) -> tuple[Path, Path]:
        return self.work / "reruns" / "first", self.work / "reruns" / "second"


# ---------------------------------------------------------------------------------------------------
# Before anything runs: what this Python has


def missing_packages() -> list[str]:
    """The harness's requirements (pyproject's dependencies, and pytest for step 1) this Python lacks."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0] for requirement in [*project["dependencies"], "pytest"]]
    return [n for n in names if importlib.util.find_spec(IMPORT_NAMES.get(n, n.replace("-", "_"))) is None]


def mnist_mirror(given: str | None) -> tuple[Path | None, str]:
    """The directory of MNIST *.gz files the runs fill their data from (the one given, else the
    checkout's data/mnist-mirror, `make gpu-data`), and a line saying what it holds."""
    from harness.datasets import mirror_dataset

    mirror = Path(given).resolve() if given else DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None
    if mirror is None:
        return None, "MNIST mirror: none (no HARNESS_DATA_MIRROR, no data/mnist-mirror): the MNIST steps try to download it"
    held = mirror_dataset(mirror) if mirror.is_dir() else None
    if held != "mnist":
        return mirror, f"MNIST mirror: {mirror} holds no MNIST (`make gpu-data` fills data/mnist-mirror): the MNIST steps will fail"
    return mirror, f"MNIST mirror: {mirror}"


# ---------------------------------------------------------------------------------------------------
# The steps


def harness(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def plan(cuda: bool, args, places: Places) -> list[Step]:
    """The five steps: on CUDA at full size; without it, the same commands cut down to seconds."""
    device = "cuda" if cuda else "cpu"
    data = ["--data-dir", str(places.data)]
    if cuda:
        mnist = ["all", "--dataset", "mnist"]
        quick = ["--epochs", "1", "--train-limit", str(args.rerun_train_limit)]
        bench = [*args.bench_experiments.split(), "--seeds", str(MULTISEED_SEEDS)]
        every = ["all", "--jobs", str(args.jobs)]
    else:
        mnist = ["mnist-mlp"]
        quick = ["--epochs", "1", "--train-limit", "200", "--eval-limit", "200"]
        bench = ["mnist-mlp", "--steps", "2", "--repeats", "1", "--warmup", "0", "--seeds", "2"]
        every = ["iris-ce", "--epochs", "100"]

    def rerun(results: Path) -> list[str]:
        return harness("run", *mnist, "--devices", device, "--seeds", "0", *quick, "--force", "--results-dir", str(results), *data)

    results = ["--devices", device, "--force", "--results-dir", str(places.results), *data]
    steps = [
        Step("tests", "CUDA tests", [[sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"]]),
        Step("reruns", "Same-seed reruns, bit-identical", [rerun(d) for d in places.reruns]),
        Step("bench", "Benchmark", [harness("bench", *bench, "--devices", device, "--engines", "reference,fast,multiseed",
                                            "--out", str(places.out / BENCH_FILES[0]), *data)]),
        # No --seeds: the harness's default seeds, as `make all` has them.
        Step("all", "Every experiment, default seeds (make all)", [harness("run", *every, *results)]),
        Step("multiseed", f"Every experiment, {MULTISEED_SEEDS} seeds, multiseed",
             [harness("run", *every, "--engine", "multiseed", "--seeds", f"0-{MULTISEED_SEEDS - 1}", *results)]),
    ]
    for step in steps:
        step.box = args.boxes[step.name]
        if step.name == args.inject_failure:  # for the tests of this script: a step that fails
            step.commands = [[sys.executable, "-c", "import sys; print('failure injected'); sys.exit(3)"]]
    return [s for s in steps if s.name in args.only]


def run_boxed(command: list[str], seconds: float, log, env: dict) -> int | None:
    """Run `command` in a process group of its own; None if it is still running after `seconds`.

    Out of time, the command gets SIGTERM (the harness then stops its workers and exits cleanly,
    every finished run recorded) and, after a grace period, its whole group SIGKILL.
    """
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return process.wait(timeout=max(seconds, 0.0))
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        return None
    finally:  # also on Ctrl-C of this script: nothing of the step outlives it
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def run_step(step: Step, places: Places, env: dict) -> None:
    """Run the step's commands one after another inside its time box; stop at the first that fails."""
    start = time.monotonic()
    with open(places.logs / step.log_name, "w") as log:
        for command in step.commands:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            code = run_boxed(command, step.box - (time.monotonic() - start), log, env)
            if code is None:
                step.status, step.failed = f"TIMEOUT (box {step.box:g} s)", True
                log.write(f"\n# out of time: the step's box of {step.box:g} s ran out\n")
                break
            if code != 0:
                step.status, step.failed = f"FAIL (exit {code})", True
                break
        else:
            step.status = "pass"
    step.seconds = time.monotonic() - start


# ---------------------------------------------------------------------------------------------------
# What each step found


def table(headers: list[str], rows: list[list]) -> str:
    """A GitHub markdown table (no tabulate: the summary must be written even where packages are missing)."""
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines) + "\n"


def log_tail(step: Step, places: Places, lines: int = 12) -> str:
    text = (places.logs / step.log_name).read_text(errors="replace").rstrip().splitlines()
    return "```\n" + "\n".join(text[-lines:]) + "\n```\n"


def compare_reruns(first: Path, second: Path) -> tuple[bool, str]:
    """Whether two result directories of the same runs hold the same numbers, and a table per run.

    Values are compared as recorded: the harness writes every float as its shortest exact text
    (repr), so equal text is equal bits. Timing columns measure the machine, not the training.
    """
    from harness import rows as counted_rows

    tables = [counted_rows.read(d) for d in (first, second)]
    runs = [{(r["experiment"], r["seed"], r["engine"]): r for r in t.runs.rows} for t in tables]
    by_run = [[_rows_by_run(getattr(t, name).rows) for t in tables] for name in ("epochs", "trace")]

    rows, identical = [], bool(runs[0])
    for key in sorted(runs[0].keys() | runs[1].keys()):
        a, b = runs[0].get(key), runs[1].get(key)
        if a is None or b is None:
            rows.append([*key, "", "", "missing in the " + ("first" if a is None else "second") + " run"])
            identical = False
            continue
        (epochs_a, epochs_b), (trace_a, trace_b) = ((mine.get(a["run_id"], []), theirs.get(b["run_id"], [])) for mine, theirs in by_run)
        parting = counted_rows.first_parting(a, b, epochs_a, epochs_b, trace_a, trace_b)
        identical &= parting is None
        rows.append([*key, len(epochs_a), len(trace_a), "yes" if parting is None else
                     f"NO: epoch {parting['epoch']}, {parting['column']}: {parting['a']} vs {parting['b']}"])
    headers = ["experiment", "seed", "engine", "epoch rows", "trace rows", "identical (the first parting otherwise)"]
    return identical, table(headers, rows)


def _rows_by_run(rows: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["run_id"], []).append(row)
    return grouped


def bench_findings(places: Places) -> str:
    path = places.out / BENCH_FILES[0]
    if not path.exists():
        return "No benchmark file was written.\n"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return table(["experiment", "engine", "seeds", "device", "samples/s", "ms/step", "vs reference"], [
        [r["experiment"], r["engine"], r["seeds"], r["device_name"], f"{float(r['samples_per_s']):,.0f}",
         f"{float(r['step_time_ms_median']):.3f}", f"{float(r['speedup_vs_reference']):.2f}x" if r["speedup_vs_reference"] else ""]
        for r in rows])


def runs_findings(step: Step, places: Places, engine: str, known_run_ids: set[str]) -> str:
    """The runs the step recorded (rows of `engine` new since the check started), per experiment."""
    from harness import rows as counted_rows

    rows = [r for r in counted_rows.read(places.results).runs.rows if r["engine"] == engine and r["run_id"] not in known_run_ids]
    per_experiment: dict[str, list[dict]] = {}
    for row in rows:
        per_experiment.setdefault(row["experiment"], []).append(row)
    ok = sum(r["status"] == "ok" for r in rows)
    lines = [[exp, len(rs), sum(r["status"] == "ok" for r in rs), f"{sum(float(r['train_time_s'] or 0) for r in rs):.1f}"]
             for exp, rs in per_experiment.items()]
    return (f"{len(rows)} runs recorded ({ok} ok) in {step.seconds:.1f} s, into `{places.results}`.\n\n"
            + table(["experiment", "runs", "ok", "training time (s, summed over runs)"], lines))


def add_findings(step: Step, places: Places, known_run_ids: set[str]) -> None:
    if step.name == "tests" and not step.failed:  # a failed step shows its log's last lines below
        lines = (places.logs / step.log_name).read_text(errors="replace").strip().splitlines()
        step.findings = f"pytest: `{lines[-1] if lines else 'no output'}`\n"
    elif step.name == "reruns" and step.status == "pass":
        identical, step.findings = compare_reruns(*places.reruns)
        if not identical:
            step.status, step.failed = "FAIL (not identical)", True
    elif step.name == "bench":
        step.findings = bench_findings(places)
    elif step.name in ("all", "multiseed"):
        step.findings = runs_findings(step, places, "fast" if step.name == "all" else "multiseed", known_run_ids)
    if step.failed:
        step.findings += f"\nLast lines of `logs/{step.log_name}`:\n\n" + log_tail(step, places)


# ---------------------------------------------------------------------------------------------------
# The summary and the files the caller takes away


def environment_line(cuda: bool) -> str:
    import torch

    from harness.machine import git_commit

    where = f"CUDA device: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})" if cuda else \
        "DRY RUN on the CPU: this machine has no CUDA device, so every step ran on the CPU with tiny limits " \
        "to check this script's plumbing; no figure below is a GPU figure"
    return (f"{where}. torch {torch.__version__}, Python {platform.python_version()}, host {socket.gethostname()}, "
            f"commit {git_commit()}, {os.cpu_count()} CPUs.")


def summary(steps: list[Step], cuda: bool, missing: list[str], mirror_note: str, started: str) -> str:
    passed = sum(not s.failed for s in steps)
    overview = table(["#", "step", "status", "time (s)", "box (s)", "log"], [
        [s.number, f"{s.name}: {s.title}", s.status, f"{s.seconds:.1f}", f"{s.box:g}", f"logs/{s.log_name}"]
        for s in steps])
    parts = [
        f"# GPU check\n\nStarted {started}. {environment_line(cuda)}\n",
        f"Missing Python packages: {', '.join(missing) if missing else 'none'}. {mirror_note}.\n",
        overview,
        f"**{passed} of {len(steps)} steps passed** in {sum(s.seconds for s in steps):.1f} s.\n",
    ]
    for s in steps:
        commands = "\n".join(shlex.join(c) for c in s.commands)
        parts.append(f"## {s.number}. {s.title}: {s.status}, {s.seconds:.1f} s\n\n"
                     f"```\n{commands}\n```\n\n{s.findings}")
    parts.append(f"Logs and CSVs: `{TARBALL}` (logs/, reruns/, results/).\n")
    return "\n".join(parts)


def pack(places: Places) -> None:
    """Every log and the CSVs of the reruns and the results directory, in one file."""
    with tarfile.open(places.out / TARBALL, "w:gz") as tar:
        tar.add(places.logs, arcname="logs")
        for name in ("runs.csv", "epochs.csv", "trace.csv"):
            for arcname, directory in (("reruns/first", places.reruns[0]), ("reruns/second", places.reruns[1]),
                                       ("results", places.results)):
                if (directory / name).exists():
                    tar.add(directory / name, arcname=f"{arcname}/{name}")


# ---------------------------------------------------------------------------------------------------


def clear_previous(places: Places, scratch_results: bool) -> None:
    """A previous check's files must not pass for this one's (a results directory named by the caller stays)."""
    for directory in (places.logs, places.work / "reruns", *([places.results] if scratch_results else [])):
        shutil.rmtree(directory, ignore_errors=True)
    for name in (*BENCH_FILES, "summary.md", TARBALL):
        (places.out / name).unlink(missing_ok=True)
    for directory in (places.out, places.logs):
        directory.mkdir(parents=True, exist_ok=True)


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/gpu-check/out",
                   help="where summary.md, bench_gpu.* and the tarball go (default build/gpu-check/out)")
    p.add_argument("--work", default="build/gpu-check", help="scratch: logs, data, reruns (default build/gpu-check)")
    p.add_argument("--results", default=None,
                   help="results directory of steps 4 and 5 (default WORK/results; `results` adds the CUDA rows to the committed ones)")
    p.add_argument("--data-dir", default=None, help="where the runs keep their datasets (default WORK/data)")
    p.add_argument("--data-mirror", default=os.environ.get("HARNESS_DATA_MIRROR"),
                   help="directory with the four MNIST *.gz files (default HARNESS_DATA_MIRROR, else data/mnist-mirror)")
    p.add_argument("--box", action="append", default=[], metavar="STEP=SECONDS",
                   help=f"a step's time box, repeatable (defaults: {', '.join(f'{k}={v}' for k, v in BOXES.items())})")
    p.add_argument("--only", default=",".join(BOXES), help="comma list of the steps to run (default all five)")
    p.add_argument("--jobs", type=int, default=usable_cpus(),
                   help="cells side by side in steps 4 and 5 (default: one per CPU this process may use, as make all)")
    p.add_argument("--bench-experiments", default="mnist-mlp mnist-cnn iris-ce", help="experiments of step 3")
    p.add_argument("--rerun-train-limit", type=int, default=2000, help="training samples of each rerun (default 2000)")
    p.add_argument("--inject-failure", choices=list(BOXES), default=None, help="make this step fail (to test the plumbing)")
    args = p.parse_args(argv)
    args.boxes = dict(BOXES)
    for item in args.box:
        name, _, seconds = item.partition("=")
        if name not in BOXES or not re.fullmatch(r"\d+(\.\d+)?", seconds):
            p.error(f"--box {item!r}: write STEP=SECONDS with STEP one of {', '.join(BOXES)}")
        args.boxes[name] = float(seconds)
    args.only = [s.strip() for s in args.only.split(",")]
    if unknown := [s for s in args.only if s not in BOXES]:
        p.error(f"--only: unknown step {unknown[0]!r}; steps: {', '.join(BOXES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    missing = missing_packages()
    if missing:
        print(f"gpu-check: this Python ({sys.executable}) lacks {', '.join(missing)}; the steps that need them will fail")
    if "torch" in missing:
        print("gpu-check: nothing can run without torch; run with an interpreter that has it (GPU_PYTHON=...)")
        return 2
    import torch

    cuda = torch.cuda.is_available()
    if not cuda:
        print(f"gpu-check: no CUDA device here (torch {torch.__version__}): a dry run on the CPU with tiny limits follows")
    if args.results and not cuda:
        print(f"gpu-check: --results {args.results} is for CUDA rows; the dry run writes into its scratch directory")
        args.results = None
    work = Path(args.work).resolve()
    places = Places(out=Path(args.out).resolve(), work=work, results=Path(args.results or work / "results").resolve(),
                    data=Path(args.data_dir or work / "data").resolve())
    clear_previous(places, args.results is None)
    mirror, mirror_note = mnist_mirror(args.data_mirror)
    print(f"gpu-check: {mirror_note}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1", "HARNESS_TEST_DATA_DIR": str(places.data)}
    env.pop("HARNESS_DATA_MIRROR", None)
    if mirror:
        env["HARNESS_DATA_MIRROR"] = str(mirror)

    from harness import rows as counted_rows

    known_run_ids = {r["run_id"] for r in counted_rows.read(places.results).runs.rows}
    steps = plan(cuda, args, places)
    for number, step in enumerate(steps, 1):
        print(f"[{number}/{len(steps)}] {step.name}: {step.title} (box {step.box:g} s) ...", flush=True)
        run_step(step, places, env)
        add_findings(step, places, known_run_ids)
        print(f"[{number}/{len(steps)}] {step.name}: {step.status} in {step.seconds:.1f} s, log {places.logs / step.log_name}", flush=True)

    (places.out / "summary.md").write_text(summary(steps, cuda, missing, mirror_note, started))
    pack(places)
    if cuda and any(s.name == "bench" and not s.failed for s in steps):  # beside the committed results
        for name in BENCH_FILES:
            shutil.copy2(places.out / name, ROOT / "results" / name)
    failed = [s.name for s in steps if s.failed]
    print(f"gpu-check: {len(steps) - len(failed)} of {len(steps)} steps passed"
          + (f" (failed: {', '.join(failed)})" if failed else "") + f"; summary in {places.out / 'summary.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
