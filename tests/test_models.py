import pytest
import torch
from torch import nn

from harness.models import MyLinear, TutorialCNN, build_model, mlp, parameter_count

# Parameter counts worked out by hand from the tutorials' layer sizes.
EXPECTED_PARAMS = {
    "iris-mse": 4 * 5 + 5 + 5 * 1 + 1,
    "iris-ce": 4 * 5 + 5 + 5 * 3 + 3,
    "iris-mylinear": 4 * 5 + 5 + 5 * 1 + 1,
    "mnist-mlp": 784 * 64 + 64 + 64 * 10 + 10,
    "mnist-mlp-mylinear": 784 * 64 + 64 + 64 * 10 + 10,
    "mnist-cnn": (6 * 25 + 6) + (16 * 6 * 25 + 16) + (256 * 64 + 64) + (64 * 10 + 10),
    "mnist-cnn-50": (6 * 25 + 6) + (16 * 6 * 25 + 16) + (256 * 64 + 64) + (64 * 10 + 10),
    "mnist-cnn-dropout-50": (6 * 25 + 6) + (16 * 6 * 25 + 16) + (256 * 64 + 64) + (64 * 10 + 10),
    "mnist-mynet-adam": 784 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 10 + 10,
    "mnist-mynet-adam-logits": 784 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 10 + 10,
    # T3 prints "パラメータ総数: 299" for this model; its code has 243.
    "iris-simplenet": 4 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3,
    "mnist-mlp-sgd-50": 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10,
    "mnist-sequential-adam": 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10,
}


@pytest.mark.parametrize("exp_id", sorted(EXPECTED_PARAMS))
def test_shapes_and_parameter_counts(registry, exp_id):
    exp = registry[exp_id]
    model = build_model(exp)
    assert parameter_count(model) == EXPECTED_PARAMS[exp_id]
    x = torch.zeros(7, 4) if exp.dataset == "iris" else torch.zeros(7, 1, 28, 28)
    out = model(x)
    n_out = 1 if exp.regression else (3 if exp.dataset == "iris" else 10)
    assert out.shape == (7, n_out)
    if exp.model["init_args"].get("output") == "softmax":
        torch.testing.assert_close(out.sum(1), torch.ones(7))


def test_every_registered_model_builds(registry):
    for exp in registry.values():
        assert parameter_count(build_model(exp)) > 0


def test_mylinear_matches_nn_linear_outputs_and_gradients():
    torch.manual_seed(0)
    mine, ref = MyLinear(13, 7), nn.Linear(13, 7)
    with torch.no_grad():
        ref.weight.copy_(mine.weight)
        ref.bias.copy_(mine.bias)
    x = torch.randn(5, 13, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out_mine, out_ref = mine(x), ref(x2)
    assert torch.equal(out_mine, out_ref)
    g = torch.randn_like(out_mine)
    out_mine.backward(g)
    out_ref.backward(g)
    assert torch.equal(mine.weight.grad, ref.weight.grad)
    assert torch.equal(mine.bias.grad, ref.bias.grad)
    assert torch.equal(x.grad, x2.grad)


def test_mylinear_initialisation_ranges_are_the_tutorials():
    torch.manual_seed(1)
    layer = MyLinear(4, 1000)
    k = 1 / 4
    assert layer.weight.abs().max() <= k**0.5 and layer.weight.abs().max() > 0.9 * k**0.5
    assert layer.bias.abs().max() <= k and layer.bias.abs().max() > 0.9 * k  # U(-k, k), not U(-sqrt k, sqrt k)


def test_cnn_has_no_relu_after_conv2():
    # A negative conv2 output must survive into the pooled features: feed a model whose conv2 bias is -10.
    model = TutorialCNN()
    with torch.no_grad():
        model.conv2.weight.zero_()
        model.conv2.bias.fill_(-10.0)
        features = model.pool(model.conv2(model.pool(torch.relu(model.conv1(torch.zeros(1, 1, 28, 28))))))
    assert (features == -10).all()


def test_dropout_is_after_fc1_only_in_training_mode(registry):
    model = build_model(registry["mnist-cnn-dropout-50"])
    x = torch.randn(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.equal(a, model(x))


def test_simplenet_has_243_parameters_not_the_299_t3_prints(registry):
    count = parameter_count(build_model(registry["iris-simplenet"]))
    assert count == 243 and count != 299


# The tutorials' own model classes, as they wrote them (T2's MyNet, T3's SimpleNet, T4's Model, T5's
# Sequential), to check that the registry's MLP starts from the very same weights for the same seed.
class MyNet(nn.Module):  # T2
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, hidden_size)
        self.layer3 = nn.Linear(hidden_size, hidden_size)
        self.layer4 = nn.Linear(hidden_size, output_size)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        x = self.relu(self.layer1(x))
        x = self.relu(self.layer2(x))
        x = self.relu(self.layer3(x))
        return self.softmax(self.layer4(x))


class SimpleNet(nn.Module):  # T3
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(16, 8)
        self.relu2 = nn.ReLU()
        self.output = nn.Linear(8, 3)

    def forward(self, x):
        return self.output(self.relu2(self.fc2(self.relu1(self.fc1(x)))))


class Model(nn.Module):  # T4
    def __init__(self):
        super().__init__()
        self.linear_1 = nn.Linear(28 * 28, 128)
        self.linear_2 = nn.Linear(128, 64)
        self.linear_3 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(-1, 28 * 28)
        x = torch.relu(self.linear_1(x))
        x = torch.relu(self.linear_2(x))
        return self.linear_3(x)


def t5_sequential():
    return nn.Sequential(nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


TUTORIAL_MODELS = {
    "mnist-mynet-adam": lambda: MyNet(28 * 28, 128, 10),
    "iris-simplenet": SimpleNet,
    "mnist-mlp-sgd-50": Model,
    "mnist-sequential-adam": t5_sequential,
}


@pytest.mark.parametrize("exp_id", sorted(TUTORIAL_MODELS))
def test_same_initial_weights_and_outputs_as_the_tutorials_class(registry, exp_id):
    exp = registry[exp_id]
    torch.manual_seed(7)
    theirs = TUTORIAL_MODELS[exp_id]()
    torch.manual_seed(7)
    ours = build_model(exp)
    for a, b in zip(theirs.parameters(), ours.parameters(), strict=True):
        assert torch.equal(a, b)
    x = torch.rand(5, 4) if exp.dataset == "iris" else torch.rand(5, 28 * 28)
    assert torch.equal(theirs(x), ours(x))


@pytest.mark.parametrize("a_id,b_id", [("iris-mse", "iris-mylinear"), ("mnist-mlp", "mnist-mlp-mylinear"),
                                       ("mnist-cnn-50", "mnist-cnn-dropout-50"), ("mnist-mynet-adam", "mnist-mynet-adam-logits")])
def test_paired_arms_start_alike_for_a_seed(registry, a_id, b_id):
    """What the report's paired comparisons rely on: for one seed, both arms start from the same weights
    (MyLinear's biases: the same draws on its narrower range, 1/in against 1/sqrt(in)) and leave the random
    stream where the other does, so the split and data order drawn next are the same too."""
    arms = []
    for exp_id in (a_id, b_id):
        torch.manual_seed(7)
        model = build_model(registry[exp_id])
        arms.append((dict(model.named_parameters()), torch.rand(3)))
    (params, after), (other, other_after) = arms
    assert torch.equal(after, other_after)
    for name, value in params.items():
        if name.endswith("bias") and registry[b_id].model["init_args"].get("layer") == "mylinear":
            fan_in = params[name.replace("bias", "weight")].shape[1]
            assert torch.allclose(other[name], value / fan_in**0.5)
        else:
            assert torch.equal(other[name], value), name


@pytest.mark.parametrize("kwargs,message", [({"sizes": [4]}, "two or more positive widths"), ({"sizes": [4, 0, 1]}, "positive widths"),
                                            ({"sizes": [4, 1], "activation": "tanh"}, "activation is 'tanh'; allowed: relu, sigmoid"),
                                            ({"sizes": [4, 1], "output": "probs"}, "output is 'probs'")])
def test_mlp_refuses_what_it_cannot_build(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mlp(**kwargs)
