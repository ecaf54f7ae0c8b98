"""ImageClassifier: image inputs, freezing and learning rates, 3-channel
backbones on gray images, and the scikit-learn contract."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.utils import estimator_checks
from skorch.callbacks import Callback

from sktorch import ImageClassifier
from sktorch.exceptions import InvalidParameterError
from sktorch.models import ImageModel, SmallCNN


@pytest.fixture(scope="module")
def digits():
    """Digits as floats in [0, 1] (n, 8, 8), as uint8 (0-255), and labels."""
    data = load_digits()
    floats = (data.images / 16).astype(np.float32)
    uint8 = (data.images * 255 / 16).astype(np.uint8)
    return floats, uint8, data.target


@pytest.fixture(scope="module")
def fitted(digits):
    _, images, y = digits
    return ImageClassifier("cnn", module__width=8, max_epochs=5, lr=0.01,
                           random_state=0).fit(images[:200], y[:200])


class Snapshots(Callback):
    """Copies of the module's parameters when training starts and after
    every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states = [self._copy(net)]

    def on_epoch_end(self, net, **kwargs):
        self.states.append(self._copy(net))

    @staticmethod
    def _copy(net):
        return {name: p.detach().clone() for name, p in net.module_.named_parameters()}


def snapshots(clf):
    return dict(clf.net_.callbacks_)["snapshots"].states


def split(state, head):
    prefix = f"model.{head}."
    backbone = {k: v for k, v in state.items() if not k.startswith(prefix)}
    return backbone, {k: v for k, v in state.items() if k.startswith(prefix)}


def all_equal(a, b):
    assert a.keys() == b.keys() and a
    return all(torch.equal(a[k], b[k]) for k in a)


def none_equal(a, b):
    assert a.keys() == b.keys() and a
    return not any(torch.equal(a[k], b[k]) for k in a)


# -------------------------------------------------------------- fitting
def test_fitted_attributes_and_predictions(fitted, digits):
    _, images, y = digits
    assert fitted.image_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(fitted.classes_, np.arange(10))
    assert fitted.n_outputs_ == 10
    module = fitted.module_
    assert isinstance(module, ImageModel) and isinstance(module.model, SmallCNN)
    assert (module.channels, module.head, module.resize, module.crop, module.mean) == (
        1, "classifier", None, None, None)
    assert module.model.classifier[-1].out_features == 10
    proba = fitted.predict_proba(images[:200])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(fitted.predict(images[:200]), proba.argmax(axis=1))
    assert fitted.score(images[:200], y[:200]) > 0.7


def test_input_forms_give_the_same_predictions(fitted, digits, tmp_path):
    _, images, _ = digits
    images = images[:40]
    expected_proba = fitted.predict_proba(images)
    expected = fitted.predict(images)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    forms = {
        "float (n, H, W)": images / 255.0,
        "float32 (n, C, H, W)": (images / 255.0).astype(np.float32)[:, None],
        "uint8 (n, H, W, C)": images[..., None],
        "uint8 tensor (n, C, H, W)": torch.from_numpy(images[:, None]),
        "float tensor (n, C, H, W)": torch.from_numpy(images[:, None]).float() / 255,
        "PIL images": [Image.fromarray(image) for image in images],
        "str paths": [str(p) for p in paths],
        "Path paths": paths,
        "list of arrays": list(images),
    }
    for name, X in forms.items():
        np.testing.assert_array_equal(fitted.predict(X), expected, err_msg=name)
        np.testing.assert_allclose(fitted.predict_proba(X), expected_proba, rtol=0, atol=1e-6,
                                   err_msg=name)


def test_rgb_inputs_channels_last_and_first(digits):
    floats, images, y = digits
    rgb = np.stack([images, 255 - images, images // 2], axis=-1)[:120]  # (n, H, W, 3) uint8
    clf = ImageClassifier("cnn", module__width=4, max_epochs=1, random_state=0).fit(rgb, y[:120])
    assert clf.image_shape_ == (3, 8, 8)
    assert clf.module_.model.features[0].in_channels == 3
    expected = clf.predict_proba(rgb)
    pil = [Image.fromarray(image, mode="RGB") for image in rgb]
    np.testing.assert_array_equal(clf.predict_proba(pil), expected)
    np.testing.assert_allclose(clf.predict_proba(rgb.transpose(0, 3, 1, 2) / 255.0), expected,
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(C, H, W\) = \(1, 8, 8\), but ImageClassifier "
                                         r"was fitted on \(3, 8, 8\)"):
        clf.predict(floats[:3])


@pytest.mark.parametrize(
    "make_X, error, match",
    [
        (lambda im, tmp: im / 255.0 * 2, ValueError,
         r"float images as values in \[0, 1\]; X has values from 0 to 2"),
        (lambda im, tmp: np.where(np.arange(64).reshape(8, 8) == 5, np.nan, im / 255.0),
         ValueError, "NaN or infinity"),
        (lambda im, tmp: im.reshape(len(im), -1), ValueError,
         r"needs images; X has shape \(40, 64\)"),
        (lambda im, tmp: im[:, :4], ValueError,
         r"shape \(C, H, W\) = \(1, 4, 8\), but ImageClassifier was fitted on \(1, 8, 8\)"),
        (lambda im, tmp: np.full((2, 8, 8), 300), ValueError, "integer images as 0-255"),
        (lambda im, tmp: [str(tmp / "missing.png")], FileNotFoundError,
         r"image 0 of X, '.*missing.png', does not exist"),
        (lambda im, tmp: [Image.fromarray(im[0]), Image.fromarray(np.zeros((9, 9), np.uint8))],
         ValueError, r"images of one size and mode; X holds shapes \[\(8, 8\), \(9, 9\)\]"),
        (lambda im, tmp: [Image.fromarray(im[0]), im[1]], ValueError,
         "item 1 of X is a ndarray, but item 0 was an image"),
        (lambda im, tmp: im[:0], ValueError, "needs at least one image; X holds none"),
        (lambda im, tmp: [], ValueError, "needs at least one image; X holds none"),
        (lambda im, tmp: np.array([["a"] * 8] * 8)[None], ValueError, "needs numeric images"),
    ],
    ids=["float above 1", "nan", "2-D", "wrong shape", "int above 255", "missing file",
         "mixed sizes", "mixed types", "empty array", "empty list", "strings"],
)
def test_bad_images_at_predict(fitted, digits, tmp_path, make_X, error, match):
    _, images, _ = digits
    with pytest.raises(error, match=match):
        fitted.predict(make_X(images[:40], tmp_path))


def test_bad_images_at_fit(digits):
    floats, images, y = digits
    with pytest.raises(ValueError, match=r"needs images; X has shape \(50, 64\)"):
        ImageClassifier(max_epochs=1).fit(floats[:50].reshape(50, -1), y[:50])
    with pytest.raises(ValueError, match="needs at least one image"):
        ImageClassifier(max_epochs=1).fit(images[:0], y[:0])
    with pytest.raises(ValueError, match="values from -1"):
        ImageClassifier(max_epochs=1).fit(floats[:50] * 2 - 1, y[:50])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ImageClassifier(max_epochs=1).fit(floats[:50], y[:40])
    with pytest.raises(ValueError, match="requires y"):
        ImageClassifier(max_epochs=1).fit(floats[:50], None)


def test_network_channels_must_fit_the_images(digits):
    _, images, y = digits
    rgb = np.repeat(images[:20, ..., None], 3, axis=-1)
    with pytest.raises(ValueError, match="takes 1-channel images, but X holds 3-channel images"):
        ImageClassifier(SmallCNN(in_channels=1, out_features=10), max_epochs=1).fit(rgb, y[:20])


def test_gray_digits_through_a_three_channel_backbone(digits):
    floats, _, y = digits
    X, y = floats[:40], y[:40]
    clf = ImageClassifier("resnet18", image_size=32, max_epochs=5, batch_size=8,
                          random_state=0).fit(X, y)
    module = clf.module_
    assert module.channels == 3 and module.model.conv1.in_channels == 3
    assert module.model.fc.out_features == 10 and module.head == "fc"
    assert module.preprocess(torch.as_tensor(X[:2, None])).shape == (2, 3, 32, 32)
    assert clf.image_shape_ == (1, 8, 8)
    assert clf.score(X, y) > 0.3  # chance is 0.1


def test_image_size_resizes_inside_the_module(digits):
    floats, _, y = digits
    clf = ImageClassifier("cnn", module__width=4, image_size=(12, 16), max_epochs=1,
                          random_state=0).fit(floats[:40], y[:40])
    assert (clf.module_.resize, clf.module_.crop) == ((12, 16), None)
    assert clf.module_.preprocess(torch.as_tensor(floats[:2, None])).shape == (2, 1, 12, 16)
    assert clf.predict(floats[:5]).shape == (5,)


# ------------------------------------------------- freezing and learning rates
@pytest.mark.parametrize("module, head", [("cnn", "classifier"), ("resnet18", "fc")])
def test_frozen_backbone_is_bit_identical_after_fit(digits, module, head):
    floats, _, y = digits
    clf = ImageClassifier(module, freeze="backbone", max_epochs=1, batch_size=16, lr=0.01,
                          callbacks=[("snapshots", Snapshots())], random_state=0)
    clf.fit(floats[:32], y[:32])
    first, last = snapshots(clf)[0], snapshots(clf)[-1]
    assert all_equal(split(last, head)[0], split(first, head)[0])
    assert none_equal(split(last, head)[1], split(first, head)[1])
    in_optimizer = {id(p) for group in clf.net_.optimizer_.param_groups for p in group["params"]}
    trainable = {name for name, p in clf.module_.named_parameters() if id(p) in in_optimizer}
    assert trainable == set(split(last, head)[1])


def test_freeze_int_trains_the_head_alone_for_the_first_epochs(digits):
    floats, _, y = digits
    clf = ImageClassifier("cnn", module__width=8, freeze=1, max_epochs=2, lr=0.01,
                          callbacks=[("snapshots", Snapshots())], random_state=0)
    clf.fit(floats[:64], y[:64])
    start, epoch1, epoch2 = snapshots(clf)
    backbone = [split(state, "classifier")[0] for state in (start, epoch1, epoch2)]
    head = [split(state, "classifier")[1] for state in (start, epoch1, epoch2)]
    assert all_equal(backbone[1], backbone[0])
    assert none_equal(head[1], head[0])
    assert none_equal(backbone[2], backbone[1])
    assert none_equal(head[2], head[1])
    assert all(p.requires_grad for p in clf.module_.parameters())
    # The backbone is in the optimizer from the start (one group here).
    n_params = len(list(clf.module_.parameters()))
    assert sum(len(g["params"]) for g in clf.net_.optimizer_.param_groups) == n_params


def test_freeze_int_for_every_epoch_leaves_the_backbone_unchanged(digits):
    floats, _, y = digits
    clf = ImageClassifier("cnn", module__width=8, freeze=2, max_epochs=2, lr=0.01,
                          callbacks=[("snapshots", Snapshots())], random_state=0)
    clf.fit(floats[:64], y[:64])
    start, _, end = snapshots(clf)
    assert all_equal(split(end, "classifier")[0], split(start, "classifier")[0])
    assert none_equal(split(end, "classifier")[1], split(start, "classifier")[1])


@pytest.mark.parametrize("freeze", [None, 1])
def test_backbone_lr_gives_the_backbone_its_own_group(digits, freeze):
    floats, _, y = digits
    clf = ImageClassifier("cnn", module__width=4, lr=0.02, backbone_lr=0.1, freeze=freeze,
                          max_epochs=1, random_state=0).fit(floats[:40], y[:40])
    names = {id(p): name for name, p in clf.module_.named_parameters()}
    groups = [(g["lr"], {names[id(p)] for p in g["params"]})
              for g in clf.net_.optimizer_.param_groups]
    head = {"model.classifier.2.weight", "model.classifier.2.bias"}
    assert groups[0] == (0.02, head)
    assert groups[1][0] == pytest.approx(0.002)
    assert groups[1][1] == set(names.values()) - head
    assert len(groups) == 2
    assert clf.history_[-1, "lr"] == 0.02


def test_backbone_lr_with_a_frozen_backbone_and_optimizer_lr(digits):
    floats, _, y = digits
    frozen = ImageClassifier("cnn", module__width=4, backbone_lr=0.1, freeze="backbone",
                             max_epochs=1, random_state=0).fit(floats[:40], y[:40])
    assert len(frozen.net_.optimizer_.param_groups) == 1
    assert frozen.net_.optimizer_.param_groups[0]["lr"] == 1e-3
    # optimizer__lr overrides lr in skorch: it is the base of both groups.
    clf = ImageClassifier("cnn", module__width=4, backbone_lr=0.5, optimizer__lr=0.04,
                          max_epochs=1, random_state=0).fit(floats[:40], y[:40])
    assert [g["lr"] for g in clf.net_.optimizer_.param_groups] == [0.04, 0.02]


@pytest.mark.parametrize(
    "params, match",
    [
        ({"freeze": True}, r"'freeze' parameter of ImageClassifier must be a str among "
                           r"\{'backbone'\}, an int in the range \[0, inf\).* Got True"),
        ({"freeze": "head"}, "'freeze' parameter of ImageClassifier must be a str among"),
        ({"freeze": ("nomatch.*",)}, "matches no parameter"),
        ({"image_size": (0, 4)}, r"'image_size' parameter .* Got \(0, 4\) instead"),
        ({"image_size": (8,)}, r"'image_size' parameter .* Got \(8,\) instead"),
        ({"image_size": True}, "'image_size' parameter .* Got True instead"),
        ({"backbone_lr": 0}, "'backbone_lr' parameter of ImageClassifier must be a float"),
        ({"weights": 3}, "'weights' parameter of ImageClassifier must be"),
        ({"module__bogus": 1}, "bogus"),
    ],
)
def test_bad_image_parameters(digits, params, match):
    floats, _, y = digits
    with pytest.raises(ValueError, match=match):
        ImageClassifier(max_epochs=1, **params).fit(floats[:20], y[:20])


# ----------------------------------------------------- scikit-learn contract
@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
        estimator_checks.check_estimator_tags_renamed,
        estimator_checks.check_valid_tag_types,
        estimator_checks.check_mixin_order,
    ],
    ids=lambda check: check.__name__,
)
def test_sklearn_checks_without_tabular_data(check):
    # The other checks feed 2-D tabular X, which ImageClassifier refuses.
    check("ImageClassifier", ImageClassifier())


def test_tags_say_images():
    tags = ImageClassifier().__sklearn_tags__()
    assert is_classifier(ImageClassifier())
    assert not tags.input_tags.two_d_array and tags.input_tags.three_d_array
    assert not tags.input_tags.allow_nan


def test_clone_and_grid_search(digits):
    floats, _, y = digits
    clf = ImageClassifier("cnn", module__width=4, max_epochs=1, random_state=0)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and copy.module__width == 4
    grid = GridSearchCV(clf, {"lr": [1e-3, 1e-2], "module__width": [4, 8]}, cv=2)
    grid.fit(floats[:120], y[:120])
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    best = grid.best_estimator_
    assert best.lr == grid.best_params_["lr"]
    assert best.module_.model.features[0].out_channels == grid.best_params_["module__width"]
    assert not hasattr(clf, "net_")


def test_pickle_round_trip_predicts_identically(fitted, digits):
    _, images, _ = digits
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(images[:50]),
                                  fitted.predict_proba(images[:50]))
    assert restored.image_shape_ == fitted.image_shape_
    assert isinstance(restored.module_, ImageModel)
    unfitted = clone(fitted)
    assert not hasattr(unfitted, "net_") and unfitted.get_params() == fitted.get_params()


def test_paths_are_read_with_pathlib_and_modes_converted(fitted, digits, tmp_path):
    _, images, _ = digits
    # An 'LA' (gray + alpha) file reads as gray, like the 'L' original.
    Image.fromarray(images[0]).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(images[0]).save(tmp_path / "l.png")
    np.testing.assert_array_equal(fitted.predict_proba([Path(tmp_path / "la.png")]),
                                  fitted.predict_proba([tmp_path / "l.png"]))


def test_channels_last_memory_format_gives_the_same_fit():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = (digits.images[:96] / 16).astype(np.float32), digits.target[:96]
    kwargs = dict(module__width=8, max_epochs=2, batch_size=32, random_state=0)
    plain = ImageClassifier(**kwargs).fit(X, y)
    nhwc = ImageClassifier(memory_format="channels_last", **kwargs).fit(X, y)
    conv = nhwc.module_.model.features[3].weight  # (8, 8, 3, 3): layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not plain.module_.model.features[3].weight.is_contiguous(
        memory_format=torch.channels_last)
    assert nhwc.module_.preprocess(torch.from_numpy(X[:4, None])).is_contiguous(
        memory_format=torch.channels_last)
    np.testing.assert_allclose(nhwc.predict_proba(X), plain.predict_proba(X), atol=1e-4)
    with pytest.raises(ValueError, match="memory_format"):
        ImageClassifier(memory_format="nhwc").fit(X, y)


# ------------------------------------------- channel axis, ranges, PIL modes
def _rgb(digits, n=120):
    _, images, y = digits
    return np.stack([images, 255 - images, images // 2], axis=-1)[:n], y[:n]  # (n, 8, 8, 3)


@pytest.mark.parametrize("layout", ["uint8 last", "uint8 first", "float last", "float first",
                                    "float tensor last", "uint8 tensor first"])
def test_the_channel_axis_is_told_by_the_shape_not_the_dtype(digits, layout):
    # Float channels-last and uint8 channels-first arrays used to train on
    # scrambled axes: image_shape_ (8, 8, 3) and (8, 3, 8).
    rgb, y = _rgb(digits)
    kind, *tensor, order = layout.split()
    X = rgb / 255.0 if kind == "float" else rgb
    X = X.transpose(0, 3, 1, 2) if order == "first" else X
    X = torch.from_numpy(np.ascontiguousarray(X)) if tensor else X
    params = dict(module__width=4, max_epochs=1, random_state=0)
    clf = ImageClassifier(**params).fit(X, y)
    assert clf.image_shape_ == (3, 8, 8)
    reference = ImageClassifier(**params).fit(rgb, y)
    np.testing.assert_allclose(clf.predict_proba(rgb), reference.predict_proba(rgb), atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(X), reference.predict_proba(rgb), atol=1e-5)


def test_an_ambiguous_layout_is_refused_and_channels_settles_it():
    X = np.random.default_rng(0).random((8, 3, 5, 3), dtype=np.float32)
    y = np.arange(8) % 2
    params = dict(module__width=4, max_epochs=1, random_state=0)
    both = r"\(8, 3, 5, 3\).*both axis 1 and the last axis.*'channels' parameter of ImageClassifier"
    with pytest.raises(ValueError, match=both):
        ImageClassifier(**params).fit(X, y)
    assert ImageClassifier(channels="first", **params).fit(X, y).image_shape_ == (3, 5, 3)
    clf = ImageClassifier(channels="last", **params).fit(X, y)
    assert clf.image_shape_ == (3, 3, 5)
    # A tensor follows `channels` as an array does.
    np.testing.assert_array_equal(clf.predict_proba(torch.from_numpy(X)), clf.predict_proba(X))
    five = np.random.default_rng(0).random((8, 5, 6, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="neither axis 1 nor the last axis has 1, 3 or 4"):
        ImageClassifier(**params).fit(five, y)
    assert ImageClassifier(channels="first", **params).fit(five, y).image_shape_ == (5, 6, 6)
    with pytest.raises(ValueError, match="'channels' parameter of ImageClassifier"):
        ImageClassifier(channels="nchw", **params).fit(five, y)
    assert ImageClassifier().get_params()["channels"] == "auto"


class ValidSplit(Callback):
    """The validation split, as the net holds it."""

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        self.X, self.y = dataset_valid.X, dataset_valid.y


def test_validation_metrics_read_the_split_in_the_layout_of_channels():
    # The validation split is kept (n, C, H, W); scored through predict_proba
    # it must come back in the layout `channels` reads, not be transposed
    # once more (here C = H = W: silently wrong rather than an error).
    rng = np.random.default_rng(0)
    X = rng.random((40, 4, 4, 4), dtype=np.float32)  # channels-last
    y = (X[..., 0].mean(axis=(1, 2)) > X[..., 1].mean(axis=(1, 2))).astype(int)
    clf = ImageClassifier(channels="last", module__width=4, max_epochs=2, random_state=0,
                          validation_fraction=0.25, metrics=["neg_log_loss"],
                          callbacks=[("split", ValidSplit())]).fit(X, y)
    split = dict(clf.net_.callbacks_)["split"]
    with torch.no_grad():
        proba = torch.softmax(clf.module_.eval()(split.X), dim=1).numpy()
    expected = np.mean(np.log(proba[np.arange(len(proba)), split.y.numpy()]))
    assert clf.history_[-1]["valid_neg_log_loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("channels", ["auto", "first", "last"])
@pytest.mark.parametrize("shape", [(2, 1, 4, 3), (2, 3, 4, 5), (2, 3, 5, 4), (2, 4, 8, 8)])
def test_images_in_layout_reads_back_as_the_same_images(shape, channels):
    from sktorch._data._images import images_in_layout, images_to_tensor

    images = torch.rand(shape)
    back = images_to_tensor(images_in_layout(images, channels), "test", channels)
    assert torch.equal(back, images)


def test_wide_integer_images_keep_their_dynamic_range(fitted, digits, tmp_path):
    # 16-bit files used to be clipped to 0-255 by PIL's convert('L'): two
    # values left; float 'F' images to 0 and 1.
    _, images, _ = digits
    images = images[:20]
    expected = fitted.predict_proba(images)
    sixteen = images.astype(np.uint16) * 257  # v / 255 == 257 v / 65535
    forms = {
        "uint16 array": sixteen,
        "uint16 tensor": torch.from_numpy(sixteen),
        "uint32 array": images.astype(np.uint32) * 16843009,  # (2**32 - 1) / 255
    }
    for i, image in enumerate(sixteen):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        Image.fromarray(image.astype(np.int32)).save(tmp_path / f"{i}-i.tiff")
        Image.fromarray(image / np.float32(65535)).save(tmp_path / f"{i}-f.tiff")
    for suffix, mode in ((".png", "I;16"), ("-i.tiff", "I"), ("-f.tiff", "F")):
        paths = [tmp_path / f"{i}{suffix}" for i in range(len(images))]
        with Image.open(paths[0]) as image:
            assert image.mode == mode
        forms[f"{mode} files"] = paths
    # 8-bit and 16-bit images in one list: both on the same scale.
    forms["L and I;16 images"] = [Image.fromarray(images[0])] + [
        Image.fromarray(image) for image in sixteen[1:]]
    for name, X in forms.items():
        np.testing.assert_allclose(fitted.predict_proba(X), expected, atol=1e-5, err_msg=name)


def test_out_of_range_32_bit_and_float_pil_images_are_errors(fitted):
    with pytest.raises(ValueError, match=r"image 0 of X, of PIL mode 'I', has values from 70000 to "
                                         r"70000.*16-bit \(0-65535\)"):
        fitted.predict([Image.fromarray(np.full((8, 8), 70000, np.int32))])
    with pytest.raises(ValueError, match=r"image 0 of X, of PIL mode 'F', has values from 2 to 2"):
        fitted.predict([Image.fromarray(np.full((8, 8), 2.0, np.float32))])


def test_colour_and_palette_images_read_as_rgb(digits, tmp_path):
    rgb, y = _rgb(digits, 60)
    clf = ImageClassifier(module__width=4, max_epochs=1, random_state=0).fit(rgb, y)
    expected = clf.predict_proba(rgb[:8])
    rgba = np.concatenate([rgb[:8], np.full((8, 8, 8, 1), 200, np.uint8)], axis=-1)
    rgba_paths, palette_paths = [], []
    for i in range(8):
        rgba_paths.append(tmp_path / f"{i}-rgba.png")
        Image.fromarray(rgba[i], "RGBA").save(rgba_paths[-1])
        palette_paths.append(tmp_path / f"{i}-p.png")
        Image.fromarray(rgb[i]).quantize(256).save(palette_paths[-1])
    with Image.open(rgba_paths[0]) as a, Image.open(palette_paths[0]) as p:
        assert (a.mode, p.mode) == ("RGBA", "P")
    np.testing.assert_array_equal(clf.predict_proba(rgba_paths), expected)
    decoded = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in palette_paths])
    np.testing.assert_array_equal(clf.predict_proba(palette_paths), clf.predict_proba(decoded))
    # Modes that used to read as gray, or fail: RGBX, palette with alpha, HSV.
    images = [Image.fromarray(image) for image in rgb[:8]]
    np.testing.assert_array_equal(clf.predict_proba([im.convert("RGBX") for im in images]),
                                  expected)
    pa = [im.quantize(256).convert("PA") for im in images]
    np.testing.assert_array_equal(
        clf.predict_proba(pa), clf.predict_proba(np.stack([np.asarray(im.convert("RGB"))
                                                           for im in pa])))
    hsv = [im.convert("HSV") for im in images]
    assert clf.predict_proba(hsv).shape == (8, 10)
    assert ImageClassifier(module__width=4, max_epochs=1).fit(rgba_paths, y[:8]).image_shape_ \
        == (3, 8, 8)


def test_paths_that_are_not_image_files(fitted, digits, tmp_path):
    _, images, _ = digits
    Image.fromarray(images[0]).save(tmp_path / "0.png")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ValueError, match=r"image 1 of X, '.*notes.txt', is not an image file "
                                         r"that PIL can read"):
        fitted.predict([tmp_path / "0.png", text])
    with pytest.raises(IsADirectoryError, match=r"image 0 of X, '.*', is a directory; X takes "
                                                r"image files"):
        fitted.predict([tmp_path])


def test_dataset_samples_follow_the_channel_rules(digits):
    # A float (H, W, 3) sample used to be read as 8 channels of 8 x 3.
    rgb, y = _rgb(digits, 24)
    floats = (rgb / 255.0).astype(np.float32)

    class Samples(torch.utils.data.Dataset):
        def __len__(self):
            return len(floats)

        def __getitem__(self, i):
            return floats[i], y[i]

    params = dict(module__width=4, max_epochs=1, batch_size=8, random_state=0, device="cpu")
    clf = ImageClassifier(**params).fit(Samples())
    assert clf.image_shape_ == (3, 8, 8)
    np.testing.assert_allclose(clf.predict_proba(Samples()), clf.predict_proba(floats), atol=1e-6)
    assert ImageClassifier(channels="first", **params).fit(Samples()).image_shape_ == (8, 8, 3)
