"""torch-repro-harness: re-run small PyTorch training experiments across seeds and devices."""

__version__ = "0.1.0"
