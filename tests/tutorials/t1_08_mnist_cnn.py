"""T1 #8-9: MNIST through the small CNN (the recipe `mnist-cnn`).

The article's extracted text lost the indentation of the training loop's last lines (from
`loss.backward()` on); they are indented as in T1 #7's identical loop, the only reading that runs.
The tutorial prints the running loss of every 500 batches and, after training, the test accuracy.
"""

from torch.utils.data import Subset  # added


def main(seed, epochs=2, root="./data", train_limit=None, eval_limit=None):
    figures = {epoch: {} for epoch in range(1, epochs + 1)}  # added: the printed figures, by epoch

    import torch
    torch.set_num_threads(1)  # added: one thread
    import torchvision
    import torchvision.transforms as transforms

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.5,), (0.5,))])

    BATCH_SIZE = 20

    trainset = torchvision.datasets.MNIST(root=root, train=True,  # changed: root='./data'
                                           transform=transform, download=False)  # changed: download=True
    if train_limit is not None:  # added: the first train_limit samples only
        trainset = Subset(trainset, range(train_limit))  # added
    trainloader = torch.utils.data.DataLoader(trainset, batch_size=BATCH_SIZE,
                                              shuffle=True)

    testset = torchvision.datasets.MNIST(root=root, train=False,  # changed: root='./data'
                                           transform=transform, download=False)  # changed: download=True
    if eval_limit is not None:  # added: the first eval_limit samples only
        testset = Subset(testset, range(eval_limit))  # added
    testloader = torch.utils.data.DataLoader(testset, batch_size=BATCH_SIZE,
                                             shuffle=False)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 6, 5)
            self.pool = torch.nn.MaxPool2d(2, 2)
            self.conv2 = torch.nn.Conv2d(6, 16, 5)
            self.fc1 = torch.nn.Linear(16 * 16, 64)
            self.fc2 = torch.nn.Linear(64, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = torch.nn.functional.relu(x)
            x = self.pool(x)
            x = self.conv2(x)
            x = self.pool(x)
            x = x.reshape(-1, 16 * 16)
            x = self.fc1(x)
            x = torch.nn.functional.relu(x)
            x = self.fc2(x)
            return x

    import torch.optim as optim

    torch.manual_seed(seed)  # added: the harness seeds here
    net = Net()
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)

    EPOCHS = epochs  # changed: EPOCHS = 2
    for epoch in range(1, EPOCHS + 1):
        running_loss = 0.0
        for count, item in enumerate(trainloader, 1):
            inputs, labels = item

            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()

            running_loss += loss.item()
            if count % 500 == 0:
                print(f'#{epoch}, data: {count * 20}, running_loss: {running_loss / 500:1.3f}')
                figures[epoch].setdefault("running_loss", []).append(running_loss / 500)  # added
                running_loss = 0.0

    print('Finished')

    correct = 0
    total = 0
    with torch.no_grad():
        for data in testloader:
            inputs, labels = data
            outputs = net(inputs)
            _, predicted = torch.max(outputs, 1)
            total += len(outputs)
            correct += (predicted == labels).sum().item()

    print(f'correct: {correct}, accuracy: {correct} / {total} = {correct / total}')
    figures[EPOCHS].update(test_correct=correct, test_total=total)  # added
    return figures, net  # added
