"""Grad-CAM (sktorch.explain.grad_cam) on real fitted image classifiers."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from torch import nn

from sktorch import ImageClassifier, TorchClassifier
from sktorch.explain import _resolve_layer, _to_image_geometry, grad_cam
from sktorch.models import ImageModel


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.images[:300] / 16).astype(np.float32), data.target[:300]


@pytest.fixture(scope="module")
def cnn(digits):
    X, y = digits
    return ImageClassifier("cnn", module__width=8, max_epochs=2, random_state=0).fit(X, y)


def _layer_name(clf):
    X = torch.zeros(1, *clf.image_shape_)
    return _resolve_layer(clf.module_, None, X, "test")[0]


# ------------------------------------------------ the heat is where the model looks
class KeepHalf(nn.Module):
    """Zeroes all but one half of a feature map."""

    def __init__(self, side):
        super().__init__()
        self.side = side

    def forward(self, x):
        h, w = x.shape[-2:]
        mask = torch.zeros_like(x)
        if self.side == "left":
            mask[..., :, : w // 2] = 1
        elif self.side == "right":
            mask[..., :, w // 2 :] = 1
        elif self.side == "top":
            mask[..., : h // 2, :] = 1
        else:
            mask[..., h // 2 :, :] = 1
        return x * mask


class HalfNet(nn.Module):
    """A network whose features cover only one half of the image: nothing in
    the other half can change its output."""

    def __init__(self, in_channels, out_features, side="left", width=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            KeepHalf(side),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(width, out_features))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_heat_lies_in_the_half_the_model_looks_at(digits, side):
    X, y = digits
    clf = ImageClassifier(HalfNet, module__side=side, max_epochs=2, lr=1e-2, random_state=0)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.3  # it learned from its half
    assert _layer_name(clf) == "model.features"
    heat = grad_cam(clf, X[:64])
    assert heat.shape == (64, 8, 8)
    seen = {"left": np.s_[:, :, :4], "right": np.s_[:, :, 4:],
            "top": np.s_[:, :4, :], "bottom": np.s_[:, 4:, :]}[side]
    unseen = {"left": np.s_[:, :, 4:], "right": np.s_[:, :, :4],
              "top": np.s_[:, 4:, :], "bottom": np.s_[:, :4, :]}[side]
    assert heat[unseen].sum() <= 0.05 * heat.sum()
    assert heat[seen].mean() > 0.1
    assert (heat.reshape(64, -1).max(axis=1) == 1).mean() > 0.9


# ------------------------------------------------------------- the maps
def test_maps_have_image_shape_and_peak_at_one(cnn, digits):
    X, _ = digits
    heat = grad_cam(cnn, X[:40])
    assert heat.shape == (40, 8, 8) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    peaks = heat.reshape(40, -1).max(axis=1)
    assert np.all((peaks == 1) | (peaks == 0))
    assert (peaks == 1).mean() > 0.9


def test_cnn_uses_its_declared_layer(cnn, digits):
    X, _ = digits
    assert _layer_name(cnn) == "model.features"
    heat = grad_cam(cnn, X[:8])
    np.testing.assert_allclose(grad_cam(cnn, X[:8], layer="model.features"), heat, atol=1e-6)
    np.testing.assert_allclose(grad_cam(cnn, X[:8], layer="features"), heat, atol=1e-6)
    np.testing.assert_allclose(grad_cam(cnn, X[:8], layer=cnn.module_.model.features), heat,
                               atol=1e-6)
    earlier = grad_cam(cnn, X[:8], layer="model.features.2")
    assert earlier.shape == (8, 8, 8) and not np.allclose(earlier, heat)


def test_input_forms_and_batching_agree(cnn, digits):
    X, _ = digits
    heat = grad_cam(cnn, X[:20])
    np.testing.assert_allclose(grad_cam(cnn, torch.from_numpy(X[:20])), heat, atol=1e-6)
    np.testing.assert_allclose(grad_cam(cnn, X[:20, None]), heat, atol=1e-6)
    # Called where autograd is off, it still differentiates, and leaves the
    # caller's grad mode as it was.
    with torch.inference_mode():
        np.testing.assert_allclose(grad_cam(cnn, X[:20]), heat, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(grad_cam(cnn, X[:20]), heat, atol=1e-6)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    batch_size = cnn.batch_size
    try:
        cnn.batch_size = 3
        np.testing.assert_allclose(grad_cam(cnn, X[:20]), heat, atol=1e-5)
    finally:
        cnn.batch_size = batch_size


# ------------------------------------------------------------- targets
def test_target_none_is_the_predicted_class(cnn, digits):
    X, _ = digits
    heat = grad_cam(cnn, X[:16])
    np.testing.assert_allclose(grad_cam(cnn, X[:16], target=cnn.predict(X[:16])), heat,
                               atol=1e-6)


def test_one_target_for_all_images(cnn, digits):
    X, _ = digits
    for label in (3, np.int64(3)):
        np.testing.assert_allclose(grad_cam(cnn, X[:10], target=label),
                                   grad_cam(cnn, X[:10], target=[3] * 10), atol=1e-6)
    other = grad_cam(cnn, X[:10], target=7)
    assert not np.allclose(other, grad_cam(cnn, X[:10], target=3))


def test_target_errors(cnn, digits):
    X, _ = digits
    with pytest.raises(ValueError, match=r"target 10 is not a class of ImageClassifier; "
                                         r"classes_ is \[0, 1,"):
        grad_cam(cnn, X[:4], target=10)
    with pytest.raises(ValueError, match="target 'three' is not a class"):
        grad_cam(cnn, X[:4], target="three")
    with pytest.raises(ValueError, match="one per image; target has shape"):
        grad_cam(cnn, X[:4], target=[1, 2])


def test_string_labels_and_a_single_sigmoid_output(digits):
    X, y = digits
    keep = y < 2
    X2, y2 = X[keep], np.array(["zero", "one"])[y[keep]]
    clf = ImageClassifier("cnn", module__width=8, criterion="bce", max_epochs=2,
                          random_state=0).fit(X2, y2)
    assert clf.n_outputs_ == 1
    heat = grad_cam(clf, X2[:10])
    np.testing.assert_allclose(grad_cam(clf, X2[:10], target=clf.predict(X2[:10])), heat,
                               atol=1e-6)
    zero, one = grad_cam(clf, X2[:10], target="zero"), grad_cam(clf, X2[:10], target="one")
    assert not np.allclose(zero, one)
    with pytest.raises(ValueError, match="target 2 is not a class"):
        grad_cam(clf, X2[:2], target=2)


# ------------------------------------------------------------- torchvision models
@pytest.fixture(scope="module")
def resnet(digits):
    X, y = digits
    return ImageClassifier("resnet18", image_size=32, max_epochs=1, batch_size=10,
                           random_state=0).fit(X[:20], y[:20])


def test_resnet18_explains_layer4(resnet, digits):
    X, _ = digits
    assert _layer_name(resnet) == "model.layer4"
    heat = grad_cam(resnet, X[:6])
    assert heat.shape == (6, 8, 8) and np.isfinite(heat).all()
    assert heat.min() >= 0 and heat.max() <= 1
    np.testing.assert_allclose(grad_cam(resnet, X[:6], layer="layer4"), heat, atol=1e-6)


def test_layers_inside_blocks_and_in_place_operations(resnet, digits):
    X, _ = digits
    # bn2's output is added to in place (out += identity) by the block: the
    # weighed maps are a private copy.
    heat = grad_cam(resnet, X[:4], layer="model.layer3.0.bn2")
    assert heat.shape == (4, 8, 8) and np.isfinite(heat).all() and heat.max() > 0
    with pytest.raises(ValueError, match="exactly once per forward pass; layer "
                                         "'model.layer3.0.relu' ran 2 times"):
        grad_cam(resnet, X[:4], layer="model.layer3.0.relu")


def test_mobilenet_v3_small_explains_features(digits):
    X, y = digits
    clf = ImageClassifier("mobilenet_v3_small", image_size=32, max_epochs=1, batch_size=10,
                          random_state=0).fit(X[:20], y[:20])
    assert _layer_name(clf) == "model.features"
    heat = grad_cam(clf, X[:4])
    assert heat.shape == (4, 8, 8) and np.isfinite(heat).all()
    assert heat.min() >= 0 and heat.max() <= 1


def test_resize_and_center_crop_map_back_to_the_image():
    module = ImageModel(nn.Identity(), resize=(16, 16), crop=(8, 8))
    heat = _to_image_geometry(torch.ones(2, 2, 2), module, 16, 16)
    expected = torch.zeros(2, 16, 16)
    expected[:, 4:12, 4:12] = 1
    torch.testing.assert_close(heat, expected)
    # One int resizes the shorter side: a 10x20 image becomes 16x32, of which
    # the central 16x16 is cropped, columns 8 to 24, i.e. 5 to 15 of the image.
    module = ImageModel(nn.Identity(), resize=(16,), crop=(16,))
    heat = _to_image_geometry(torch.ones(1, 4, 4), module, 10, 20)
    assert heat.shape == (1, 10, 20)
    assert heat[0, :, 6:14].min() > 0.99 and heat[0, :, :4].max() < 0.01
    assert heat[0, :, 16:].max() < 0.01


# ------------------------------------------------------------- side effects
def test_frozen_parameters_still_give_maps_and_stay_frozen(digits):
    X, y = digits
    clf = ImageClassifier("cnn", module__width=8, freeze="backbone", max_epochs=1,
                          random_state=0).fit(X[:100], y[:100])
    params = dict(clf.module_.named_parameters())
    before = {name: p.requires_grad for name, p in params.items()}
    assert not before["model.features.0.weight"] and before["model.classifier.2.weight"]
    assert grad_cam(clf, X[:8]).max() == 1
    assert {name: p.requires_grad for name, p in params.items()} == before
    # Every parameter frozen: the gradient still flows from the layer up.
    for p in params.values():
        p.requires_grad_(False)
        p.grad = None
    heat = grad_cam(clf, X[:8])
    assert heat.max() == 1
    assert not any(p.requires_grad for p in params.values())
    assert all(p.grad is None for p in params.values())


def test_no_gradients_left_and_modes_restored(cnn, digits):
    X, _ = digits
    module = cnn.module_
    # The last training step leaves gradients behind; start from none but
    # one, which must survive as it was.
    for p in module.parameters():
        p.grad = None
    marker = torch.full_like(module.model.classifier[2].weight, 7.0)
    module.model.classifier[2].weight.grad = marker
    module.train()
    module.model.features[1].eval()  # a mixed state, as a frozen batch norm leaves it
    modes = {name: m.training for name, m in module.named_modules()}
    try:
        grad_cam(cnn, X[:4])
        assert {name: m.training for name, m in module.named_modules()} == modes
        grads = {name: p.grad for name, p in module.named_parameters()}
        assert grads.pop("model.classifier.2.weight") is marker
        assert torch.equal(marker, torch.full_like(marker, 7.0))
        assert all(g is None for g in grads.values())
    finally:
        module.model.classifier[2].weight.grad = None
        module.eval()


# ------------------------------------------------------------- errors
def test_bad_layers_are_explained(cnn, digits):
    X, _ = digits
    with pytest.raises(ValueError, match=r"'model.featurs' .* such as 'model', "
                                         r"'model.features'.*Did you mean 'model.features'"):
        grad_cam(cnn, X[:2], layer="model.featurs")
    with pytest.raises(ValueError, match=r"4-D feature map .* 'model.classifier' "
                                         r"\(Sequential\) returns a tensor of shape \(2, 10\)"):
        grad_cam(cnn, X[:2], layer="model.classifier")
    with pytest.raises(ValueError, match="not a submodule of the module_ of ImageClassifier"):
        grad_cam(cnn, X[:2], layer=nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="must be a name, an nn.Module or None"):
        grad_cam(cnn, X[:2], layer=3)


def test_tabular_and_unfitted_estimators_are_refused(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"grad_cam needs an image estimator.*TorchClassifier "
                                         r"takes inputs of shape \(n, 4\)"):
        grad_cam(clf, X[:2])
    with pytest.raises(NotFittedError):
        grad_cam(ImageClassifier(), np.zeros((2, 8, 8)))
