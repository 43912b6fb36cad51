"""The model of pytorch/examples' time_sequence_prediction/train.py: two stacked LSTM cells of 51 units and a
linear read-out, stepped through a batch of sequences one time step at a time, each step predicting the
next value. Its layers are created in the script's order (lstm1, lstm2, linear), so a seed gives the
script's initial weights; the recipe's `dtype = "float64"` then casts them as the script's `seq.double()`."""

import torch
from torch import nn


class Sequence(nn.Module):
    def __init__(self, hidden: int = 51):
        super().__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, future: int = 0) -> torch.Tensor:
        """x: (batch, steps) -> (batch, steps + future), the prediction of each next value; `future` steps
        more are predicted from the model's own outputs."""
        h1, c1, h2, c2 = (x.new_zeros(x.size(0), self.hidden) for _ in range(4))
        outputs = []
        for value in x.split(1, dim=1):
            h1, c1 = self.lstm1(value, (h1, c1))
            h2, c2 = self.lstm2(h1, (h2, c2))
            outputs.append(self.linear(h2))
        for _ in range(future):
            h1, c1 = self.lstm1(outputs[-1], (h1, c1))
            h2, c2 = self.lstm2(h1, (h2, c2))
            outputs.append(self.linear(h2))
        return torch.cat(outputs, dim=1)
