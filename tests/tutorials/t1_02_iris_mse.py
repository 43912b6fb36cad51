"""T1 #2: iris, one regression output trained with MSELoss (the recipe `iris-mse`).

The tutorial's `train_test_split` is unseeded; the harness gives it the run's seed as `random_state`.
"""


def main(seed, epochs=2000, root=None, train_limit=None, eval_limit=None):
    figures = {}  # added: the printed figures, by epoch

    from sklearn.datasets import load_iris
    iris = load_iris()

    from sklearn.model_selection import train_test_split
    X_train, X_test, y_train, y_test = train_test_split(iris.data, iris.target, random_state=seed)  # changed: random_state=seed

    import torch
    torch.set_num_threads(1)  # added: one thread
    X_train = torch.from_numpy(X_train).float()
    y_train = torch.tensor([[float(x)] for x in y_train])
    X_test = torch.from_numpy(X_test).float()
    y_test = torch.tensor([[float(x)] for x in y_test])

    from torch import nn

    INPUT_FEATURES = 4
    HIDDEN = 5
    OUTPUT_FEATURES = 1

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(INPUT_FEATURES, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, OUTPUT_FEATURES)

        def forward(self, x):
            x = self.fc1(x)
            x = torch.sigmoid(x)
            x = self.fc2(x)
            return x

    torch.manual_seed(seed)  # added: the harness seeds here
    net = Net() # ニューラルネットワークのインスタンスを生成

    criterion = nn.MSELoss() # 損失関数
    optimizer = torch.optim.SGD(net.parameters(), lr=0.003) # 最適化アルゴリズム

    EPOCHS = epochs  # changed: EPOCHS = 2000
    for epoch in range(EPOCHS):
        optimizer.zero_grad() # 重みとバイアスの更新で内部的に使用するデータをリセット
        outputs = net(X_train) # 手順 1: ニューラルネットワークにデータを入力
        loss = criterion(outputs, y_train) # 手順 2: 正解ラベルとの比較
        loss.backward() # 手順 3-1: 誤差逆伝播
        optimizer.step() # 手順 3-2: 重みとバイアスの更新

        if epoch % 100 == 99: # 100 回繰り返すたびに損失を表示
            print(f'epoch: {epoch+1:4}, loss: {loss.data}')
            figures[epoch + 1] = {"loss": loss.item()}  # added

    print('training finished')

    predict = (outputs + 0.5).int()
    compare = predict == y_train
    print(compare.sum())
    figures[EPOCHS]["train_correct"] = int(compare.sum())  # added

    outputs = net(X_test)

    predict = (outputs + 0.5).int()
    compare = predict == y_test

    print(f'correct: {compare.sum()} / {len(predict)}')
    figures[EPOCHS]["test_correct"] = int(compare.sum())  # added
    return figures, net  # added
