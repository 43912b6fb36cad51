"""T5: MNIST through nn.Sequential 784-512-256-10 with Adam, 10 epochs (the recipe `mnist-sequential-adam`).

The printed code does not run; the smallest fixes that make it run, each marked `# fixed:`:
1. `torch.device("cuda" torch.cuda.is_available() else "cpu")` lacks its `if` (a syntax error), in
   `fit` and `evaluate`; here the device is the CPU, where the comparison runs.
2. `label = label.to(data)` casts the labels to the images' float dtype, which CrossEntropyLoss
   rejects for class-index targets: `label.to(device)`. (`data = data.to(data)` is a no-op on the
   CPU and stays.)
3. `evaluate` feeds the 1x28x28 images unflattened to the first Linear(784, ...): it flattens them as
   `fit` does (`data.view(-1, in_size)`).
4. `evaluate` counts `labels.shape(0)` (a call of a tuple): `labels.shape[0]`; and compares
   `predicted`, a name it never binds: `pred`, the name it does.
5. `evaluate` is defined but never called: it is called once, after training, as the text that
   introduces it says ("では学習したネットワークの性能を評価してみましょう").
The code prints only the last batch's loss (after the last epoch) and the test accuracy.
"""

from torch.utils.data import Subset  # added


def main(seed, epochs=10, root="./data", train_limit=None, eval_limit=None):
    figures = {}  # added: the printed figures, by epoch

    import torch
    torch.set_num_threads(1)  # added: one thread
    import torch.nn as nn
    import torch.optim as optim
    from torch.utils.data import DataLoader
    from torchvision.datasets import MNIST
    from torchvision.transforms import ToTensor


    train_ds = MNIST(root, train=True, download=False, transform=ToTensor())  # changed: "./data", download=True
    test_ds = MNIST(root, train=False, download=False, transform=ToTensor())  # changed: "./data", download=True
    if train_limit is not None:  # added: the first train_limit samples only
        train_ds = Subset(train_ds, range(train_limit))  # added
    if eval_limit is not None:  # added: the first eval_limit samples only
        test_ds = Subset(test_ds, range(eval_limit))  # added
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    test_loader = DataLoader(test_ds, batch_size=64, shuffle=False)

    n_class = 10
    in_size = 28 * 28

    torch.manual_seed(seed)  # added: the harness seeds here
    model = nn.Sequential(
        nn.Linear(in_size, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, n_class)
    )

    def fit(net, opt, criterion, loader, epochs):
        device = torch.device("cpu")  # fixed (1): torch.device("cuda" torch.cuda.is_available() else "cpu")
        net = net.to(device)
        for epoch in range(epochs):
            for data, label in loader:
                data = data.view(-1, in_size)
                data = data.to(data)
                label = label.to(device)  # fixed (2): label.to(data)

                opt.zero_grad()
                output = net(data)
                loss = criterion(output, label)

                loss.backward()
                opt.step()

        print("{}/{} - loss: {:.4f}".format(epoch+1, epochs, loss.cpu().item()))
        figures[epoch + 1] = {"loss": loss.cpu().item()}  # added
        return net


    optimizer = optim.Adam(model.parameters())
    model = fit(model, optimizer, nn.CrossEntropyLoss(), train_loader, epochs=epochs)  # changed: epochs=10

    def evaluate(net, loader):
        device = torch.device("cpu")  # fixed (1): torch.device("cuda" torch.cuda.is_available() else "cpu")
        net = net.eval()
        correct = 0
        total = 0

        with torch.no_grad():
            for data, labels in loader:
                data = data.view(-1, in_size)  # fixed (3): not in the printed evaluate
                data = data.to(device)
                labels = labels.to(device)

                outputs = net(data)
                _, pred = torch.max(outputs, 1)
                total += labels.shape[0]  # fixed (4): labels.shape(0)
                correct += (pred == labels).sum().item()  # fixed (4): predicted == labels

            print("Accuracy: {:.4%}".format(correct / total))
        figures[epochs]["test_acc"] = correct / total  # added

    evaluate(model, test_loader)  # fixed (5): never called in the printed code
    return figures, model  # added
