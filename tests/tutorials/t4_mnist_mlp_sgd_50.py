"""T4: MNIST through a 784-128-64-10 net, plain SGD, 50 epochs (the recipe `mnist-mlp-sgd-50`).

The tutorial tests after every epoch. Its losses are batch-mean losses averaged over batches; its
figures reach the caller from `fit`'s print. The plotting code (before the model and at the end,
the latter naming lists the code never builds) is left out. Its peek at the first training batch
stays: it runs before the model is built, so before the seed.
"""

from torch.utils.data import Subset  # added


def main(seed, epochs=50, root="data", train_limit=None, eval_limit=None):
    figures = {}  # added: the printed figures, by epoch

    import torch
    torch.set_num_threads(1)  # added: one thread
    from torch import nn
    import torchvision
    from torchvision.transforms import ToTensor

    # MNISTデータセットをダウンロード
    train_dataset = torchvision.datasets.MNIST(root, train=True, transform=ToTensor(), download=False)  # changed: 'data', download=True
    test_dataset = torchvision.datasets.MNIST(root, train=False, transform=ToTensor(), download=False)  # changed: 'data', download=True
    if train_limit is not None:  # added: the first train_limit samples only
        train_dataset = Subset(train_dataset, range(train_limit))  # added
    if eval_limit is not None:  # added: the first eval_limit samples only
        test_dataset = Subset(test_dataset, range(eval_limit))  # added
    # DataLoaderでバッチ分け
    train_dataloader = torch.utils.data.DataLoader(train_dataset, batch_size=64, shuffle=True)
    test_dataloader = torch.utils.data.DataLoader(test_dataset, batch_size=64)

    imgs, labels = next(iter(train_dataloader)) # データローダーから最初のバッチを取得
    print(imgs.shape)
    print(labels[:10]) # 10個のラベルを表示

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear_1 = nn.Linear(28*28, 128) # 入力層(28x28画素 → 128ユニット)
            self.linear_2 = nn.Linear(128, 64) # 隠れ層(128ユニット → 64ユニット)
            self.linear_3 = nn.Linear(64, 10) # 出力層(64ユニット → 10クラス)

        def forward(self, x):
            x = x.view(-1, 28*28) # 入力画像を1次元に変換
            x = torch.relu(self.linear_1(x)) # ReLU活性化関数
            x = torch.relu(self.linear_2(x))
            logits = self.linear_3(x) # 最終層の出力
            return logits

    # 学習用関数
    def train(dataloader, model, loss_fn, optimizer):
        total_loss, total_correct = 0, 0
        for x, y in dataloader:
            x, y = x.to(device), y.to(device)
            y_pred = model(x) # モデルによる予測
            loss = loss_fn(y_pred, y) # 損失計算
            optimizer.zero_grad() # 前回の勾配計算結果をリセット
            loss.backward() # 勾配計算
            optimizer.step() # パラメータ更新
            total_loss += loss.item() # 累計損失
            total_correct += (y_pred.argmax(1) == y).sum().item() # 累計正解数
        return total_correct / len(dataloader.dataset), total_loss / len(dataloader)

    # 評価用関数
    def test(dataloader, model, loss_fn):
        total_loss, total_correct = 0, 0
        with torch.no_grad():
            for x, y in dataloader:
                x, y = x.to(device), y.to(device)
                y_pred = model(x)
                loss = loss_fn(y_pred, y)
                total_loss += loss.item()
                total_correct += (y_pred.argmax(1) == y).sum().item()
        return total_correct / len(dataloader.dataset), total_loss / len(dataloader)

    def fit(epochs, train_dataloader, test_dataloader, model, loss_fn, optimizer):
        for epoch in range(epochs):
            train_acc, train_loss = train(train_dataloader, model, loss_fn, optimizer)
            test_acc, test_loss = test(test_dataloader, model, loss_fn)
            print(f"Epoch {epoch+1}: Train Acc: {train_acc*100:.2f}%, Train Loss: {train_loss:.4f}, Test Acc: {test_acc*100:.2f}%, Test Loss: {test_loss:.4f}")
            figures[epoch + 1] = {"train_acc": train_acc, "train_loss": train_loss,  # added
                                  "test_acc": test_acc, "test_loss": test_loss}  # added

    # デバイスの設定
    device = 'cpu'  # changed: 'cuda' if torch.cuda.is_available() else 'cpu' (compared on the CPU)
    # モデル、損失関数、最適化アルゴリズムの準備
    torch.manual_seed(seed)  # added: the harness seeds here
    model = Model().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    # 学習を実行
    epochs = epochs  # changed: epochs = 50
    fit(epochs, train_dataloader, test_dataloader, model, loss_fn, optimizer)
    return figures, model  # added
