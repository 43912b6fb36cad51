"""The network of pytorch/examples' mnist/main.py: two 3x3 convolutions, max-pooling, two dropouts, two
fully connected layers, log-probabilities out (for NLLLoss). Layers are created in that script's order
(conv1, conv2, dropout1, dropout2, fc1, fc2), so a seed gives the same initial weights as the script."""

import torch
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(12 * 12 * 64, 128)  # 28x28 -> two valid 3x3 convolutions -> 24x24 -> pooled 12x12
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = self.dropout2(F.relu(self.fc1(torch.flatten(x, 1))))
        return F.log_softmax(self.fc2(x), dim=1)
