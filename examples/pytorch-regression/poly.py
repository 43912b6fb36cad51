"""pytorch/examples' regression/main.py: a linear model fits a random polynomial of degree 4 from fresh batches.

`polynomial` draws the target function as the script does at import (its weights, then its bias, from the
global RNG: the recipe builds the data before the model, `data.before_model`) and returns a training split
drawn batch by batch: each call of its `train` function draws 32 new points. `PlainStep` is the script's
own update, `param.data.add_(-lr * param.grad)`: the product rounded, then the sum, where torch.optim's SGD
adds with one rounding; with SGD, seed 2 stops after 679 batches where the script stops after 551."""

import torch


def features(x: torch.Tensor, degree: int) -> torch.Tensor:
    """The columns x, x^2, ..., x^degree."""
    x = x.unsqueeze(1)
    return torch.cat([x**i for i in range(1, degree + 1)], 1)


def polynomial(degree: int = 4, batch: int = 32) -> dict:
    weights = torch.randn(degree, 1) * 5
    bias = torch.randn(1) * 5

    def draw():
        x = features(torch.randn(batch), degree)
        return x, x.mm(weights) + bias.item()

    return {"train": draw}


class PlainStep(torch.optim.Optimizer):
    """Gradient descent as the script writes it: each parameter less `lr` times its gradient, the product rounded."""

    def __init__(self, params, lr: float = 0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.add_(-group["lr"] * param.grad)
