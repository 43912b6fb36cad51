"""T1 #10: the CNN for 50 epochs on a random 48k/12k train/validation split, and its Dropout twin Net2
(the recipes `mnist-cnn-50` and `mnist-cnn-dropout-50`: `main` and `main_dropout`).

The article's extracted text lost the indentation of some lines (the epoch loop's body after the
`train` call, Net2's `forward` after `self.pool(x)`); they are indented as the code's structure
demands (and as the identical Net's forward is printed). The tutorial validates after every epoch and
never tests; its losses are sums of batch means divided by the sample count. The plotting (`plot_graph`
and its calls, after training) is left out.
"""

from torch.utils.data import Subset  # added


def main(seed, epochs=50, root="./data", train_limit=None, eval_limit=None, network="Net"):  # added: network

    import torch
    torch.set_num_threads(1)  # added: one thread
    import torchvision
    import torchvision.transforms as transforms
    import torch.optim as optim
    # import matplotlib.pyplot as plt  # changed: the plots are not drawn
    from torch import nn
    from torchvision.datasets import MNIST
    from torch.utils.data import DataLoader
    from torch.utils.data import random_split

    transform = transforms.Compose([transforms.ToTensor(), transforms.
        Normalize((0.5,), (0.5,))])

    BATCH_SIZE = 20

    trainset = MNIST(root=root, train=True, transform=transform,  # changed: root='./data'
        download=False)  # changed: download=True
    #trainloader = DataLoader(trainset, batch_size=BATCH_SIZE, shuffle=True)
    testset = MNIST(root=root, train=False, transform=transform,  # changed: root='./data'
        download=False)  # changed: download=True
    testloader = DataLoader(testset, batch_size=BATCH_SIZE, shuffle=False)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5)
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 16, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = nn.functional.relu(x)
            x = self.pool(x)
            x = self.conv2(x)
            x = self.pool(x)
            x = x.reshape(-1, 16 * 16)
            x = self.fc1(x)
            x = nn.functional.relu(x)
            x = self.fc2(x)
            return x

    def train(net, dataloader, criterion, optimizer):
        net.train()
        total_loss = 0.0
        total_correct = 0
        for inputs, labels in dataloader:
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            _, predicted = torch.max(outputs, 1)
            total_correct += (predicted == labels).sum().item()
        avg_loss = total_loss / len(dataloader.dataset)
        accuracy = total_correct / len(dataloader.dataset)
        return avg_loss, accuracy

    def validate(net, dataloader, criterion):
        net.eval()
        with torch.no_grad():
            total_loss = 0.0
            total_correct = 0
            for inputs, labels in dataloader:
                outputs = net(inputs)
                loss = criterion(outputs, labels)
                total_loss += loss.item()
                _, predicted = torch.max(outputs, 1)
                total_correct += (predicted == labels).sum().item()
        avg_loss = total_loss / len(dataloader.dataset)
        avg_accuracy = total_correct / len(dataloader.dataset)
        return avg_loss, avg_accuracy

    def do_train_and_validate(net, trainset, criterion, optimizer, epochs):
        trainloader, validloader = get_loaders(trainset)
        history = {}
        history['train_loss_values'] = []
        history['train_accuracy_values'] = []
        history['valid_loss_values'] = []
        history['valid_accuracy_values'] = []
        for epoch in range(1, epochs + 1):
            print(f'epoch: {epoch:2}')
            t_loss, t_accu = train(net, trainloader, criterion, optimizer)
            v_loss, v_accu = validate(net, validloader, criterion)
            print(f'train_loss: {t_loss:.6f}, train_accuracy: {t_accu:3.4%}',
                  f'valid_loss: {v_loss:.6f}, valid_accuracy: {v_accu:3.4%}')
            history['train_loss_values'].append(t_loss)
            history['train_accuracy_values'].append(t_accu)
            history['valid_loss_values'].append(v_loss)
            history['valid_accuracy_values'].append(v_accu)
        return history

    def get_loaders(dataset):
        train_size = int(len(dataset) * 0.8)
        valid_size = len(dataset) - train_size
        train_set, valid_set = random_split(dataset, (train_size, valid_size))
        if train_limit is not None:  # added: the first train_limit samples of the split only
            train_set = Subset(train_set, range(train_limit))  # added
        if eval_limit is not None:  # added: the first eval_limit samples of the split only
            valid_set = Subset(valid_set, range(eval_limit))  # added
        trainloader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
        validloader = DataLoader(valid_set, batch_size=BATCH_SIZE, shuffle=False)
        return trainloader, validloader

    class Net2(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5)
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 16, 64)
            self.dropout = nn.Dropout()
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = nn.functional.relu(x)
            x = self.pool(x)
            x = self.conv2(x)
            x = self.pool(x)
            x = x.reshape(-1, 16 * 16)
            x = self.fc1(x)
            x = nn.functional.relu(x)
            x = self.dropout(x)
            x = self.fc2(x)
            return x

    torch.manual_seed(seed)  # added: the harness seeds here
    net = {"Net": Net, "Net2": Net2}[network]()  # changed: net = Net() (the first run), net = Net2() (the second)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)

    EPOCHS = epochs  # changed: EPOCHS = 50
    history = do_train_and_validate(net, trainset, criterion, optimizer, EPOCHS)
    print('Finished')

    figures = {epoch: {"train_loss": history['train_loss_values'][epoch - 1],  # added: the history, by epoch
                       "train_accuracy": history['train_accuracy_values'][epoch - 1],
                       "valid_loss": history['valid_loss_values'][epoch - 1],
                       "valid_accuracy": history['valid_accuracy_values'][epoch - 1]}
               for epoch in range(1, EPOCHS + 1)}
    return figures, net  # added


def main_dropout(seed, epochs=50, root="./data", train_limit=None, eval_limit=None):  # added
    """The same code training Net2, the net with Dropout."""
    return main(seed, epochs, root, train_limit, eval_limit, network="Net2")
