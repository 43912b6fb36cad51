"""T1 #6: the iris MSE net built from the hand-made MyLinear layer (the recipe `iris-mylinear`).

The tutorial's `train_test_split` is unseeded; the harness gives it the run's seed as `random_state`.
The tutorial counts correct answers on the training set only.
"""


def main(seed, epochs=2000, root=None, train_limit=None, eval_limit=None):
    figures = {}  # added: the printed figures, by epoch

    import torch
    torch.set_num_threads(1)  # added: one thread
    from torch import nn
    from math import sqrt

    class MyLinear(nn.Module):
        def __init__(self, in_features, out_features):
            super().__init__()
            self.in_features = in_features # 入力値の数を保存
            self.out_features = out_features # 出力値の数を保存
            # 重みを格納する行列の定義
            k = 1 / in_features
            weight = torch.empty(out_features, in_features).uniform_(-sqrt(k),
                                                                        sqrt(k))
            self.weight = nn.Parameter(weight)
            # バイアスを格納するベクトルの定義
            bias = torch.empty(out_features).uniform_(-k, k)
            self.bias = nn.Parameter(bias)

        def forward(self, x):
            return torch.nn.functional.linear(x, self.weight, self.bias)

    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    import torch

    iris = load_iris()
    X_train, X_test, y_train, y_test = train_test_split(iris.data, iris.target, random_state=seed)  # changed: random_state=seed
    X_train = torch.from_numpy(X_train).float()
    y_train = torch.tensor([[float(x)] for x in y_train])
    X_test = torch.from_numpy(X_test).float()
    y_test = torch.tensor([[float(x)] for x in y_test])

    INPUT_FEATURES = 4
    HIDDEN = 5
    OUTPUT_FEATURES = 1

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = MyLinear(INPUT_FEATURES, HIDDEN)
            self.fc2 = MyLinear(HIDDEN, OUTPUT_FEATURES)

        def forward(self, x):
            x = self.fc1(x)
            x = torch.sigmoid(x)
            x = self.fc2(x)
            return x

    torch.manual_seed(seed)  # added: the harness seeds here
    net = Net()

    criterion = nn.MSELoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.003)

    EPOCHS = epochs  # changed: EPOCHS = 2000
    for epoch in range(EPOCHS):
        optimizer.zero_grad()
        outputs = net(X_train)
        loss = criterion(outputs, y_train)
        loss.backward()
        optimizer.step()

        if epoch % 100 == 99:
            print(f'epoch: {epoch+1:4}, loss: {loss.data}')
            figures[epoch + 1] = {"loss": loss.item()}  # added

    print('training finished')

    predict = (outputs + 0.5).int()
    compare = predict == y_train
    print(compare.sum())
    figures[EPOCHS]["train_correct"] = int(compare.sum())  # added
    return figures, net  # added
