"""pytorch/examples time_sequence_prediction: generate_sine_wave.py and train.py (the recipe
`pytorch-time-sequence` in examples/pytorch-time-sequence).

The scripts as published (pytorch/examples, BSD-3-Clause), each a function here; every changed line is
marked. `length` shortens the waves (generate_sine_wave.py's L) and `steps` is train.py's --steps; the data
is handed over instead of saved to traindata.pt and loaded; the plots of each step's predictions are not
drawn (their prediction of 1000 further steps is still made: the test loss is taken from it). What train.py
prints is kept by step: each closure's training loss and the test loss.
"""


def generate_sine_wave(length=1000):  # changed: a function of L, returning the data
    import numpy as np
    import torch  # noqa: F401 - the script saves with torch

    np.random.seed(2)

    T = 20
    L = length  # changed: was 1000
    N = 100

    x = np.empty((N, L), 'int64')
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    data = np.sin(x / 1.0 / T).astype('float64')
    return data  # changed: was torch.save(data, open('traindata.pt', 'wb'))


def main(data, steps=15):  # changed: --steps an argument, the data handed over
    figures = {}  # added: the printed figures, by step
    import torch
    torch.set_num_threads(1)  # added: one thread
    import torch.nn as nn
    import torch.optim as optim
    import numpy as np

    class Sequence(nn.Module):
        def __init__(self):
            super(Sequence, self).__init__()
            self.lstm1 = nn.LSTMCell(1, 51)
            self.lstm2 = nn.LSTMCell(51, 51)
            self.linear = nn.Linear(51, 1)

        def forward(self, input, future = 0):
            outputs = []
            h_t = torch.zeros(input.size(0), 51, dtype=torch.double)
            c_t = torch.zeros(input.size(0), 51, dtype=torch.double)
            h_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)
            c_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)

            for input_t in input.split(1, dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            for i in range(future):# if we should predict the future
                h_t, c_t = self.lstm1(output, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            outputs = torch.cat(outputs, dim=1)
            return outputs

    # set random seed to 0
    np.random.seed(0)
    torch.manual_seed(0)
    # load data and make training set
    # removed: data = torch.load('traindata.pt'), the data handed over
    input = torch.from_numpy(data[3:, :-1])
    target = torch.from_numpy(data[3:, 1:])
    test_input = torch.from_numpy(data[:3, :-1])
    test_target = torch.from_numpy(data[:3, 1:])
    # build the model
    seq = Sequence()
    seq.double()
    criterion = nn.MSELoss()
    # use LBFGS as optimizer since we can load the whole data to train
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    #begin to train
    for i in range(steps):  # changed: was opt.steps
        print('STEP: ', i)
        figures[i + 1] = {"losses": []}  # added
        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            print('loss:', loss.item())
            figures[i + 1]["losses"].append(loss.item())  # added  # noqa: B023
            loss.backward()
            return loss
        optimizer.step(closure)
        # begin to predict, no need to track gradient here
        with torch.no_grad():
            future = 1000
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            print('test loss:', loss.item())
            figures[i + 1]["test_loss"] = loss.item()  # added
            y = pred.detach().numpy()  # noqa: F841
        # removed: the plot of y, saved as predict%d.pdf
    return figures, seq  # added
