"""The network of pytorch/examples' mnist_rnn/main.py: an LSTM of 64 units reads each image row by row (28
steps of 28 pixels); its last output goes through batch normalisation, two dropouts and two fully connected
layers to log-probabilities (for NLLLoss). Layers are created in that script's order (rnn, batchnorm,
dropout1, dropout2, fc1, fc2), so a seed gives the same initial weights as the script."""

import torch
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(input_size=28, hidden_size=64, batch_first=True)
        self.batchnorm = nn.BatchNorm1d(64)
        self.dropout1 = nn.Dropout2d(0.25)  # as the script has it; on (batch, 64) it drops whole rows' entries alike
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, _ = self.rnn(x.reshape(-1, 28, 28))  # (batch, 1, 28, 28) -> 28 steps of one row each
        x = self.dropout1(self.batchnorm(rows[:, -1, :]))
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)
