"""Progress over a whole matrix: runs done of the total, time elapsed, an estimate of the time left,
and the cells being trained; a bar on a terminal (tqdm), plain lines every minute in a log.

The estimate weighs each cell by its work, seeds x epochs x training samples, at its experiment's
rate in seconds per unit of work: from this directory's earlier runs of it where there are some
(or another directory's, `--costs-from`), else from its cells finished so far, else (marked `~`) the
median of the known rates. Scaled by how fast the work actually went so far (elapsed over the
estimated seconds done, a running cell counting for the time it has run, at most 90% of its estimate), it
allows for side by side cells (`--jobs`, Ray) and for a loaded machine.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

from .named_datasets import DATASETS, training_samples

EVERY_S = 60.0  # a plain progress line this often where the output is not a terminal


def work(cell, options) -> float:
    """A cell's work: seeds x epochs x training samples."""
    data = cell.experiment.data
    # A dataset the harness does not know by name counts as one unit per epoch: its runs' own times then
    # say what an epoch costs (the estimate weighs each experiment by its own measured rate).
    n = training_samples(data) if data["dataset"] in DATASETS else 1
    if options.train_limit:
        n = min(n, options.train_limit)
    return len(cell.seeds) * options.epochs_for(cell.experiment) * max(n, 1)


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class MatrixProgress:
    """Told `started(planned, claimed)` as the executor takes a cell (claiming may have left seeds that
    another process has: `claimed` holds the rest), `finished(claimed, runs)` as its rows are recorded;
    `line()` says where the matrix stands; `close()` at the end."""

    def __init__(self, cells, options, label, known_rates: dict[str, list[float]] | None = None, log=print,
                 every_s: float = EVERY_S, terminal: bool | None = None):
        self.options, self.label, self.log = options, label, log
        self.work = {c.key: work(c, options) for c in cells}
        self.experiment_of = {c.key: c.experiment.id for c in cells}
        self.total_runs = sum(len(c.seeds) for c in cells)
        self.prior = {exp: statistics.median(rates) for exp, rates in (known_rates or {}).items() if rates}
        self.measured: dict[str, list[float]] = {}
        self.running: dict[tuple, object] = {}  # claimed cell's key -> the cell
        self.planned_of: dict[tuple, tuple] = {}  # claimed cell's key -> its planned cell's key
        self.began: dict[tuple, float] = {}  # claimed cell's key -> when it was taken
        self.done_runs, self.done = 0, set()
        self.start = time.monotonic()
        self.lock = threading.Lock()
        terminal = sys.stderr.isatty() if terminal is None else terminal
        self.bar = self._bar() if terminal else None
        self.stop = threading.Event()
        if not terminal and every_s:
            threading.Thread(target=self._tick, args=(every_s,), name="progress", daemon=True).start()

    def _bar(self):
        from tqdm import tqdm

        return tqdm(total=self.total_runs, desc="matrix", unit="run", file=sys.stderr, position=0, leave=False,
                    bar_format="{desc}: {n_fmt}/{total_fmt} runs |{bar}| {postfix}")

    def _tick(self, every_s: float) -> None:
        while not self.stop.wait(every_s):
            self.log(f"progress: {self.line()}")

    def rate(self, experiment: str) -> tuple[float | None, bool]:
        """Seconds per unit of work for `experiment`, and whether it is a guess from other experiments."""
        if experiment in self.measured:
            return statistics.median(self.measured[experiment]), False
        if experiment in self.prior:
            return self.prior[experiment], False
        known = list(self.prior.values()) + [statistics.median(r) for r in self.measured.values()]
        return (statistics.median(known), True) if known else (None, True)

    def estimate(self) -> tuple[float | None, bool]:
        """Seconds left, and whether the figure rests on a guess."""
        now = time.monotonic()
        running = {self.planned_of[claimed]: now - began for claimed, began in self.began.items()}
        remaining = done = 0.0
        guessed = False
        for key, units in self.work.items():
            rate, guess = self.rate(self.experiment_of[key])
            if rate is None:
                return None, True
            seconds = units * rate
            if key in self.done:
                done += seconds
                continue
            # a running cell: the part it has done, as estimated; one that overran is never quite done
            credit = min(running.get(key, 0.0), 0.9 * seconds)
            done += credit
            remaining += seconds - credit
            guessed |= guess
        if done <= 0:  # nothing under way yet: the rates as they are, one cell at a time
            return remaining, True
        return remaining * (now - self.start) / done, guessed

    def status(self, with_cells: bool = True) -> tuple[str, str]:
        """(runs done of the total, the rest: elapsed, time left, cells now training)."""
        with self.lock:
            return self._status(with_cells)

    def _status(self, with_cells: bool = True) -> tuple[str, str]:
        share = 100 * self.done_runs / self.total_runs if self.total_runs else 100
        counts = f"{self.done_runs}/{self.total_runs} runs ({share:.0f}%)"
        rest = f"{duration(time.monotonic() - self.start)} elapsed"
        if self.done_runs < self.total_runs:
            left, guessed = self.estimate()
            rest += ", time left unknown" if left is None else f", {'~' if guessed else ''}{duration(left)} left"
        now = [self.label(c) for c in self.running.values()] if with_cells else []
        if now:
            rest += "; now: " + ", ".join(now[:3]) + (f" and {len(now) - 3} more" if len(now) > 3 else "")
        return counts, rest

    def line(self) -> str:
        return ", ".join(self.status())

    def started(self, planned, claimed) -> None:
        with self.lock:
            key = planned.key
            dropped = len(planned.seeds) - len(claimed.seeds)  # finished or taken by another process
            self.total_runs -= dropped
            if claimed.seeds:
                self.work[key] = self.work[key] * len(claimed.seeds) / len(planned.seeds)
                self.planned_of[claimed.key] = key
                self.running[claimed.key] = claimed
                self.began[claimed.key] = time.monotonic()
            else:
                del self.work[key]
        if self.bar is not None:
            self.bar.total = self.total_runs
        self._refresh()

    def finished(self, claimed, runs: list[dict]) -> None:
        with self.lock:
            self.running.pop(claimed.key, None)
            self.began.pop(claimed.key, None)
            key = self.planned_of.get(claimed.key)
            if key is not None:
                self.done.add(key)
                wall = sum(float(r["wall_time_s"] or 0) for r in runs)
                if wall > 0 and all(r["status"] == "ok" for r in runs):
                    self.measured.setdefault(self.experiment_of[key], []).append(wall / self.work[key])
            self.done_runs += len(runs)
        if self.bar is not None:
            self.bar.update(len(runs))
        self._refresh()

    def _refresh(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.status()[1], refresh=True)

    def write(self, text: str) -> None:
        """A line of output that leaves the bar where it is."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            self.log(text)

    def close(self) -> None:
        self.stop.set()
        if self.bar is not None:
            self.bar.close()
