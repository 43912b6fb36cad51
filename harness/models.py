"""The tutorials' models, which their registry files name by class path like any user's model.

Two cover every tutorial: a fully connected stack (`harness.models:mlp`: T1's iris and MNIST nets,
T2's MyNet, T3's SimpleNet, T4's three-layer net, T5's Sequential) and T1's small CNN
(`harness.models:TutorialCNN`). Layers are created in the tutorials' order, so the same seed gives the
same initial weights as their code.
"""

from __future__ import annotations

from math import sqrt

import torch
from torch import nn
from torch.nn import functional as F


class MyLinear(nn.Module):
    """T1 #6's hand-made Linear: weight U(-sqrt(k), sqrt(k)), bias U(-k, k) with k = 1/in_features.

    The bias range is the tutorial's (nn.Linear uses sqrt(k) for both): a quirk reproduced on purpose.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        k = 1 / in_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-sqrt(k), sqrt(k)))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-k, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Flatten28(nn.Module):
    """`x.reshape(-1, 28 * 28)` as the tutorials write it; a no-op on already flat (iris) input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
LAYERS = {"linear": nn.Linear, "mylinear": MyLinear}
OUTPUTS = ("logits", "softmax")


def mlp(sizes: list[int], activation: str = "relu", layer: str = "linear", output: str = "logits") -> nn.Sequential:
    """Linear layers of the given widths (input first) with an activation between them.

    `output="softmax"` appends Softmax(dim=-1), as T1's iris-ce and T2's MyNet do before their
    CrossEntropyLoss (a double softmax, reproduced on purpose).
    """
    for name, value, allowed in (("activation", activation, ACTIVATIONS), ("layer", layer, LAYERS), ("output", output, OUTPUTS)):
        if value not in allowed:
            raise ValueError(f"{name} is {value!r}; allowed: {', '.join(allowed)}")
    if len(sizes) < 2 or not all(isinstance(w, int) and w > 0 for w in sizes):
        raise ValueError(f"sizes must be two or more positive widths, input first (e.g. [784, 64, 10]), got {list(sizes)}")
    linear, act = LAYERS[layer], ACTIVATIONS[activation]
    layers: list[nn.Module] = [Flatten28()]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(act())
        layers.append(linear(n_in, n_out))
    if output == "softmax":
        layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers)


class TutorialCNN(nn.Module):
    """T1 #8-10's Net: conv(1,6,5) relu pool, conv(6,16,5) pool (no ReLU: the tutorial's), fc 256-64-10.

    With dropout > 0 it is T1 #10's Net2 (Dropout after fc1's ReLU).
    """

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 16, 64)
        # Net2 creates its Dropout between fc1 and fc2; Dropout has no parameters, so the order
        # of creation leaves the initial weights unchanged.
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(self.conv2(x))
        x = x.reshape(-1, 16 * 16)
        x = F.relu(self.fc1(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc2(x)


def build_model(experiment) -> nn.Module:
    """A fresh model from the recipe's [model] section, initialised from the global RNG, then cast to the
    recipe's floating-point type (`training.dtype`), as a script's `model.double()` does."""
    from .datasets import dtype_of
    from .errors import RegistryError
    from .objects import instantiate

    model = instantiate(experiment.model, "model", "model", experiment)
    if not isinstance(model, nn.Module):
        raise RegistryError(f"{experiment.path}: [model] {experiment.model['class_path']} returned a {type(model).__name__}, "
                            "not a torch.nn.Module; name a module class or a function returning one")
    dtype = dtype_of(experiment)
    return model if dtype == torch.float32 else model.to(dtype)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
