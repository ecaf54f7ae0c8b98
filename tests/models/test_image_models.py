"""Image networks: SmallCNN, the ImageModel wrapper (preprocessing, head),
and pretrained weights from torch's hub cache or a local state_dict file."""

import os
import time
import urllib.error
import urllib.parse

import numpy as np
import pytest
import torch
import torchvision
from sklearn.datasets import load_digits
from torch import nn

from sktorch import ImageClassifier
from sktorch.exceptions import InvalidParameterError
from sktorch.models import ImageModel, SmallCNN, list_image_models
from sktorch.models._image import (
    find_head,
    first_conv_channels,
    is_weights_path,
    replace_head,
    weights_file,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.images / 16).astype(np.float32), data.target


def backbone_parameters(model, head):
    return {name: p.detach().clone() for name, p in model.named_parameters()
            if not name.startswith(head + ".")}


def assert_same_tensors(actual, expected):
    assert set(actual) <= set(expected)
    for name, value in actual.items():
        assert torch.equal(value, expected[name]), name


# ----------------------------------------------------------------- SmallCNN
@pytest.mark.parametrize("depth, size", [(1, 8), (2, 8), (3, 9), (2, 32)])
def test_small_cnn_forward_backward(depth, size):
    net = SmallCNN(in_channels=3, out_features=5, width=4, depth=depth, dropout=0.2)
    out = net(torch.rand(2, 3, size, size))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    widths = [4 * 2**stage for stage in range(depth) for _ in range(2)]
    assert [c.out_channels for c in convs] == widths
    assert net.classifier[-1].in_features == 4 * 2 ** (depth - 1)


def test_small_cnn_declares_head_and_gradcam_layer():
    net = SmallCNN(in_channels=1, out_features=3)
    assert find_head(net) == "classifier"
    assert isinstance(net.get_submodule(net.gradcam_layer), nn.Sequential)
    assert first_conv_channels(net) == 1


@pytest.mark.parametrize(
    "options, match",
    [
        ({"in_channels": 0}, "'in_channels' parameter of SmallCNN must be a positive int"),
        ({"width": 2.5}, "'width' parameter"),
        ({"depth": True}, "'depth' parameter"),
        ({"dropout": 1.0}, r"'dropout' parameter of SmallCNN must be in \[0, 1\)"),
    ],
)
def test_small_cnn_rejects_bad_arguments(options, match):
    with pytest.raises(ValueError, match=match):
        SmallCNN(**options)


# --------------------------------------------------------------- ImageModel
def test_image_model_preprocessing_steps():
    inner = nn.Identity()
    model = ImageModel(inner, channels=3, resize=(6, 6), crop=(4, 4), mean=(0.5, 0.5, 0.5),
                       std=(0.25, 0.25, 0.25), head="fc")
    x = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    out = model(x)
    # 255 -> 1.0, gray repeated to 3 channels, resized then center-cropped,
    # then normalized: (1 - 0.5) / 0.25 = 2.
    assert out.shape == (2, 3, 4, 4) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full((2, 3, 4, 4), 2.0))
    assert x.dtype == torch.uint8 and (x == 255).all()  # input untouched
    assert "resize=(6, 6)" in repr(model) and "head='fc'" in repr(model)


def test_image_model_without_preprocessing_is_the_network():
    net = SmallCNN(in_channels=1, out_features=2, width=4)
    model = ImageModel(net, channels=1)
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(model.preprocess(x), x)
    net.eval(), model.eval()
    torch.testing.assert_close(model(x), net(x))
    assert [name for name, _ in model.named_parameters()][0] == "model.features.0.weight"


def test_image_model_one_int_resize_keeps_aspect_ratio():
    model = ImageModel(nn.Identity(), resize=(4,), crop=(4,))
    assert model.preprocess(torch.rand(1, 3, 8, 16)).shape == (1, 3, 4, 4)
    model = ImageModel(nn.Identity(), resize=(4,))
    assert model.preprocess(torch.rand(1, 3, 8, 16)).shape == (1, 3, 4, 8)


def test_image_model_needs_mean_and_std_together():
    with pytest.raises(ValueError, match="both mean and std"):
        ImageModel(nn.Identity(), mean=(0.5,))


# ------------------------------------------------------- heads and registry
@pytest.mark.parametrize(
    "arch, head, width",
    [("resnet18", "fc", 1000), ("mobilenet_v3_small", "classifier.3", 1000),
     ("squeezenet1_1", "classifier.1", 1000)],
)
def test_find_and_replace_torchvision_heads(arch, head, width):
    model = torchvision.models.get_model(arch)
    assert find_head(model) == head
    old = model.get_submodule(head)
    kept = {n: p.clone() for n, p in model.named_parameters() if not n.startswith(head + ".")}
    replace_head(model, head, 7)
    new = model.get_submodule(head)
    assert type(new) is type(old) and new is not old
    assert (new.out_features if isinstance(new, nn.Linear) else new.out_channels) == 7
    assert_same_tensors(kept, dict(model.named_parameters()))
    model.eval()
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 7)


def test_find_head_by_width_and_replace_in_sequential():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Sequential(nn.Linear(6, 3)))
    assert find_head(model) == "2.0"
    assert find_head(model, n_outputs=6) == "0"
    replace_head(model, "2", 5)
    assert model[2][0].out_features == 5
    with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d layer with 9 outputs"):
        find_head(model, n_outputs=9)
    with pytest.raises(ValueError, match="sktorch replaces nn.Linear and nn.Conv2d heads"):
        replace_head(model, "1", 2)


def test_list_image_models_has_cnn_and_torchvision_names():
    names = list_image_models()
    assert names[0] == "cnn"
    assert {"resnet18", "mobilenet_v3_small", "efficientnet_b0"} <= set(names)
    assert set(torchvision.models.list_models(module=torchvision.models)) <= set(names)


def test_unknown_module_name_lists_names_and_suggests(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match="Did you mean 'resnet18'") as info:
        ImageClassifier("resnt18", max_epochs=1).fit(X[:10], y[:10])
    message = str(info.value)
    assert "The 'module' parameter of ImageClassifier must be one of" in message
    assert "'cnn'" in message and "'mobilenet_v3_small'" in message


def test_is_weights_path(tmp_path):
    existing = tmp_path / "weights"
    existing.write_bytes(b"")
    assert is_weights_path(tmp_path / "w.pt")
    assert is_weights_path("w.safetensors") and is_weights_path("dir/w")
    assert is_weights_path(str(existing))
    assert not is_weights_path("DEFAULT") and not is_weights_path("IMAGENET1K_V1")


# ------------------------------------------------- torchvision hub weights
def put_hub_weights(arch, seed):
    """Write a recognizable state_dict where torchvision looks for ``arch``'s
    default weights in the (temporary) hub cache; return it."""
    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    path = os.path.join(torch.hub.get_dir(), "checkpoints",
                        os.path.basename(urllib.parse.urlparse(url).path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.manual_seed(seed)
    state = torchvision.models.get_model(arch).state_dict()
    torch.save(state, path)
    return state


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch_home"


def test_hub_weights_are_loaded_with_their_preprocessing(torch_home, digits):
    X, y = digits
    state = put_hub_weights("mobilenet_v3_small", seed=123)
    X, y = X[:4], np.arange(4)
    clf = ImageClassifier("mobilenet_v3_small", weights="DEFAULT", freeze="backbone",
                          max_epochs=1, batch_size=4, random_state=0).fit(X, y)
    module = clf.module_
    assert module.head == "classifier.3"
    head = module.model.classifier[3]
    assert (head.in_features, head.out_features) == (1024, 4)
    assert_same_tensors(backbone_parameters(module.model, "classifier.3"), state)
    # The file's 1000-class head is gone: the head is fresh and trained.
    assert not any(p.shape == state["classifier.3.weight"].shape for p in head.parameters())
    # Preprocessing is that of the weights' own transforms.
    transform = torchvision.models.MobileNet_V3_Small_Weights.DEFAULT.transforms()
    assert module.resize == tuple(transform.resize_size) == (256,)
    assert module.crop == tuple(transform.crop_size) == (224,)
    np.testing.assert_allclose(module.mean.flatten(), IMAGENET_MEAN)
    np.testing.assert_allclose(module.std.flatten(), IMAGENET_STD)
    assert module.channels == 3
    assert module.preprocess(torch.as_tensor(X[:2, None])).shape == (2, 3, 224, 224)
    assert clf.predict_proba(X).shape == (4, 4)


def test_hub_weights_with_image_size(torch_home, digits):
    X, y = digits
    state = put_hub_weights("resnet18", seed=7)
    X, y = X[:6], y[:6] % 3
    clf = ImageClassifier("resnet18", weights="IMAGENET1K_V1", image_size=32, freeze="backbone",
                          max_epochs=1, batch_size=6, random_state=0).fit(X, y)
    module = clf.module_
    assert (module.resize, module.crop) == ((32, 32), None)
    np.testing.assert_allclose(module.mean.flatten(), IMAGENET_MEAN)
    assert module.preprocess(torch.as_tensor(X[:2, None])).shape == (2, 3, 32, 32)
    assert module.model.fc.out_features == 3
    assert_same_tensors(backbone_parameters(module.model, "fc"), state)


def test_missing_hub_file_says_where_to_put_it(torch_home, digits):
    X, y = digits
    weights = torchvision.models.MobileNet_V3_Small_Weights.DEFAULT
    expected = os.path.join(str(torch_home), "hub", "checkpoints",
                            os.path.basename(weights.url))
    assert weights_file(weights) == expected
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        ImageClassifier("mobilenet_v3_small", weights="DEFAULT", max_epochs=1).fit(X[:4], y[:4])
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert expected in message
    assert weights.url in message
    assert "weights='<path of a state_dict file>'" in message
    assert not os.path.exists(expected)


def test_bad_weights_name_lists_valid_names(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match=r"must be one of \['IMAGENET1K_V1', "
                                                    r"'DEFAULT'\] for 'resnet18'.*IMAGENET_BOGUS"):
        ImageClassifier("resnet18", weights="IMAGENET_BOGUS", max_epochs=1).fit(X[:4], y[:4])


def test_weights_name_needs_a_torchvision_module(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match="module='cnn' is not a torchvision"):
        ImageClassifier("cnn", weights="IMAGENET1K_V1", max_epochs=1).fit(X[:4], y[:4])


def test_module_options_with_named_weights_are_refused(torch_home, digits):
    X, y = digits
    put_hub_weights("mobilenet_v3_small", seed=0)
    with pytest.raises(InvalidParameterError, match=r"module__ options \['dropout'\]"):
        ImageClassifier("mobilenet_v3_small", weights="DEFAULT", module__dropout=0.1,
                        max_epochs=1).fit(X[:4], y[:4])


# ------------------------------------------------------ local weight files
@pytest.fixture(scope="module")
def pretrained_cnn(digits, tmp_path_factory):
    """A 'cnn' fitted on digits 0-4, saved three ways."""
    X, y = digits
    keep = y < 5
    clf = ImageClassifier("cnn", module__width=8, max_epochs=2, lr=0.01, random_state=0)
    clf.fit(X[keep][:150], y[keep][:150])
    folder = tmp_path_factory.mktemp("weights")
    from safetensors.torch import save_file

    torch.save(clf.module_.state_dict(), folder / "prefixed.pt")
    torch.save(clf.module_.model.state_dict(), folder / "bare.pth")
    save_file(clf.module_.state_dict(), str(folder / "prefixed.safetensors"))
    return clf, folder


@pytest.mark.parametrize("file", ["prefixed.pt", "bare.pth", "prefixed.safetensors"])
def test_local_weights_load_backbone_with_a_fresh_head(pretrained_cnn, digits, file):
    source, folder = pretrained_cnn
    X, y = digits
    clf = ImageClassifier("cnn", module__width=8, weights=folder / file, freeze="backbone",
                          max_epochs=1, random_state=1).fit(X[:100], y[:100])
    model = clf.module_.model
    source_state = source.module_.model.state_dict()
    assert_same_tensors(backbone_parameters(model, "classifier"), source_state)
    assert model.classifier[2].weight.shape == (10, 16)
    assert source_state["classifier.2.weight"].shape == (5, 16)
    assert clf.predict(X[:5]).shape == (5,)


def test_local_weights_keep_a_head_that_fits(pretrained_cnn, digits):
    source, folder = pretrained_cnn
    X, y = digits
    keep = y < 5
    # lr 0 for the head and the backbone frozen: the fit changes no weight.
    clf = ImageClassifier("cnn", module__width=8, weights=str(folder / "prefixed.pt"),
                          freeze="backbone",
                          optimizer__param_groups=[("model.classifier.*", {"lr": 0.0})],
                          max_epochs=1, random_state=1).fit(X[keep][:50], y[keep][:50])
    assert_same_tensors(dict(clf.module_.model.named_parameters()),
                        source.module_.model.state_dict())


def test_local_weights_of_a_finetuned_torchvision_model(torch_home, digits, tmp_path):
    # An ImageModel's state_dict holds its normalization buffers beside the
    # 'model.'-prefixed network keys; the file still loads.
    X, y = digits
    put_hub_weights("mobilenet_v3_small", seed=3)
    source = ImageClassifier("mobilenet_v3_small", weights="DEFAULT", image_size=16,
                             max_epochs=1, batch_size=4, random_state=0).fit(X[:8], y[:8] % 2)
    assert {"mean", "std"} <= set(source.module_.state_dict())
    torch.save(source.module_.state_dict(), tmp_path / "finetuned.pt")
    clf = ImageClassifier("mobilenet_v3_small", weights=tmp_path / "finetuned.pt", image_size=16,
                          freeze="backbone", max_epochs=1, batch_size=4,
                          random_state=0).fit(X[:8], y[:8] % 4)
    assert_same_tensors(backbone_parameters(clf.module_.model, "classifier.3"),
                        source.module_.model.state_dict())
    assert clf.module_.model.classifier[3].out_features == 4
    # The file's normalization comes along: the network keeps seeing
    # ImageNet-normalized images.
    np.testing.assert_allclose(clf.module_.mean.flatten(), IMAGENET_MEAN)
    torch.testing.assert_close(clf.module_.std, source.module_.std)


def test_local_weights_that_do_not_fit_name_the_mismatch(pretrained_cnn, digits):
    _, folder = pretrained_cnn
    X, y = digits
    with pytest.raises(ValueError, match=r"does not fit the module SmallCNN: shapes differ for "
                                         r"\['features.0.weight: file \(8, 1, 3, 3\), model "
                                         r"\(16, 1, 3, 3\)'"):
        ImageClassifier("cnn", module__width=16, weights=folder / "bare.pth",
                        max_epochs=1).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"missing keys \['features.14.weight'"):
        ImageClassifier("cnn", module__width=8, module__depth=3, weights=folder / "bare.pth",
                        max_epochs=1).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"ResNet: missing keys \['conv1.weight'.*unexpected "
                                         r"keys \['features.0.weight'"):
        ImageClassifier("resnet18", weights=folder / "bare.pth", max_epochs=1).fit(X[:4], y[:4])


def test_local_weights_file_errors(tmp_path, digits):
    X, y = digits
    missing = tmp_path / "missing.pt"
    with pytest.raises(FileNotFoundError, match="'weights' parameter of ImageClassifier names "
                                                f"the file '{missing}', which does not exist"):
        ImageClassifier("cnn", weights=missing, max_epochs=1).fit(X[:4], y[:4])
    torch.save({"a": 1}, tmp_path / "not_a_state_dict.pt")
    with pytest.raises(ValueError, match=r"does not hold a state_dict"):
        ImageClassifier("cnn", weights=tmp_path / "not_a_state_dict.pt",
                        max_epochs=1).fit(X[:4], y[:4])


def test_init_with_weights_is_an_error(pretrained_cnn, digits):
    _, folder = pretrained_cnn
    X, y = digits
    with pytest.raises(InvalidParameterError, match="'init' parameter of ImageClassifier would "
                                                    "overwrite the pretrained weights"):
        ImageClassifier("cnn", module__width=8, weights=folder / "bare.pth",
                        init="kaiming_normal", max_epochs=1).fit(X[:20], y[:20])
