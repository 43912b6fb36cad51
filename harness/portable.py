"""`--portable`: the CPU kernels pinned to one instruction set, so that x86 machines of different makes
can run the same arithmetic.

Which kernels run, and so the last bits of every CPU result, is decided per machine: ATen picks its
vectorised code by the widest instruction set the CPU has (AVX-512 on one machine, AVX2 on another),
MKL picks its code path by vendor and instruction set, and oneDNN compiles its convolutions for the
machine at run time. The portable settings take each choice away from the machine:

- ATen's vector code at AVX2, which every x86 server CPU since 2013 (Intel Haswell, AMD Zen) has;
- MKL's conditional numerical reproducibility (CNR) at its AVX2 branch, in strict mode (its matrix
  products also independent of the thread count);
- oneDNN off (its convolutions done by ATen and MKL instead), and capped at AVX2 for anything that
  still reaches it.

ATen and MKL read their settings once, when first used, so they must be in the environment before
torch starts: `harness run --portable` starts itself again with them when they are not. Whatever runs
cells (this process, `--jobs` workers, Ray tasks) applies `apply_in_process` for the oneDNN switch,
which is torch's run-time flag rather than an environment variable. Every row records the settings in
force (`cpu_capability`, `kernel_settings`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SETTINGS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",  # oneDNN's older name for the same setting
}
# Set with SETTINGS: tells every process that runs cells to turn oneDNN off.
MARKER = "HARNESS_PORTABLE"


def environment() -> dict[str, str]:
    """The portable settings as environment variables (for a process that starts torch afresh)."""
    return {**SETTINGS, MARKER: "1"}


def in_force(environ=os.environ) -> bool:
    return all(environ.get(name) == value for name, value in environment().items())


def restart_with_settings(argv: list[str]) -> None:
    """Replace this process by `python -m harness ARGV` with the portable settings in its environment.

    exec, not a child process: the process keeps its id, its signals and its exit status, so Ctrl-C
    and SIGTERM reach the one process that writes results.
    """
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, **environment(), "PYTHONPATH": path}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "harness", *argv], env)


def apply_in_process() -> None:
    """Turn oneDNN off in this process where the portable settings are in force (idempotent)."""
    if in_force():
        import torch

        torch.backends.mkldnn.enabled = False
