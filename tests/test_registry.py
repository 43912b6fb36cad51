from pathlib import Path

import pytest

from harness.errors import RegistryError
from harness.registry import load_experiment, load_registry, select

T1_IDS = {"iris-mse", "iris-ce", "iris-mylinear", "mnist-mlp", "mnist-mlp-mylinear", "mnist-cnn", "mnist-cnn-50", "mnist-cnn-dropout-50"}

GOOD = """
id = "{id}"
title = "t"
source = "s"
[data]
dataset = "iris"
[model]
arch = "mlp"
sizes = [4, 5, 1]
activation = "sigmoid"
[training]
loss = "mse"
optimizer = "sgd"
lr = 0.003
epochs = 10
[smoke]
min = 0.5
"""


def write(tmp_path: Path, text: str, name: str = "exp") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text.format(id=name))
    return path


def test_registry_has_the_t1_experiments(registry):
    assert T1_IDS <= set(registry)


def test_t1_recipes_are_the_tutorials(registry):
    mlp, cnn50, drop = registry["mnist-mlp"], registry["mnist-cnn-50"], registry["mnist-cnn-dropout-50"]
    assert (mlp.training["optimizer"], mlp.training["lr"], mlp.training["momentum"], mlp.training["batch_size"], mlp.training["epochs"]) == ("sgd", 0.001, 0.9, 20, 2)
    assert mlp.data["transform"] == "normalize" and mlp.model["sizes"] == (784, 64, 10)
    assert cnn50.data["valid_fraction"] == 0.2 and cnn50.training["epochs"] == 50
    assert drop.model["dropout"] == 0.5 and drop.config_hash() != cnn50.config_hash()
    assert registry["iris-ce"].model["output"] == "softmax" and registry["iris-ce"].training["lr"] == 0.3
    assert registry["iris-mylinear"].model["layer"] == "mylinear"


def test_good_file_loads_with_defaults(tmp_path):
    exp = load_experiment(write(tmp_path, GOOD))
    assert exp.training["batch_size"] is None  # full batch
    assert exp.data["test_fraction"] == 0.25 and exp.published is None and exp.thresholds == {}


@pytest.mark.parametrize(
    "old,new,expect",
    [
        ('lr = 0.003', 'lr = 0.003\nlearning_rate = 1', "unknown key 'training.learning_rate'"),
        ('lr = 0.003', 'lr = "fast"', "'training.lr' must be a number"),
        ('epochs = 10', 'epochs = 0', "'training.epochs' must be greater than 0"),
        ('epochs = 10', 'epochs = 2.5', "'training.epochs' must be an integer"),
        ('epochs = 10\n', '', "missing key 'training.epochs'"),
        ('optimizer = "sgd"', 'optimizer = "sgdd"', "did you mean 'sgd'"),
        ('arch = "mlp"', 'arch = "resnet"', "'model.arch' is 'resnet'; allowed: mlp, cnn"),
        ('dataset = "iris"', 'dataset = "cifar"', "'data.dataset' is 'cifar'"),
        ('[smoke]', '[smok]', "unknown section [smok]"),
        ('title = "t"', 'title = "t"\ntitle = "u"', "not valid TOML"),
        ('sizes = [4, 5, 1]', 'sizes = [4, 5, 3]', "must end with 1"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path, old, new, expect):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(RegistryError) as err:
        load_experiment(path)
    assert str(path) in str(err.value) and expect in str(err.value)
    assert "\n" not in str(err.value)


def test_id_must_match_file_name(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text(GOOD.format(id="exp"))
    with pytest.raises(RegistryError, match="file is named other.toml"):
        load_experiment(path)


def test_select_suggests_the_closest_id(registry):
    with pytest.raises(RegistryError, match="did you mean 'mnist-mlp'"):
        select(registry, ["mnist-mpl"])
    assert [e.id for e in select(registry, ["all"])] == list(registry)


def test_config_hash_tracks_recipe_and_overrides(registry):
    exp = registry["mnist-mlp"]
    assert exp.config_hash() == exp.config_hash({})
    assert exp.config_hash({"epochs": 1}) != exp.config_hash()
    assert exp.config_hash() != registry["mnist-mlp-mylinear"].config_hash()


def test_empty_registry_is_an_error(tmp_path):
    with pytest.raises(RegistryError, match="no experiment files"):
        load_registry(tmp_path)
