"""A small fully connected classifier for 8x8 digits: Linear, ReLU and Dropout blocks of the given widths."""

from torch import nn


class DigitsMLP(nn.Module):
    def __init__(self, hidden: list[int], dropout: float = 0.1, inputs: int = 64, classes: int = 10):
        super().__init__()
        layers, width = [], inputs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
