"""pytorch/examples mnist_rnn/main.py: its Net (an LSTM over the rows), Adadelta(lr=0.1) and StepLR(step_size=1,
gamma=0.7), run as the script runs without --accel (the recipe `pytorch-mnist-rnn` in examples/pytorch-mnist-rnn).

The script as published (pytorch/examples, BSD-3-Clause), its command-line arguments replaced by their
defaults (`args.*` -> the value); every changed line is marked. Both loaders shuffle, the test loader too.
What it prints is kept by epoch: the test pass's `Average loss` (as printed, 4 decimals) and correct count.
"""

from torch.utils.data import Subset  # added


def main(seed, epochs=14, root="../data", train_limit=None):  # changed: main(), the arguments' defaults
    figures = {}  # added: the printed figures, by epoch

    import torch
    torch.set_num_threads(1)  # added: one thread
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.optim.lr_scheduler import StepLR
    from torchvision import datasets, transforms

    class Net(nn.Module):
        def __init__(self):
            super(Net, self).__init__()
            self.rnn = nn.LSTM(input_size=28, hidden_size=64, batch_first=True)
            self.batchnorm = nn.BatchNorm1d(64)
            self.dropout1 = nn.Dropout2d(0.25)
            self.dropout2 = nn.Dropout2d(0.5)
            self.fc1 = nn.Linear(64, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, input):
            # Shape of input is (batch_size,1, 28, 28)
            # converting shape of input to (batch_size, 28, 28)
            # as required by RNN when batch_first is set True
            input = input.reshape(-1, 28, 28)
            output, hidden = self.rnn(input)

            # RNN output shape is (seq_len, batch, input_size)
            # Get last output of RNN
            output = output[:, -1, :]
            output = self.batchnorm(output)
            output = self.dropout1(output)
            output = self.fc1(output)
            output = F.relu(output)
            output = self.dropout2(output)
            output = self.fc2(output)
            output = F.log_softmax(output, dim=1)
            return output

    def train(model, device, train_loader, optimizer, epoch):  # changed: train(args, ...)
        model.train()
        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            if batch_idx % 10 == 0:  # changed: args.log_interval
                print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                    epoch, batch_idx * len(data), len(train_loader.dataset),
                           100. * batch_idx / len(train_loader), loss.item()))
                # removed: if args.dry_run: break (False by default)

    def test(model, device, test_loader, epoch):  # changed: test(args, model, device, test_loader)
        model.eval()
        test_loss = 0
        correct = 0
        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                output = model(data)
                test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
                pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
                correct += pred.eq(target.view_as(pred)).sum().item()
                # removed: if args.dry_run: break (False by default)

        test_loss /= len(test_loader.dataset)

        print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
            test_loss, correct, len(test_loader.dataset),
            100. * correct / len(test_loader.dataset)))
        figures[epoch] = {"test_loss": '{:.4f}'.format(test_loss), "test_correct": correct}  # added

    # removed: the argument parser; its defaults are written where they are read
    device = torch.device("cpu")  # changed: if args.accel ... else (args.accel is False by default)

    torch.manual_seed(seed)  # changed: args.seed

    kwargs = {}  # changed: {'num_workers': 1, 'pin_memory': True} if args.accel else {}
    dataset1 = datasets.MNIST(root, train=True, download=False,  # changed: '../data', download=True
                              transform=transforms.Compose([
                                  transforms.ToTensor(),
                                  transforms.Normalize((0.1307,), (0.3081,))
                              ]))
    if train_limit is not None:  # added: the first train_limit training samples only
        dataset1 = Subset(dataset1, range(train_limit))  # added
    train_loader = torch.utils.data.DataLoader(
        dataset1,  # changed: the dataset made above
        batch_size=64, shuffle=True, **kwargs)  # changed: args.batch_size
    test_loader = torch.utils.data.DataLoader(
        datasets.MNIST(root, train=False, transform=transforms.Compose([  # changed: '../data'
            transforms.ToTensor(),
            transforms.Normalize((0.1307,), (0.3081,))
        ])),
        batch_size=1000, shuffle=True, **kwargs)  # changed: args.test_batch_size

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=0.1)  # changed: args.lr

    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)  # changed: args.gamma
    for epoch in range(1, epochs + 1):  # changed: args.epochs
        train(model, device, train_loader, optimizer, epoch)  # changed: train(args, ...)
        test(model, device, test_loader, epoch)  # changed: test(args, ...)
        scheduler.step()

    # removed: if args.save_model: torch.save(...) (False by default)
    return figures, model  # added
