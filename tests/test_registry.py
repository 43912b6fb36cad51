import shutil
import sys
from pathlib import Path

import pytest

from harness import registry as registry_module
from harness.errors import RegistryError
from harness.registry import default_registry_dir, differing_settings, load_experiment, load_registry, select, variants

from .conftest import ROOT

T1_IDS = {"iris-mse", "iris-ce", "iris-mylinear", "mnist-mlp", "mnist-mlp-mylinear", "mnist-cnn", "mnist-cnn-50", "mnist-cnn-dropout-50"}

GOOD = """
id = "{id}"
title = "t"
source = "s"
[data]
dataset = "iris"
[model]
class_path = "harness.models:mlp"
[model.init_args]
sizes = [4, 5, 1]
activation = "sigmoid"
[loss]
class_path = "MSELoss"
[optimizer]
class_path = "SGD"
[optimizer.init_args]
lr = 0.003
[training]
epochs = 10
[smoke]
min = 0.5
"""


# A published section for GOOD, whose recipe (10 epochs) gets `log_every = 5`: epochs 5 and 10 are logged.
PUBLISHED = """[published]
metric = "test_acc"
value = 0.9
epoch = 10
{extra}
[smoke]"""


def write(tmp_path: Path, text: str, name: str = "exp") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace("{id}", name))
    return path


def refusal(path: Path) -> str:
    """load_experiment's whole refusal of `path`; it must start with the path."""
    with pytest.raises(RegistryError) as caught:
        load_experiment(path)
    assert str(caught.value).startswith(f"{path}: ")
    return str(caught.value).removeprefix(f"{path}: ")


def test_registry_has_the_t1_experiments(registry):
    assert T1_IDS <= set(registry)


def test_t1_recipes_are_the_tutorials(registry):
    mlp, cnn50, drop = registry["mnist-mlp"], registry["mnist-cnn-50"], registry["mnist-cnn-dropout-50"]
    assert mlp.optimizer == {"class_path": "torch.optim:SGD", "init_args": {"lr": 0.001, "momentum": 0.9}}
    assert (mlp.training["batch_size"], mlp.training["epochs"], mlp.loss["class_path"]) == (20, 2, "torch.nn:CrossEntropyLoss")
    assert mlp.data["transforms"] == HALF_NORMALIZE and mlp.model["init_args"] == {"sizes": [784, 64, 10]}
    assert cnn50.data["valid_fraction"] == 0.2 and cnn50.training["epochs"] == 50 and cnn50.model["class_path"] == "harness.models:TutorialCNN"
    assert drop.model["init_args"] == {"dropout": 0.5} and drop.config_hash() != cnn50.config_hash()
    assert registry["iris-ce"].model["init_args"]["output"] == "softmax" and registry["iris-ce"].optimizer["init_args"]["lr"] == 0.3
    assert registry["iris-mylinear"].model["init_args"]["layer"] == "mylinear"
    assert registry["iris-mse"].regression and not registry["iris-ce"].regression and registry["iris-mse"].scheduler is None


# T1's transform: ToTensor, then Normalize((0.5,), (0.5,))
HALF_NORMALIZE = ({"class_path": "torchvision.transforms:ToTensor", "init_args": {}},
                  {"class_path": "torchvision.transforms:Normalize", "init_args": {"mean": [0.5], "std": [0.5]}})


def test_good_file_loads_with_defaults(tmp_path):
    exp = load_experiment(write(tmp_path, GOOD))
    assert exp.training["batch_size"] is None  # full batch
    assert exp.data["test_fraction"] == 0.25 and exp.published is None and exp.thresholds == {}


@pytest.mark.parametrize(
    "old,new,expect",
    [
        ('lr = 0.003', 'lr = 0.003\nlearning_rate = 1', "'optimizer.init_args.learning_rate' is not an argument of torch.optim:SGD"),
        ('lr = 0.003', 'lr = "fast"', "'optimizer.init_args.lr' is 'fast'; allowed: a number above 0, at most 10.0"),
        ('lr = 0.003', 'lr = 0.003\nmomentum = 0.9\nnesterov = true\nbetas = [0.9, 0.99]', "'optimizer.init_args.betas' is not an argument"),
        ('epochs = 10', 'epochs = 10\nloss = "mse"', "unknown key 'training.loss'"),
        ('title = "t"', 'title = "t"\ntitel = "x"', "unknown key 'titel' (did you mean 'title'?)"),  # a top-level key
        ('title = "t"', 'title = "t"\ncolour = "red"', "unknown key 'colour'"),
        ('epochs = 10', 'epochs = 0', "'training.epochs' must be greater than 0"),
        ('epochs = 10', 'epochs = 2.5', "'training.epochs' must be an integer"),
        ('epochs = 10\n', '', "missing key 'training.epochs'"),
        ('class_path = "SGD"', 'class_path = "SGDD"', "'optimizer.class_path' 'SGDD': no such name in torch.optim (did you mean 'SGD'?)"),
        ('class_path = "harness.models:mlp"', 'class_path = "harness.models:resnet"',
         "'model.class_path': module 'harness.models' has no class or function 'resnet'"),
        ('class_path = "harness.models:mlp"', 'class_path = "os:system"', "is not beside the recipe (no "),
        ('class_path = "harness.models:mlp"', 'class_path = "nosuch:Net"', "nosuch.py) and outside the namespaces a model comes from"),
        ('class_path = "harness.models:mlp"', 'class_path = "harness models"', "'model.class_path' 'harness models' is not a class path"),
        ('sizes = [4, 5, 1]\n', '', "harness.models:mlp needs argument 'sizes': add it to [model] init_args"),
        ('activation = "sigmoid"', 'activation = "sigmoid"\ndropout = 0.5', "'model.init_args.dropout' is not an argument of harness.models:mlp"),
        ('class_path = "MSELoss"', 'class_path = "MSELos"', "(did you mean 'MSELoss'?)"),
        ('[training]', '[scheduler]\nclass_path = "StepLR"\n[training]', "torch.optim.lr_scheduler:StepLR needs argument 'step_size'"),
        ('[training]', '[scheduler]\nclass_path = "StepLR"\ninterval = "batch"\n[training]', "'scheduler.interval' is 'batch'; allowed: epoch, step"),
        ('[training]', '[scheduler]\nclass_path = "StepLR"\ninit_args = { step_size = 1, optimizer = 2 }\n[training]',
         "'scheduler.init_args.optimizer': the harness passes 'optimizer' itself"),
        ('dataset = "iris"', 'dataset = "cifar"', "'data.dataset' 'cifar': no such name in torchvision.datasets"),
        ('dataset = "iris"', 'dataset = "iris"\ninit_args = { root = "x" }', "'data.init_args' applies to datasets named by class path"),
        ('dataset = "iris"', 'dataset = "iris"\ntransforms = [{ class_path = "ToTensor" }]', "'data.transforms' applies to image datasets only"),
        ('dataset = "iris"', 'dataset = "iris"\neval_batch_size = 0', "'data.eval_batch_size' must be greater than 0"),
        ('epochs = 10', 'epochs = 10\nshuffle = "no"', "'training.shuffle' must be true or false"),
        ('[smoke]', '[smok]', "unknown section [smok]"),
        ('title = "t"', 'title = "t"\ntitle = "u"', "not valid TOML"),
        ('min = 0.5', 'min = 0.5\n[fashion_thresholds]\ntest_acc = 0.8', "[fashion_thresholds] applies to MNIST experiments only"),
        ('min = 0.5', 'min = 0.5\n[fashion_smoke]\nmin = 0.5', "[fashion_smoke] applies to MNIST experiments only"),
        ('min = 0.5', 'min = 0.5\n[fashion_thresholds]\ntest_ac = 0.8', "unknown key 'fashion_thresholds.test_ac'"),
        ('source = "s"', 'source = "s"\nseeds = 0', "'seeds' must be greater than 0"),
        ('source = "s"', 'source = "s"\nseeds = 1001', "'seeds' must be at most 1000,"),
        ('source = "s"', 'source = "s"\nseeds = "30"', "'seeds' must be an integer"),
        ('[smoke]', PUBLISHED.format(extra="").replace("epoch = 10\n", ""), "missing key 'published.epoch'"),
        ('[smoke]', PUBLISHED.format(extra="").replace("epoch = 10", "epoch = 11"), "'published.epoch' is 11, not an epoch the recipe logs"),
        ('[smoke]', PUBLISHED.format(extra="").replace("epoch = 10", "epoch = 0"), "'published.epoch' must be greater than 0"),
        ('[smoke]', PUBLISHED.format(extra="tolerance = 0.05"), "unknown key 'published.tolerance'"),
        ('[smoke]', PUBLISHED.format(extra='figures = [{ metric = "train_loss", epoch = 3, value = 0.1 }]'),
         "'published.figures[0].epoch' is 3, not an epoch the recipe logs (1 to training.epochs = 10, a multiple of training.log_every = 5"),
        ('[smoke]', PUBLISHED.format(extra='figures = [{ metric = "train_loss", value = 0.1 }]'), "missing key 'published.figures[0].epoch'"),
        ('[smoke]', PUBLISHED.format(extra='figures = [{ metric = "train_los", epoch = 5, value = 0.1 }]'),
         "'published.figures[0].metric' is 'train_los'"),
        ('[smoke]', PUBLISHED.format(extra='figures = [{ metric = "train_loss", epoch = 5, value = 0.1, tolerance = 0.1 }]'),
         "unknown key 'published.figures[0].tolerance'"),
        ('[smoke]', PUBLISHED.format(extra='figures = [0.1]'), "'published.figures' must be a list of tables with keys metric, epoch, value"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path, old, new, expect):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace("epochs = 10", "epochs = 10\nlog_every = 5").replace(old, new, 1))
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
    def refusal(ids, dataset=None):
        with pytest.raises(RegistryError) as err:
            select(registry, ids, dataset)
        return str(err.value)

    known = "`harness list --variants` shows them all; `--experiments-dir DIR` finds recipes of your own"
    assert refusal(["mnist-mpl"]) == f"unknown experiment 'mnist-mpl' (did you mean 'mnist-mlp'?); {known}"
    assert refusal(["MNIST-MLP"]) == f"unknown experiment 'MNIST-MLP' (did you mean 'mnist-mlp'?); {known}"
    assert refusal(["xyz"]) == f"unknown experiment 'xyz'; {known}"
    allowed = "allowed: iris, digits, wine, breast_cancer, mnist, fashion-mnist"
    assert refusal(["all"], "fashion") == f"--dataset: unknown dataset 'fashion' (did you mean 'fashion-mnist'?); {allowed}"
    assert refusal(["all"], "xyz") == f"--dataset: unknown dataset 'xyz'; {allowed}"
    assert refusal(["all"], "wine") == "--dataset: no registered experiment runs on 'wine'"
    assert [e.id for e in select(registry, ["all"])] == list(registry)


def test_config_hash_tracks_recipe_and_overrides(registry):
    exp = registry["mnist-mlp"]
    assert exp.config_hash() == exp.config_hash({})
    assert exp.config_hash({"epochs": 1}) != exp.config_hash()
    assert exp.config_hash() != registry["mnist-mlp-mylinear"].config_hash()


def test_empty_registry_is_an_error(tmp_path):
    with pytest.raises(RegistryError, match="no experiment files"):
        load_registry(tmp_path)


def test_t2_to_t5_recipes_are_the_tutorials(registry):
    mynet, logits = registry["mnist-mynet-adam"], registry["mnist-mynet-adam-logits"]
    assert mynet.model["init_args"] == {"sizes": [784, 128, 128, 128, 10], "output": "softmax"}
    assert (mynet.data["transforms"], mynet.data["valid_fraction"], mynet.data["split_seed"]) == (None, 0.2, 42)  # ToTensor alone
    assert mynet.optimizer == {"class_path": "torch.optim:Adam", "init_args": {"lr": 0.001}}
    assert (mynet.training["batch_size"], mynet.training["epochs"]) == (64, 5)
    # The ablation differs from T2 only in the output Softmax.
    assert logits.model["init_args"] == {"sizes": [784, 128, 128, 128, 10]} and logits.data == mynet.data
    assert (logits.training, logits.optimizer, logits.loss) == (mynet.training, mynet.optimizer, mynet.loss)
    assert logits.config_hash() != mynet.config_hash()

    simplenet = registry["iris-simplenet"]
    assert simplenet.model["init_args"] == {"sizes": [4, 16, 8, 3]}
    assert simplenet.loss["class_path"] == "torch.nn:CrossEntropyLoss" and "299" in simplenet.notes and "243" in simplenet.notes

    sgd50 = registry["mnist-mlp-sgd-50"]
    assert sgd50.model["init_args"] == {"sizes": [784, 128, 64, 10]} and sgd50.data["transforms"] is None
    assert sgd50.optimizer == {"class_path": "torch.optim:SGD", "init_args": {"lr": 0.001}} and sgd50.training["batch_size"] == 64
    curve = sgd50.published
    assert curve["curve_metric"] == "test_acc" and curve["curve_epochs"] == tuple(range(1, 51))
    assert (curve["curve_values"][0], curve["curve_values"][9], curve["curve_values"][-1]) == (0.167, 0.812, 0.917)
    assert curve["value"] == 0.917

    seq = registry["mnist-sequential-adam"]
    assert seq.model["init_args"] == {"sizes": [784, 512, 256, 10]} and seq.data["transforms"] is None
    assert seq.optimizer["class_path"] == "torch.optim:Adam" and (seq.training["batch_size"], seq.training["epochs"]) == (64, 10)


def test_every_new_experiment_has_thresholds_and_a_smoke_run(registry):
    for exp_id in ("mnist-mynet-adam", "mnist-mynet-adam-logits", "iris-simplenet", "mnist-mlp-sgd-50", "mnist-sequential-adam"):
        exp = registry[exp_id]
        assert exp.thresholds and exp.smoke["min"] > 0


def test_fashion_variant_changes_only_the_dataset(registry):
    base = registry["mnist-sequential-adam"]
    (variant,) = select(registry, ["mnist-sequential-adam@fashion-mnist"])
    assert variant.id == "mnist-sequential-adam@fashion-mnist" and variant.variant_of == base.id
    assert variant.data == {**base.data, "dataset": "fashion-mnist"}
    assert variant.model == base.model and variant.training == base.training
    assert variant.config_hash() != base.config_hash()
    assert variant.published is None and variant.thresholds == base.fashion_thresholds != base.thresholds
    assert variant.smoke == base.fashion_smoke
    # The variant is the Fashion-MNIST run: its title says so, and it carries no further fashion_* settings.
    assert variant.title == f"{base.title} (on fashion-mnist)"
    assert variant.fashion_thresholds == {} and variant.fashion_smoke is None
    assert select(registry, ["mnist-sequential-adam"], "fashion-mnist") == [variant]
    assert registry["mnist-mlp-sgd-50"].published and not variants(registry)["mnist-mlp-sgd-50@fashion-mnist"].published


def test_dataset_option_selects_what_can_run_on_it(registry, monkeypatch):
    chosen = select(registry, ["all"], "fashion-mnist")
    mnist_ids = [e.id for e in registry.values() if e.data["dataset"] == "mnist"]
    assert [e.id for e in chosen] == [f"{i}@fashion-mnist" for i in mnist_ids]
    assert {e.data["dataset"] for e in chosen} == {"fashion-mnist"}
    assert select(registry, ["iris-ce"], "iris") == [registry["iris-ce"]]
    with pytest.raises(RegistryError, match="iris-ce trains on iris; it runs on no other dataset, not on 'fashion-mnist'"):
        select(registry, ["iris-ce"], "fashion-mnist")
    with pytest.raises(RegistryError, match="^mnist-mlp trains on mnist; it also runs on fashion-mnist, not on 'iris'$"):
        select(registry, ["mnist-mlp"], "iris")

    monkeypatch.setitem(registry_module.VARIANT_DATASETS, "mnist", ("fashion-mnist", "kmnist"))
    with pytest.raises(RegistryError, match="; it also runs on fashion-mnist, kmnist, not on 'iris'$"):
        select(registry, ["mnist-mlp"], "iris")
    with pytest.raises(RegistryError, match="unknown dataset 'fashion'.*did you mean 'fashion-mnist'"):
        select(registry, ["all"], "fashion")
    with pytest.raises(RegistryError, match="unknown experiment 'iris-ce@fashion-mnist'"):
        select(registry, ["iris-ce@fashion-mnist"])


def test_the_registry_directory_is_the_environments_then_the_checkouts_then_the_installed_copy(tmp_path, monkeypatch):
    checkout = Path(registry_module.__file__).resolve().parent.parent / "experiments"
    monkeypatch.setenv("HARNESS_EXPERIMENTS", str(tmp_path / "mine"))
    assert default_registry_dir() == tmp_path / "mine"
    monkeypatch.setenv("HARNESS_EXPERIMENTS", "")  # set but empty: as if unset
    assert default_registry_dir() == checkout
    monkeypatch.delenv("HARNESS_EXPERIMENTS")
    assert default_registry_dir() == checkout
    # Installed: no experiments/ beside the package; the wheel's copy under the prefix.
    monkeypatch.setattr(registry_module, "__file__", str(tmp_path / "site-packages" / "harness" / "registry.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    assert default_registry_dir() == tmp_path / "venv" / "share" / "torch-repro-harness" / "experiments"


MNIST_MLP = (ROOT / "experiments" / "mnist-mlp.toml").read_text(encoding="utf-8").replace('id = "mnist-mlp"', 'id = "{id}"')
LOGGED = GOOD.replace("epochs = 10", "epochs = 10\nlog_every = 5")


@pytest.mark.parametrize("old,new,name,expect", [
    ("[smoke]", "[smok]", "exp", "unknown section [smok] (did you mean 'smoke'?); allowed: ablation, data, fashion_smoke, "
     "fashion_thresholds, loss, margins, metrics, model, optimizer, published, scheduler, script, smoke, steps, thresholds, training"),
    ('[loss]\nclass_path = "MSELoss"\n', "", "exp", "missing section [loss]"),
    ("", "", "-rm", "'id' '-rm' is not a plain name: allowed: 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit"),
    ('title = "t"', 'title = "t"\ntitel = "x"', "exp", "unknown key 'titel' (did you mean 'title'?); allowed: id, title, source, notes, seeds"),
    ("epochs = 10", "epochs = 10\nloss = 1", "exp",
     "unknown key 'training.loss'; allowed: batch_size, shuffle, epochs, log_every, trace_every, tutorial_valid, tutorial_test, "
     "batches_per_epoch, stop_metric, stop_at, dtype, metrics"),
])
def test_a_file_of_the_wrong_shape_is_the_whole_message(tmp_path, old, new, name, expect):
    assert refusal(write(tmp_path, GOOD.replace(old, new, 1), name)) == expect


def test_recipes_do_not_share_their_default_tables(tmp_path):
    """A default table (`init_args = {}` where none is given) is each recipe's own: editing one recipe's
    leaves the next recipe read untouched."""
    first = load_experiment(write(tmp_path, GOOD, "first"))
    first.loss["init_args"]["reduction"] = "sum"
    assert load_experiment(write(tmp_path, GOOD, "second")).loss["init_args"] == {}


@pytest.mark.parametrize("old,new,expect", [
    ("lr = 0.003", "lr = nan", "'optimizer.init_args.lr' must be a finite number, got nan"),
    ("sizes = [4, 5, 1]", "sizes = [4, inf, 1]", "'model.init_args.sizes' must be a finite number, got inf"),
    ("lr = 0.003", "lr = 0.003\nextra = { outer = { inner = -inf } }", "'optimizer.init_args.extra.outer.inner' must be a finite number, got -inf"),
    ("lr = 0.003", "lr = 1979-05-27",
     "'optimizer.init_args.lr' is datetime.date(1979, 5, 27): arguments are strings, numbers, booleans, lists or tables"),
    ("lr = 0.003", "lr = 0.003\nwhen = [1979-05-27]",
     "'optimizer.init_args.when' is datetime.date(1979, 5, 27): arguments are strings, numbers, booleans, lists or tables"),
])
def test_an_argument_that_no_constructor_could_take_is_named_by_its_whole_key(tmp_path, old, new, expect):
    assert refusal(write(tmp_path, GOOD.replace(old, new))) == expect


@pytest.mark.parametrize("text,expect", [
    (LOGGED.replace("[smoke]", PUBLISHED.format(extra="curve_epochs = [5, 10]")),
     "'published.curve_epochs' and 'published.curve_values' must be given together, same length"),
    (LOGGED.replace("[smoke]", PUBLISHED.format(extra="curve_epochs = [5, 10]\ncurve_values = [0.5]")),
     "'published.curve_epochs' and 'published.curve_values' must be given together, same length"),
    (LOGGED.replace("[smoke]", PUBLISHED.format(extra="curve_epochs = [5, 10]\ncurve_values = [0.5, 0.6]")),
     "'published.curve_metric' names what the curve measures"),
    (LOGGED.replace("[smoke]", PUBLISHED.format(extra="trace = [1.0, 0.5]")), "'published.trace' needs 'training.trace_every'"),
    (LOGGED.replace("[smoke]", PUBLISHED.format(extra="curve_epochs = [5, 10]\ncurve_values = [nan, 0.5]\ncurve_metric = \"test_acc\"")),
     "'published.curve_values' must hold finite numbers, got [nan, 0.5]"),
    (GOOD.replace("min = 0.5", 'min = 0.5\nmetric = "valid_acc"'), "'smoke.metric' 'valid_acc' needs a validation split"),
    (MNIST_MLP + '\n[fashion_smoke]\nepochs = 1\nmetric = "valid_loss"\nmin = 0.5\n',
     "'fashion_smoke.metric' 'valid_loss' needs a validation split"),
    (GOOD.replace('dataset = "iris"', 'dataset = "iris"\ntest_fraction = nan'), "'data.test_fraction' must be a finite number, got nan"),
    (MNIST_MLP + "\n[fashion_smoke]\nepochs = 100001\nmin = 0.5\n", "'fashion_smoke.epochs' is 100001; allowed: 1 to 100000"),
    # iris holds out ceil(0.25 * 150) = 38 for its test: 112 samples to train on
    (GOOD.replace("epochs = 10", "epochs = 10\nbatch_size = 113"), "'training.batch_size' is 113; allowed: 1 to 112 (the samples it trains on)"),
    # and a validation split is taken from those 112: 0.95 keeps int(112 * 0.05) = 5
    (GOOD.replace('dataset = "iris"', 'dataset = "iris"\nvalid_fraction = 0.95'), "'data.valid_fraction' 0.95 holds out 107 of 112 "
     "samples, leaving 5 to train; each side needs at least 10: allowed: about 0.08929 to 0.9107"),
])
def test_rules_that_span_keys_are_the_whole_message(tmp_path, text, expect):
    assert refusal(write(tmp_path, text)) == expect


def test_a_batch_of_every_training_sample_and_a_missing_directory(tmp_path):
    assert load_experiment(write(tmp_path, GOOD.replace("epochs = 10", "epochs = 100000"), "longest")).training["epochs"] == 100000
    # A list of numbers is read as floats: 1 and 1.0 are one recipe (and one config hash).
    curve = PUBLISHED.format(extra="curve_epochs = [5, 10]\ncurve_values = [1, 0.5]\ncurve_metric = \"test_acc\"")
    published = load_experiment(write(tmp_path, LOGGED.replace("[smoke]", curve), "ints")).published
    assert published["curve_values"] == (1.0, 0.5) and [type(v) for v in published["curve_values"]] == [float, float]
    assert load_experiment(write(tmp_path, GOOD.replace("epochs = 10", "epochs = 10\nbatch_size = 112"))).training["batch_size"] == 112
    with pytest.raises(RegistryError) as caught:
        load_registry(tmp_path / "nowhere")
    assert str(caught.value) == f"{tmp_path / 'nowhere'}: no experiments directory (set HARNESS_EXPERIMENTS or run from the project)"


def test_variant_separator_is_reserved_in_ids(tmp_path):
    with pytest.raises(RegistryError, match="may not contain '@'"):
        load_experiment(write(tmp_path, GOOD, name="a@b"))


def test_config_hashes_of_the_t1_experiments_are_unchanged(registry):
    # A key added to the schema with a default leaves hashes alone; these moved on purpose when the recipes
    # came to state which evaluations their tutorial performs, and again when they came to name their model,
    # loss, optimiser and transforms by class path.
    expected = {"iris-mse": "6f52041cc878", "mnist-mlp": "faf72a57bca5", "mnist-cnn-50": "314c7829d893"}
    assert {k: registry[k].config_hash() for k in expected} == expected


def test_published_figures_and_default_seeds(tmp_path):
    extra = 'figures = [{ metric = "train_loss", epoch = 5, value = 0.25 }]'
    text = GOOD.replace("epochs = 10", "epochs = 10\nlog_every = 5").replace("[smoke]", PUBLISHED.format(extra=extra))
    exp = load_experiment(write(tmp_path, text))
    assert exp.seeds == 5  # no `seeds` in the file: the global default
    assert exp.published_figures == [{"metric": "test_acc", "epoch": 10, "value": 0.9},
                                     {"metric": "train_loss", "epoch": 5, "value": 0.25}]
    # Neither the default seeds nor the published figures are part of the recipe.
    seeded = load_experiment(write(tmp_path, text.replace('source = "s"', 'source = "s"\nseeds = 40'), "other"))
    assert seeded.seeds == 40 and seeded.config == exp.config


def test_every_published_figure_carries_its_epoch(registry):
    cnn50 = registry["mnist-cnn-50"].published_figures
    assert cnn50[0] == {"metric": "valid_acc", "epoch": 12, "value": 0.988583}  # T1 #10's best, not its epoch 50
    assert {(f["metric"], f["epoch"]) for f in cnn50[1:]} == {("valid_acc", 1), ("valid_acc", 4), ("valid_acc", 10), ("train_acc", 13)}
    assert [(f["metric"], f["epoch"]) for f in registry["iris-mse"].published_figures] == [
        ("test_acc", 2000), ("train_loss", 2000), ("train_acc", 2000)]
    assert registry["mnist-mlp"].published_figures[0]["epoch"] == registry["mnist-cnn"].published_figures[0]["epoch"] == 2


def test_default_seeds_per_experiment(registry):
    seeds = {exp_id: exp.seeds for exp_id, exp in registry.items()}
    assert all(seeds[e] == 50 for e in ("iris-mse", "iris-ce", "iris-mylinear", "iris-simplenet"))
    assert all(seeds[e] >= 30 for e in ("mnist-mlp", "mnist-mlp-mylinear", "mnist-cnn", "mnist-mynet-adam", "mnist-mynet-adam-logits"))
    assert seeds["mnist-cnn-50"] == seeds["mnist-cnn-dropout-50"] == 5
    assert all(v.seeds == registry[v.variant_of].seeds for v in variants(registry).values())
    assert sum(seeds.values()) == 380  # the runs `make all` trains (docs/command-line.md)


ABLATION = """
[ablation]
of = "{of}"
about = "a wider hidden layer"
shared = "the split"
metrics = ["test_acc"]
"""


def ablation_registry(tmp_path: Path, of: str = "base", recipe: str = "sizes = [4, 8, 1]", section: str = ABLATION) -> Path:
    write(tmp_path, GOOD, "base")
    write(tmp_path, GOOD.replace("sizes = [4, 5, 1]", recipe) + section.replace("{of}", of), "wider")
    return tmp_path


def test_an_ablation_names_its_base_and_the_report_reads_what_differs(tmp_path):
    registry = load_registry(ablation_registry(tmp_path))
    wider = registry["wider"]
    assert wider.ablation == {"of": "base", "about": "a wider hidden layer", "shared": "the split", "metrics": ("test_acc",),
                              "outcomes": "final", "not_comparable": {}}
    assert differing_settings(registry["base"], wider) == ["model.init_args.sizes: [4, 5, 1] → [4, 8, 1]"]
    # not part of the recipe: the section leaves the config hash alone
    alone = tmp_path / "alone"
    alone.mkdir()
    assert wider.config_hash() == load_experiment(write(alone, GOOD.replace("sizes = [4, 5, 1]", "sizes = [4, 8, 1]"), "wider")).config_hash()


def test_the_tutorial_ablations_are_data(registry):
    pairs = {e.id: e.ablation["of"] for e in registry.values() if e.ablation}
    assert pairs == {"iris-mylinear": "iris-mse", "mnist-mlp-mylinear": "mnist-mlp", "mnist-mynet-adam-logits": "mnist-mynet-adam",
                     "mnist-cnn-dropout-50": "mnist-cnn-50"}


@pytest.mark.parametrize("of,recipe,section,expect", [
    ("nosuch", "sizes = [4, 8, 1]", ABLATION, "'ablation.of' names 'nosuch', which is not in the registry"),
    ("bas", "sizes = [4, 8, 1]", ABLATION, "(did you mean 'base'?)"),
    ("wider", "sizes = [4, 8, 1]", ABLATION, "'ablation.of' names the experiment itself"),
    ("base", "sizes = [4, 5, 1]", ABLATION, "its recipe is the same as 'base''s: an ablation changes at least one setting"),
    ("base", "sizes = [4, 8, 1]", ABLATION.replace('["test_acc"]', '["test_accuracy", "test_acc", "loss"]'),
     "'ablation.metrics' names 'test_accuracy', 'loss'; allowed: train_loss, train_acc, valid_loss, valid_acc, test_loss, test_acc"),
    ("base", "sizes = [4, 8, 1]", ABLATION.replace('["test_acc"]', "[]"), "'ablation.metrics' is empty"),
    ("base", "sizes = [4, 8, 1]", ABLATION.replace("metrics", "metric"), "unknown key 'ablation.metric' (did you mean 'metrics'?)"),
    ("base", "sizes = [4, 8, 1]", ABLATION.replace('metrics = ["test_acc"]', 'outcomes = "over-fitting"'),
     "'ablation.outcomes' 'over-fitting' reads the validation curve: 'data.valid_fraction' is 0"),
    ("base", "sizes = [4, 8, 1]", ABLATION + 'not_comparable = { test_loss = "bounded", train_acc = "x", test_acc = "y" }\n',
     "'ablation.not_comparable' names 'test_loss', 'train_acc', not in 'ablation.metrics'"),
    ("base", "sizes = [4, 8, 1]", ABLATION + 'not_comparable = { test_acc = 3 }\n',
     "'ablation.not_comparable' maps each metric to a reason, e.g. { test_loss = \"A's loss is bounded below\" }"),
    ("base", "sizes = [4, 8, 1]", ABLATION + 'outcomes = "over-fitting"\n',
     "'ablation.metrics' applies to outcomes 'final' only (over-fitting has its own)"),
])
def test_bad_ablations_are_one_line_naming_file_and_key(tmp_path, of, recipe, section, expect):
    with pytest.raises(RegistryError) as caught:
        load_registry(ablation_registry(tmp_path, of, recipe, section))
    message = str(caught.value)
    assert expect in message and "wider.toml" in message and "\n" not in message


@pytest.mark.parametrize("data,sizes,section,expect", [
    ('dataset = "wine"', "sizes = [13, 8, 1]", ABLATION, "trains on wine, 'base' on iris: an ablation is paired by seed on one dataset"),
    ('dataset = "iris"\nvalid_fraction = 0.2', "sizes = [4, 8, 1]", ABLATION.replace('metrics = ["test_acc"]', 'outcomes = "over-fitting"'),
     "'ablation.outcomes' 'over-fitting' reads the validation curve, which 'base' has not"),
])
def test_an_ablation_and_its_base_share_the_data_it_reads(tmp_path, data, sizes, section, expect):
    """Checked across the two files: the same dataset, and a validation split where over-fitting is read."""
    write(tmp_path, GOOD, "base")
    text = GOOD.replace('dataset = "iris"', data).replace("sizes = [4, 5, 1]", sizes)
    write(tmp_path, text + section.replace("{of}", "base"), "wider")
    with pytest.raises(RegistryError) as caught:
        load_registry(tmp_path)
    assert str(caught.value) == f"{tmp_path / 'wider.toml'}: {expect}"


def test_what_differs_counts_a_left_out_argument_as_its_default(tmp_path):
    """Adam's amsgrad defaults to False: stating it changes nothing; stating true does. A value is written as
    the registry reads it: a default of None as none, a tuple as a list, a table as `{key = value}`."""
    adam = GOOD.replace('class_path = "SGD"', 'class_path = "Adam"')
    write(tmp_path, adam, "base")
    write(tmp_path, adam.replace("lr = 0.003", "lr = 0.003\namsgrad = false"), "same")
    write(tmp_path, adam.replace("lr = 0.003", "lr = 0.003\namsgrad = true\nforeach = false\nbetas = [0.8, 0.99]"), "changed")
    write(tmp_path, MNIST_MLP, "mlp")
    write(tmp_path, MNIST_MLP.replace("std = [0.5]", "std = [0.25]"), "narrower")
    registry = load_registry(tmp_path)
    base = registry["base"]
    assert differing_settings(base, registry["same"]) == differing_settings(registry["same"], base) == []
    assert differing_settings(base, registry["changed"]) == [
        "optimizer.init_args.amsgrad: False → True", "optimizer.init_args.foreach: none → False",
        "optimizer.init_args.betas: [0.9, 0.999] → [0.8, 0.99]"]
    assert differing_settings(registry["changed"], base)[0] == "optimizer.init_args.amsgrad: True → False"
    def transforms(std):
        return ("[{class_path = torchvision.transforms:ToTensor, init_args = {}}, "
                f"{{class_path = torchvision.transforms:Normalize, init_args = {{mean = [0.5], std = [{std}]}}}}]")
    assert differing_settings(registry["mlp"], registry["narrower"]) == [f"data.transforms: {transforms(0.5)} → {transforms(0.25)}"]


def test_what_differs_reads_a_default_from_the_recipes_own_code(tmp_path):
    """DigitsMLP (examples/digits-mlp/mlp.py, beside the recipes) has dropout = 0.1 by default."""
    example = ROOT / "examples" / "digits-mlp"
    for name in ("digits.py", "mlp.py"):
        shutil.copy(example / name, tmp_path / name)
    text = (example / "digits-mlp.toml").read_text(encoding="utf-8").replace('id = "digits-mlp"', 'id = "{id}"')
    assert "init_args = { hidden = [128, 64], dropout = 0.1 }" in text
    write(tmp_path, text.replace(", dropout = 0.1 }", " }"), "base")
    write(tmp_path, text.replace("dropout = 0.1", "dropout = 0.3"), "more")
    registry = load_registry(tmp_path)
    assert differing_settings(registry["base"], registry["more"]) == ["model.init_args.dropout: 0.1 → 0.3"]


def test_a_schema_rule_checks_what_it_names_and_nothing_else(tmp_path):
    """The schema's rules are built once, at import; a rule made here is checked as the schema's are: a key
    is required unless it has a default, and bounded only where the rule says so."""
    from harness.schema import _checked_keys, _key

    path = tmp_path / "x.toml"

    def check(rule, value):
        return _checked_keys({"k": value}, {"k": rule}, path, "s.")["k"]

    def refused(rule, value):
        with pytest.raises(RegistryError) as err:
            check(rule, value)
        return str(err.value).removeprefix(f"{path}: ")

    assert check(_key(int), -5) == -5 and check(_key(float), 2) == 2.0 and check(_key(str), "") == ""
    assert check(_key(int, positive=True), 1) == 1 and check(_key(float, nonnegative=True), 0.0) == 0.0
    assert check(_key(float, unit=True), 0.0) == 0.0 and check(_key(int, maximum=3), 3) == 3
    assert refused(_key(int), "1") == "'s.k' must be an integer, got '1'"
    assert refused(_key(float), "1") == "'s.k' must be a number, got '1'"
    assert refused(_key(str), 1) == "'s.k' must be a string, got 1"
    assert refused(_key(dict), 1) == "'s.k' must be a table of arguments, got 1"
    assert refused(_key((int,)), [1, "2"]) == "'s.k' must be a list of int, got [1, '2']"
    assert refused(_key(int, positive=True), 0) == "'s.k' must be greater than 0, got 0"
    assert refused(_key(float, nonnegative=True), -0.5) == "'s.k' must be 0 or more, got -0.5"
    assert refused(_key(float, unit=True), 1.0) == "'s.k' must be in [0, 1), got 1.0"
    assert refused(_key(int, maximum=3), 4) == "'s.k' must be at most 3, got 4"
    assert refused(_key(str, choices=("epoch", "step")), "epochs") == "'s.k' is 'epochs'; allowed: epoch, step (did you mean 'epoch'?)"
    # Absent: the default, or a one-line refusal where there is none.
    assert _checked_keys({}, {"k": _key(int, 3)}, path, "s.") == {"k": 3}
    with pytest.raises(RegistryError, match=r": missing key 's.k' \(an integer\)$"):
        _checked_keys({}, {"k": _key(int)}, path, "s.")
