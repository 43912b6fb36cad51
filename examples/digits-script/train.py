"""A plain training script, as one might write it without any harness: an MLP on scikit-learn's digits,
printing its figures after each epoch. `digits-script.toml` runs it unchanged, once per seed."""

import argparse

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn


def main():
    parser = argparse.ArgumentParser(description="an MLP on scikit-learn's digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25, random_state=args.seed)
    x_train, x_test = torch.tensor(x_train, dtype=torch.float32), torch.tensor(x_test, dtype=torch.float32)
    y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)

    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(y_train)).split(32):
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            outputs = model(x_test)
            test_loss = loss_fn(outputs, y_test).item()
            correct = (outputs.argmax(1) == y_test).sum().item()
        print(f"epoch {epoch}: train loss {total / len(y_train):.4f}, test loss {test_loss:.4f}, "
              f"test accuracy {correct}/{len(y_test)}")


if __name__ == "__main__":
    main()
