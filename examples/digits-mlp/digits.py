"""scikit-learn's handwritten digits (1,797 8x8 images, bundled: no download) as the recipe's own dataset:
a callable returning the splits as tensors. It takes the run's seed, so each seed draws its own split."""

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load(seed: int, test_fraction: float = 0.25) -> dict:
    digits = load_digits()
    x = digits.data / 16.0  # pixel intensities 0..16 -> 0..1
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=test_fraction, random_state=seed,
                                                        stratify=digits.target)
    as_x = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return {"train": (as_x(x_train), torch.tensor(y_train)), "test": (as_x(x_test), torch.tensor(y_test))}
