"""CUDA graphs: a training step recorded once per batch shape and replayed.

At the tutorials' batch of 20 a GPU spends its time waiting for kernel launches; replaying a
recorded graph launches the whole step (forward, loss, backward, optimiser step) at once. Set
HARNESS_CUDA_GRAPHS=0 to step eagerly instead.
"""

from __future__ import annotations

import os

import torch

from ..training import Batch, StepFn

WARMUP_STEPS = 3  # as the PyTorch docs do before capturing


def enabled(device: torch.device) -> bool:
    return device.type == "cuda" and os.environ.get("HARNESS_CUDA_GRAPHS", "1") != "0"


class CapturedStep:
    """`step` recorded in a CUDA graph for the shape of one example batch; replays copy inputs in first.

    `step` must zero gradients with set_to_none (as `optimizer.zero_grad()` does): backward inside the
    capture then allocates them from the graph's private pool, and each replay overwrites them.
    """

    def __init__(self, step: StepFn, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x.clone(), y.clone()
        # Lazy state (optimiser buffers, cuBLAS handles, autograd) is created on a side stream first.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                step(self.x, self.y)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs, self.loss = step(self.x, self.y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        # The next replay overwrites the static outputs; callers may keep what they are given.
        return self.outputs.clone(), self.loss.clone()


def graphed_step(step: StepFn, examples: list[Batch], state: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> StepFn:
    """`step` captured once per batch shape in `examples` (two shapes where n % batch != 0).

    Warm-up and capture run real steps, so afterwards `state` (the weights) is put back and the
    optimiser's state zeroed: what a fresh Adam holds, and what SGD's momentum gives on its first step
    (0 * momentum + grad = grad exactly). Training then starts from the very weights the seed gave.
    The optimiser must be capturable where it keeps a step count (Adam(capturable=True)).
    """
    initial = [t.detach().clone() for t in state]
    captured = {tuple(y.shape): CapturedStep(step, x, y) for x, y in examples}
    with torch.no_grad():
        for tensor, value in zip(state, initial):
            tensor.copy_(value)
        for per_param in optimizer.state.values():
            for value in per_param.values():
                if torch.is_tensor(value):
                    value.zero_()
    torch.cuda.synchronize()

    def replay(x: torch.Tensor, y: torch.Tensor):
        return captured[tuple(y.shape)](x, y)

    return replay
