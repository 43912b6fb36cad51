"""pytorch/examples mnist/main.py: its Net, Adadelta(lr=1.0) and StepLR(step_size=1, gamma=0.7), run as the
script runs on a machine without an accelerator (the recipe `pytorch-mnist` in examples/pytorch-mnist).

The script as published (pytorch/examples, BSD-3-Clause), its command-line arguments replaced by their
defaults (`args.*` -> the value); `use_accel` is False, as on a CPU-only machine, so neither loader
shuffles. What it prints is kept by epoch: the training loss at every 10th batch (`loss.item()`), and
the test pass's `Average loss` (as printed, 4 decimals) and correct count.
"""

from torch.utils.data import Subset  # added


def main(seed, epochs=14, root="../data", train_limit=None, eval_limit=None):
    figures = {}  # added: the printed figures, by epoch

    import torch
    torch.set_num_threads(1)  # added: one thread
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torchvision import datasets, transforms
    from torch.optim.lr_scheduler import StepLR

    class Net(nn.Module):
        def __init__(self):
            super(Net, self).__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = F.relu(x)
            x = self.conv2(x)
            x = F.relu(x)
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = torch.flatten(x, 1)
            x = self.fc1(x)
            x = F.relu(x)
            x = self.dropout2(x)
            x = self.fc2(x)
            output = F.log_softmax(x, dim=1)
            return output

    def train(model, device, train_loader, optimizer, epoch):  # changed: train(args, model, ...)
        model.train()
        printed = []  # added
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
                printed.append(loss.item())  # added
        figures[epoch] = {"train_loss": printed}  # added

    def test(model, device, test_loader, epoch):  # changed: test(model, device, test_loader)
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

        test_loss /= len(test_loader.dataset)

        print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
            test_loss, correct, len(test_loader.dataset),
            100. * correct / len(test_loader.dataset)))
        figures[epoch].update(test_loss='{:.4f}'.format(test_loss), test_correct=correct)  # added

    use_accel = False  # changed: not args.no_accel and torch.accelerator.is_available()

    torch.manual_seed(seed)  # changed: args.seed

    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    train_kwargs = {'batch_size': 64}  # changed: args.batch_size
    test_kwargs = {'batch_size': 1000}  # changed: args.test_batch_size
    if use_accel:
        accel_kwargs = {'num_workers': 1,
                        'persistent_workers': True,
                        'pin_memory': True,
                        'shuffle': True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)

    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.1307,), (0.3081,))
        ])
    dataset1 = datasets.MNIST(root, train=True, download=False,  # changed: '../data', download=True
                              transform=transform)
    dataset2 = datasets.MNIST(root, train=False,  # changed: '../data'
                              transform=transform)
    if train_limit is not None:  # added: the first train_limit training samples only
        dataset1 = Subset(dataset1, range(train_limit))  # added
    if eval_limit is not None:  # added: the first eval_limit test samples only
        dataset2 = Subset(dataset2, range(eval_limit))  # added
    train_loader = torch.utils.data.DataLoader(dataset1, **train_kwargs)
    test_loader = torch.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)  # changed: args.lr

    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)  # changed: args.gamma
    for epoch in range(1, epochs + 1):  # changed: args.epochs
        train(model, device, train_loader, optimizer, epoch)  # changed: train(args, ...)
        test(model, device, test_loader, epoch)  # changed: test(model, device, test_loader)
        scheduler.step()

    return figures, model  # added
