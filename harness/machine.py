"""Facts about the machine and the code a run ran on, recorded in every row: the commit, torch and Python,
the host, the device's name, the threads, and what picks the CPU kernels."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path

import torch

from .catalogue import id_prefix


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
    """The commit of the code, its first 12 hex digits or more (`catalogue.id_prefix`); '+dirty' where the
    harness or registry differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "harness", "experiments"], cwd=root, timeout=10)
        return id_prefix(commit.stdout.strip()) + ("+dirty" if dirty.returncode else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=None)
def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Environment variables that change which CPU kernels run (and so the last bits of CPU results).
KERNEL_SETTINGS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE",
                   "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "DNNL_DEFAULT_FPMATH_MODE", "ONEDNN_DEFAULT_FPMATH_MODE")


def cpu_capability() -> str:
    """ATen's vector instruction set in force (DEFAULT, AVX2, AVX512, ...)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch before 2.1
        return ""


def kernel_settings() -> str:
    """The kernel-steering settings in force, as `NAME=value` words (empty: the libraries' defaults)."""
    settings = [f"{name}={os.environ[name]}" for name in KERNEL_SETTINGS if os.environ.get(name)]
    if not torch.backends.mkldnn.enabled:
        settings.append("mkldnn=off")
    return " ".join(settings)


def environment() -> dict:
    return {
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "host": socket.gethostname(),
        "threads": torch.get_num_threads(),
        "cpu_capability": cpu_capability(),
        "kernel_settings": kernel_settings(),
    }
