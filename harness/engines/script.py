"""Script mode: a recipe's script run unchanged, once per seed, as a subprocess; its figures read from what it
prints, by the recipe's regular expressions or as JSON lines ([script], docs/scripts.md).

The script gets the seed in its arguments (`{seed}`) or an environment variable, or has its global generators
seeded before it starts (`seed_globals`, by seeded_start.py), or seeds itself (`own_seed`); it runs in the recipe's
directory with this process's torch thread count (so `--jobs` shares the cores out), and is stopped, with
its process group, once it runs past `script.timeout`. Its exit status and the tail of its stderr go in the
row of a run that fails; a run counts as finished (ok) only where the script exits 0 having reported every
epoch it was asked for, or, one that stops itself, a last figure past its bound (`stop_metric`, `stop_at`).
"""

from __future__ import annotations

import collections
import ctypes
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from ..errors import HarnessError
from ..options import RunOptions
from ..training import RunOutcome, passed

STDERR_TAIL = 20  # lines of a failed script's stderr kept for its row's message
DIVERGED = ("train_loss", "valid_loss", "test_loss")  # a non-finite one of these ends a run diverged, as in the loop
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
SEEDED_START = Path(__file__).with_name("seeded_start.py")  # seeds a script that takes no seed, then runs it


def refusal(experiment, options: RunOptions) -> str | None:
    """Why a script cannot run with these options, from the recipe alone (None: it can)."""
    script = experiment.script
    if options.train_limit is not None or options.eval_limit is not None:
        return (f"{experiment.id}: --train-limit and --eval-limit are the harness's own data limits; a script reads its data "
                "itself: pass such a limit in 'script.args'")
    if options.vary is not None:
        return (f"{experiment.id}: --vary seeds each source of randomness on its own; a script takes one seed, which drives "
                "them all: variance by source needs a recipe the harness builds")
    if options.epochs is not None and not any("{epochs}" in a for a in script["args"]):
        return (f"{experiment.id}: --epochs {options.epochs}: the script takes its epochs from its own arguments; put {{epochs}} "
                "in 'script.args' to let --epochs change them")
    return None


def matrix_refusal(experiment, seeds, devices) -> str | None:
    """Why a script cannot run these seeds (None: the recipe's own) on these devices (None: it can): a script that
    seeds itself gives one outcome, and one that is not told its device trains where it puts itself."""
    own = experiment.script["own_seed"]
    if own is not None and seeds is not None and set(seeds) != {own}:
        return (f"{experiment.id}: the script seeds itself with {own} ('script.own_seed'): every seed would give its one "
                f"outcome; run --seeds {own}, or leave --seeds out")
    told = any("{device}" in a for a in experiment.script["args"])
    elsewhere = [d for d in devices if d != "cpu"]
    if elsewhere and not told:
        return (f"{experiment.id}: --devices {elsewhere[0]}: the script is not told its device (no {{device}} in 'script.args'), "
                "so its rows could not say where it trained; run it on cpu, or pass {device} to a script that takes it")
    return None


def command(experiment, seed: int, device: str, options: RunOptions) -> tuple[list[str], dict]:
    """The script's command line and environment for one run."""
    script = experiment.script
    values = {"{seed}": str(seed), "{epochs}": str(options.epochs_for(experiment)), "{device}": device}
    args = []
    for arg in script["args"]:
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        args.append(arg)
    threads = str(torch.get_num_threads())
    env = {**os.environ, **script["env"], "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    if script["seed_env"]:
        env[script["seed_env"]] = str(seed)
    path = str(Path(experiment.directory).resolve() / script["path"])
    if script["seed_globals"]:  # the script takes no seed: its generators are seeded before it starts
        return [sys.executable, str(SEEDED_START), str(seed), path, *args], env
    return [sys.executable, path, *args], env


class Reader:
    """The figures in a script's output, line by line: `rows[epoch][metric]`, each value scaled as the recipe says."""

    def __init__(self, script: dict):
        self.patterns = [re.compile(p) for p in script["patterns"]]
        self.json_lines, self.metrics, self.scale = script["json_lines"], script["metrics"], script["scale"]
        self.rows: dict[int, dict] = {}
        self.epoch: int | None = None  # the last epoch a line named
        self.unnamed = collections.Counter()  # matches of each pattern that name no epoch, before any line does

    def _put(self, epoch: int, figures: dict) -> int | None:
        row = self.rows.setdefault(epoch, {})
        row.update({m: float(v) * self.scale.get(m, 1) for m, v in figures.items() if m in self.metrics and v is not None})
        self.epoch = max(epoch, self.epoch or 0)
        return epoch

    def line(self, text: str) -> int | None:
        """Read one line; the epoch it gave figures of, if any."""
        if self.json_lines:
            if not text.lstrip().startswith("{"):
                return None
            try:
                found = json.loads(text)
            except ValueError:
                return None
            if not isinstance(found, dict) or not isinstance(found.get("epoch"), int) or isinstance(found["epoch"], bool):
                return None
            values = {m: v for m, v in found.items() if m in self.metrics and isinstance(v, (int, float)) and not isinstance(v, bool)}
            return self._put(found["epoch"], values) if values else None
        given = None
        for i, pattern in enumerate(self.patterns):
            match = pattern.search(text)
            if not match:
                continue
            figures = {k: v for k, v in match.groupdict().items() if k != "epoch"}
            if match.groupdict().get("epoch") is not None:
                epoch = int(match["epoch"])
            elif self.epoch is not None:
                epoch = self.epoch
            else:  # no line has named an epoch: this pattern's matches count them
                self.unnamed[i] += 1
                epoch = self.unnamed[i]
            given = self._put(epoch, figures)
        return given


def _ends_with_its_parent() -> None:
    """In the script's process, before it starts: on Linux the kernel kills it when the process that started it
    ends, however (a --jobs worker stopped by Ctrl-C or SIGKILL, which no `finally` outlives)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def _stop(process: subprocess.Popen) -> None:
    """End the script and whatever it started (its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_script(experiment, seed: int, device: str, options: RunOptions, on_epoch=None) -> RunOutcome:
    script = experiment.script
    argv, env = command(experiment, seed, device, options)
    expected = options.epochs_for(experiment)
    reader = Reader(script)
    stop = (script["stop_metric"], script["stop_at"]) if script["stop_metric"] else None
    errors: collections.deque = collections.deque(maxlen=STDERR_TAIL)
    start = time.perf_counter()
    try:
        process = subprocess.Popen(argv, cwd=Path(experiment.directory).resolve(), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
                                   preexec_fn=_ends_with_its_parent)
    except OSError as e:
        raise HarnessError(f"{experiment.path}: cannot start {script['path']} ({e.strerror})") from None
    timed_out = threading.Event()

    def expire():
        timed_out.set()
        _stop(process)

    timer = threading.Timer(script["timeout"], expire)
    drain = threading.Thread(target=lambda: errors.extend(line.rstrip("\n") for line in process.stderr), daemon=True)
    timer.start()
    drain.start()
    times, last = {}, start
    try:
        for text in process.stdout:
            epoch = reader.line(text.rstrip("\n"))
            if epoch is not None and epoch not in times:
                now = time.perf_counter()
                times[epoch], last = now - last, now
                if on_epoch:
                    on_epoch({"epoch": epoch, **reader.rows[epoch]})
        status = process.wait()
    except BaseException:  # Ctrl-C, SIGTERM: the script goes with the harness
        _stop(process)
        raise
    finally:
        timer.cancel()
    drain.join(timeout=5)
    wall = time.perf_counter() - start
    outcome = RunOutcome(train_time_s=wall)
    outcome.epochs = [{"epoch": e, **reader.rows[e], "epoch_time_s": times.get(e)} for e in sorted(reader.rows)]
    tail = " | ".join(line for line in errors if line.strip())[-800:]
    reported = sorted(reader.rows)
    if timed_out.is_set():
        outcome.status, outcome.message = "error", f"stopped after its timeout of {script['timeout']:g} s (script.timeout)"
    elif status != 0:
        name = f"signal {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        outcome.status, outcome.message = "error", f"{script['path']} ended with {name}" + (f": {tail}" if tail else "")
    elif not reported:
        how = "as JSON lines" if script["json_lines"] else "matching 'script.patterns'"
        outcome.status, outcome.message = "error", f"{script['path']} printed no figures {how}" + (f"; its stderr: {tail}" if tail else "")
    elif stop and reported[-1] <= expected and passed(stop, reader.rows[reported[-1]].get(stop[0])):
        last = reader.rows[reported[-1]][stop[0]]
        outcome.message = f"stopped after epoch {reported[-1]}: {stop[0]} {last!r} passed {stop[1]!r}"
    elif reported[-1] != expected:
        outcome.status = "error"
        outcome.message = f"{script['path']} reported figures up to epoch {reported[-1]}, not to {expected} as asked" + (
            f", nor a {stop[0]} past {stop[1]!r} ('script.stop_at')" if stop else "")
    if outcome.status == "ok":
        for row in outcome.epochs:
            bad = next((m for m in DIVERGED if m in row and not math.isfinite(row[m])), None)
            if bad:
                outcome.status, outcome.diverged_epoch = "diverged", row["epoch"]
                outcome.message = f"{bad} became {row[bad]} at epoch {row['epoch']}"
                outcome.epochs = [r for r in outcome.epochs if r["epoch"] <= row["epoch"]]
                break
    return outcome


def run(experiment, seeds, device: torch.device, options: RunOptions, on_epoch=None) -> list[RunOutcome]:
    reason = refusal(experiment, options)
    if reason:
        raise HarnessError(reason)
    return [run_script(experiment, seed, str(device), options, on_epoch) for seed in seeds]


def check(experiment, options: RunOptions) -> None:
    """What `harness validate` can say of a script without running it: the options it can honour, and that it
    compiles (a syntax error at its file and line)."""
    reason = refusal(experiment, options)
    if reason:
        raise HarnessError(reason)
    path = Path(experiment.directory) / experiment.script["path"]
    try:
        compile(path.read_bytes(), str(path), "exec")
    except SyntaxError as e:
        raise HarnessError(f"{path}:{e.lineno}: SyntaxError: {e.msg}") from None
