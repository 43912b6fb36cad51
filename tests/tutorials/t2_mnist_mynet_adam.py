"""T2: MNIST through MyNet 784-128-128-128-10 ending in Softmax, into CrossEntropyLoss, Adam, 5 epochs
(the recipe `mnist-mynet-adam`).

T2 prints its code with blanks to fill and parts elided. The smallest fixes that make it run, each
marked `# filled:`, with the most literal reading of what the text says:
1. The blanks: `root='./data', train=train, download=True` in NumberDataset, `image.view(-1)`
   (the text gives both answers).
2. `train_model`'s elided parts ("前略", "中略", "後略", and the step itself): the step the text lists
   (zero_grad, forward, loss, backward, step), and a validation pass after each epoch ("学習中に...
   検証データでもモデルの性能を評価する"): model.eval(), torch.no_grad(), its batch losses averaged over
   batches as the training loss is, its accuracy counted as `evaluate_model` counts.
3. `evaluate_model` and the main block are described, not printed: the text's lines (model.eval(),
   torch.no_grad(), torch.max(outputs, 1), total += labels.size(0), correct += ...,
   100 * correct / total) and hyperparameters (784, 128, 10, lr 0.001, batch 64, 5 epochs), the 80/20
   random_split with torch.Generator().manual_seed(42), train loader shuffled, the others in order.
The training loop iterates a parameter named `test_loader`, which the caller passes the training loader.
"""

from torch.utils.data import Subset  # added


def main(seed, epochs=5, root="./data", train_limit=None, eval_limit=None):
    figures = {}  # added: the printed figures, by epoch

    import torch
    torch.set_num_threads(1)  # added: one thread
    import torchvision
    import torchvision.transforms as transforms
    from torch.utils.data import Dataset

    class NumberDataset(Dataset):
        def __init__(self, train=True, transform=None):
            # torchvisionのMNISTデータセットをダウンロードして利用
            if transform is None:
                transform = transforms.Compose([
                    transforms.ToTensor(),
                    # 必要なら正規化も追加
                ])
            self.dataset = torchvision.datasets.MNIST(
                root=root, train=train, download=False, transform=transform  # filled (1); changed: root='./data', download=True
            )

        def __len__(self):
            return len(self.dataset)

        def __getitem__(self, idx):
            image, label = self.dataset[idx]
            # 画像を1次元ベクトルに変換
            image = image.view(-1)  # filled (1)
            return image, label

    import torch.nn as nn

    class MyNet(nn.Module):
        def __init__(self, input_size, hidden_size, output_size):
            super(MyNet, self).__init__()
            self.layer1 = nn.Linear(input_size, hidden_size)
            self.layer2 = nn.Linear(hidden_size, hidden_size)
            self.layer3 = nn.Linear(hidden_size, hidden_size)
            self.layer4 = nn.Linear(hidden_size, output_size)
            # 活性化関数を定義(ここではreluとsoftmax、ネットで使い方を調べてもよい　「Pytorch Relu」「Pytorch Softmax」)
            self.relu = nn.ReLU()
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x):
            x = self.layer1(x)
            x = self.relu(x)
            x = self.layer2(x)
            x = self.relu(x)
            x = self.layer3(x)
            x = self.relu(x)
            x = self.layer4(x)
            x = self.softmax(x)
            return x

    def train_model(model, test_loader, validation_loader, criterion, optimizer, epochs):
        # ... (前略)
        train_loss_history = []
        val_loss_history = []  # filled (2)
        # ... (中略)
        for epoch in range(epochs):
            model.train()  # filled (2)
            epoch_loss = 0.0
            for inputs, labels in test_loader:
                optimizer.zero_grad()  # filled (2): (勾配のリセット、順伝播、損失計算、逆伝播、パラメータ更新)
                outputs = model(inputs)  # filled (2)
                loss = criterion(outputs, labels)  # filled (2)
                loss.backward()  # filled (2)
                optimizer.step()  # filled (2)
                epoch_loss += loss.item()
            # エポック全体の平均損失を計算し、履歴に保存
            avg_epoch_loss = epoch_loss / len(test_loader)
            train_loss_history.append(avg_epoch_loss)
            # ... (後略)
            model.eval()  # filled (2): the validation pass
            val_loss, correct, total = 0.0, 0, 0  # filled (2)
            with torch.no_grad():  # filled (2)
                for inputs, labels in validation_loader:  # filled (2)
                    outputs = model(inputs)  # filled (2)
                    val_loss += criterion(outputs, labels).item()  # filled (2)
                    _, predicted = torch.max(outputs, 1)  # filled (2)
                    total += labels.size(0)  # filled (2)
                    correct += (predicted == labels).sum().item()  # filled (2)
            avg_val_loss = val_loss / len(validation_loader)  # filled (2)
            val_loss_history.append(avg_val_loss)  # filled (2)
            print(f"Epoch {epoch + 1}/{epochs}, Loss: {avg_epoch_loss:.4f}, "  # filled (2)
                  f"Val Loss: {avg_val_loss:.4f}, Val Accuracy: {100 * correct / total:.2f}%")  # filled (2)
            figures[epoch + 1] = {"train_loss": avg_epoch_loss, "valid_loss": avg_val_loss,  # added
                                  "valid_accuracy": 100 * correct / total}  # added
        return train_loss_history, val_loss_history  # filled (2)

    def evaluate_model(model, test_loader):  # filled (3)
        model.eval()  # filled (3)
        correct, total = 0, 0  # filled (3)
        with torch.no_grad():  # filled (3)
            for inputs, labels in test_loader:  # filled (3)
                outputs = model(inputs)  # filled (3)
                _, predicted = torch.max(outputs, 1)  # filled (3)
                total += labels.size(0)  # filled (3)
                correct += (predicted == labels).sum().item()  # filled (3)
        accuracy = 100 * correct / total  # filled (3)
        print(f"Test Accuracy: {accuracy:.2f}%")  # filled (3)
        return accuracy  # filled (3)

    from torch.utils.data import DataLoader, random_split  # filled (3): the main block

    INPUT_SIZE = 28 * 28  # filled (3)
    HIDDEN_SIZE = 128  # filled (3)
    OUTPUT_SIZE = 10  # filled (3)
    LEARNING_RATE = 0.001  # filled (3)
    BATCH_SIZE = 64  # filled (3)
    EPOCHS = epochs  # filled (3); changed: EPOCHS = 5

    full_dataset = NumberDataset(train=True)  # filled (3)
    test_dataset = NumberDataset(train=False)  # filled (3)
    train_size = int(0.8 * len(full_dataset))  # filled (3)
    val_size = len(full_dataset) - train_size  # filled (3)
    train_dataset, val_dataset = random_split(full_dataset, [train_size, val_size],  # filled (3)
                                              generator=torch.Generator().manual_seed(42))  # filled (3)
    if train_limit is not None:  # added: the first train_limit samples of the split only
        train_dataset = Subset(train_dataset, range(train_limit))  # added
    if eval_limit is not None:  # added: the first eval_limit samples of each evaluated split only
        val_dataset = Subset(val_dataset, range(eval_limit))  # added
        test_dataset = Subset(test_dataset, range(eval_limit))  # added
    train_loader = DataLoader(train_dataset, batch_size=BATCH_SIZE, shuffle=True)  # filled (3)
    val_loader = DataLoader(val_dataset, batch_size=BATCH_SIZE, shuffle=False)  # filled (3)
    test_loader = DataLoader(test_dataset, batch_size=BATCH_SIZE, shuffle=False)  # filled (3)

    torch.manual_seed(seed)  # added: the harness seeds here
    model = MyNet(INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE)  # filled (3)
    criterion = nn.CrossEntropyLoss()  # filled (3)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)  # filled (3)
    train_model(model, train_loader, val_loader, criterion, optimizer, EPOCHS)  # filled (3)
    figures[EPOCHS]["test_accuracy"] = evaluate_model(model, test_loader)  # filled (3); added: figures
    return figures, model  # added
