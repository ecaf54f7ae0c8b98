"""estimator.summary(): the per-layer table, its counts read back from the text."""

import re

import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from torch import nn

from sktorch import ImageClassifier, TorchClassifier, TorchRegressor


def _totals(text):
    def number(label):
        match = re.search(rf"^{label}: ([\d,]+)$", text, flags=re.MULTILINE)
        assert match, f"no {label!r} line in\n{text}"
        return int(match.group(1).replace(",", ""))

    return number("Total params"), number("Trainable params"), number("Non-trainable params")


def _rows(text):
    """{layer name: (type, output shape, params, trainable)} from the table."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Layer "))
    start = header + 2  # after the rule under the header
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("="))
    rows = {}
    for line in lines[start:end]:
        match = re.match(r"^(\S+)\s+(\S+)\s+(.+?)\s+([\d,]+)\s+([\d,]+)$", line)
        assert match, f"unreadable row {line!r}"
        name, kind, shape, params, trainable = match.groups()
        rows[name] = (kind, shape, int(params.replace(",", "")),
                      int(trainable.replace(",", "")))
    return rows


def _counts(module):
    params = list(module.parameters())
    return (sum(p.numel() for p in params),
            sum(p.numel() for p in params if p.requires_grad))


def test_mlp_counts_and_shapes(iris):
    X, y = iris
    clf = TorchClassifier(module__hidden_sizes=(16,), max_epochs=1, random_state=0).fit(X, y)
    text = clf.summary()
    total, trainable = _counts(clf.module_)
    assert _totals(text) == (total, trainable, 0) == (4 * 16 + 16 + 16 * 3 + 3, 131, 0)
    rows = _rows(text)
    assert rows["layers.0"] == ("Linear", "(1, 16)", 80, 80)
    assert rows["layers.1"][:2] == ("ReLU", "(1, 16)")
    assert rows["layers.2"] == ("Linear", "(1, 3)", 51, 51)
    assert sum(row[2] for row in rows.values()) == total
    assert text.splitlines()[0].startswith("TorchClassifier: MLP on ")
    assert "Input shape: (1, 4)" in text and "Output shape: (1, 3)" in text


def test_frozen_parameters_are_counted_apart(iris):
    X, y = iris
    clf = TorchClassifier(module__hidden_sizes=(16,), freeze=("layers.0.*",), max_epochs=1,
                          random_state=0).fit(X, y)
    total, trainable, frozen = _totals(clf.summary())
    assert (total, trainable) == _counts(clf.module_)
    assert (trainable, frozen) == (51, 80)
    assert _rows(clf.summary())["layers.0"][2:] == (80, 0)


def test_image_classifier_with_frozen_backbone():
    digits = load_digits()
    X, y = digits.images[:60] / 16, digits.target[:60]
    clf = ImageClassifier("cnn", module__width=8, freeze="backbone", max_epochs=1,
                          random_state=0).fit(X, y)
    text = clf.summary()
    head = clf.module_.model.classifier
    head_params = sum(p.numel() for p in head.parameters())
    total, trainable = _counts(clf.module_)
    assert _totals(text) == (total, head_params, total - head_params)
    assert trainable == head_params == 8 * 2 * 10 + 10
    rows = _rows(text)
    assert rows["model.features.0"] == ("Conv2d", "(1, 8, 8, 8)", 72, 0)
    assert rows["model.features.6"][:2] == ("MaxPool2d", "(1, 8, 4, 4)")
    assert rows["model.pool"][1] == "(1, 16, 1, 1)"
    assert rows["model.classifier.2"] == ("Linear", "(1, 10)", 170, 170)
    assert sum(row[3] for row in rows.values()) == trainable
    assert "ImageModel(SmallCNN" in text.splitlines()[0]
    assert "Input shape: (1, 1, 8, 8)" in text


class Branches(nn.Module):
    """Returns a tuple."""

    def __init__(self, width):
        super().__init__()
        self.a, self.b = nn.Linear(width, width), nn.Linear(width, 2)

    def forward(self, x):
        return self.a(x), self.b(x)


class Unusual(nn.Module):
    """A tuple-returning block, a layer called twice, a parameter of a
    container's own, and a tied weight."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(in_features))
        self.block = Branches(in_features)
        self.shared = nn.Linear(in_features, in_features)
        self.head = nn.Linear(in_features, out_features)
        self.tied = nn.Linear(in_features, in_features, bias=False)
        self.tied.weight = self.shared.weight

    def forward(self, x):
        a, b = self.block(x * self.scale)
        return self.head(self.shared(self.shared(a)) + self.tied(a)) + b.sum() * 0


def test_tuples_repeated_calls_own_and_tied_parameters(regression_data):
    X, Y = regression_data
    reg = TorchRegressor(Unusual, max_epochs=1, random_state=0).fit(X, Y)
    text = reg.summary()
    rows = _rows(text)
    assert rows["(module)"] == ("Unusual", "(1, 2)", 5, 5)
    assert rows["block.a"][:2] == ("Linear", "(1, 5)")
    assert "block" not in rows  # a container without parameters of its own
    assert rows["shared"][1:] == ("(1, 5) x2", 30, 30)
    assert rows["tied"][2] == 0  # its weight is shared's, counted there
    total, trainable = _counts(reg.module_)
    assert sum(row[2] for row in rows.values()) == total
    assert _totals(text) == (total, trainable, 0)
    # The tuple a layer returns is shown element by element (the container
    # has no row of its own, so ask the formatter directly).
    from sktorch._engine._summary import _calls, _shape

    assert _shape((torch.zeros(1, 5), torch.zeros(1, 2))) == "[(1, 5), (1, 2)]"
    assert _calls([]) == "--"


def test_tuple_output_of_a_leaf(iris):
    X, y = iris

    class TupleLeaf(nn.Module):
        def forward(self, x):
            return x, x[:, :2]

    class Net(nn.Module):
        def __init__(self, in_features, out_features):
            super().__init__()
            self.split = TupleLeaf()
            self.head = nn.Linear(in_features, out_features)

        def forward(self, x):
            return self.head(self.split(x)[0])

    clf = TorchClassifier(Net, max_epochs=1, random_state=0).fit(X, y)
    assert _rows(clf.summary())["split"] == ("TupleLeaf", "[(1, 4), (1, 2)]", 0, 0)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        TorchClassifier().summary()


def test_training_mode_is_restored_and_the_module_untouched(iris):
    X, y = iris
    clf = TorchClassifier(module__hidden_sizes=(8,), module__batch_norm=True,
                          module__dropout=0.5, max_epochs=1, random_state=0).fit(X, y)
    module = clf.module_
    module.train()
    module.layers[0].eval()  # a mixed state is restored layer by layer
    modes = {name: m.training for name, m in module.named_modules()}
    state = {key: value.clone() for key, value in module.state_dict().items()}
    text = clf.summary()
    assert "BatchNorm1d" in text
    assert {name: m.training for name, m in module.named_modules()} == modes
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key  # batch-norm statistics included
