"""ImageSegmenter: masks in and out (any label values), U-Net and torchvision
models, pretrained weights, joint augmentation, metrics, TensorBoard, and the
scikit-learn contract."""

import io
import os
import pickle
import urllib.error
import urllib.parse

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV
from sklearn.utils import estimator_checks
from skorch.callbacks import Callback
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

from sktorch import ImageSegmenter
from sktorch._data._augment import BatchAugment
from sktorch.callbacks import TensorBoard
from sktorch.exceptions import InvalidParameterError
from sktorch.explain import grad_cam
from sktorch.metrics import dice_scorer, mean_iou, mean_iou_scorer
from sktorch.models import SegmentationModel, UNet
from sktorch.transforms import GaussianNoise, SaltAndPepperNoise


def shapes(n, size=16, seed=0):
    """Gray images of bright discs (class 1) and squares (class 2) on a noisy
    dark background (class 0), and their masks."""
    rng = np.random.default_rng(seed)
    height, width = (size, size) if np.isscalar(size) else size
    X = rng.normal(0.25, 0.05, (n, height, width))
    y = np.zeros((n, height, width), np.int64)
    rows, cols = np.mgrid[:height, :width]
    for i in range(n):
        for kind in rng.permutation([1, 2]):
            r = rng.integers(2, min(height, width) // 4 + 1)
            cy, cx = rng.integers(r, height - r), rng.integers(r, width - r)
            if kind == 1:
                inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= r * r
            else:
                inside = (abs(rows - cy) <= r) & (abs(cols - cx) <= r)
            y[i][inside] = kind
            X[i][inside] = rng.uniform(0.6, 0.9)
    return np.clip(X, 0, 1).astype(np.float32), y


def unet(**params):
    return ImageSegmenter(module__depth=2, module__width=8, lr=0.01, batch_size=8,
                          random_state=0, **params)


@pytest.fixture(scope="module")
def data():
    return shapes(24)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return unet(max_epochs=25).fit(X, y)


class Batches(Callback):
    """The (X, y) of every training batch, as the network receives them."""

    def on_train_begin(self, net, **kwargs):
        self.batches = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.batches.append((batch[0].clone(), batch[1].clone()))


# -------------------------------------------------------------- fitting
def test_unet_overfits_a_tiny_set(fitted, data):
    X, y = data
    np.testing.assert_array_equal(fitted.classes_, [0, 1, 2])
    assert fitted.n_outputs_ == 3 and fitted.image_shape_ == (1, 16, 16)
    assert isinstance(fitted.module_, SegmentationModel)
    assert isinstance(fitted.module_.model, UNet) and fitted.module_.head == "classifier"
    masks = fitted.predict(X)
    assert masks.shape == y.shape and masks.dtype == y.dtype
    assert mean_iou(y, masks) > 0.95
    assert fitted.score(X, y) == pytest.approx(mean_iou(y, masks, labels=[0, 1, 2]))


def test_predict_proba_sums_to_one_and_gives_predict(fitted, data):
    X, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (24, 3, 16, 16) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(axis=1)])
    with torch.no_grad():
        logits = fitted.module_(torch.from_numpy(X[:, None]))
    np.testing.assert_allclose(proba, torch.softmax(logits, dim=1).numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "labels",
    [np.array([3, 7, 9]), np.array(["car", "road", "sky"]), np.array([-1.0, 0.0, 5.0])],
    ids=["3-7-9", "strings", "integral floats"],
)
def test_label_values_round_trip(data, labels):
    X, y = data
    reference = unet(max_epochs=2).fit(X, y)
    seg = unet(max_epochs=2).fit(X, labels[y])
    np.testing.assert_array_equal(seg.classes_, labels)
    # The same indices are trained on: the same network, the labels mapped back.
    predicted = seg.predict(X)
    assert predicted.dtype == labels.dtype
    np.testing.assert_array_equal(predicted, labels[reference.predict(X)])
    np.testing.assert_array_equal(seg.predict_proba(X), reference.predict_proba(X))
    assert seg.score(X, labels[y]) == reference.score(X, y)


def test_binary_bool_masks_take_one_sigmoid_channel(data):
    X, y = data
    masks = y > 0
    seg = unet(max_epochs=10).fit(X, masks)
    np.testing.assert_array_equal(seg.classes_, [False, True])
    assert seg.n_outputs_ == 1 and seg.module_.model.classifier.out_channels == 1
    proba = seg.predict_proba(X)
    with torch.no_grad():
        logits = seg.module_(torch.from_numpy(X[:, None]))
    np.testing.assert_allclose(proba[:, 1], torch.sigmoid(logits[:, 0]).numpy(), atol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    predicted = seg.predict(X)
    assert predicted.dtype == bool
    np.testing.assert_array_equal(predicted, proba[:, 1] > 0.5)
    assert seg.score(X, masks) > 0.9
    # A softmax loss on two classes: two channels.
    two = unet(max_epochs=1, criterion="cross_entropy").fit(X, masks)
    assert two.n_outputs_ == 2 and two.predict_proba(X[:2]).shape == (2, 2, 16, 16)
    assert unet(max_epochs=1, criterion="bce").fit(X, masks).n_outputs_ == 1


@pytest.mark.parametrize("criterion", ["cross_entropy", "focal", "dice", "tversky"])
def test_losses_of_the_registry_get_their_mode(data, criterion):
    X, y = data
    seg = unet(max_epochs=1, criterion=criterion).fit(X, y)
    assert seg.n_outputs_ == 3
    mode = getattr(seg.net_.criterion_, "mode", "multiclass")
    assert mode == "multiclass"
    assert np.isfinite(seg.history_[-1, "train_loss"])


def test_sizes_that_are_not_powers_of_two():
    X, y = shapes(8, size=(20, 28))
    seg = ImageSegmenter(module__depth=3, module__width=4, max_epochs=2,
                         random_state=0).fit(X, y)
    assert seg.image_shape_ == (1, 20, 28)
    assert seg.predict(X).shape == (8, 20, 28)
    assert seg.predict_proba(X[:2]).shape == (2, 3, 20, 28)


def test_uint8_rgb_images_and_a_resize(data):
    X, y = data
    rgb = (np.stack([X, X, 1 - X], axis=-1) * 255).astype(np.uint8)  # (n, H, W, 3)
    seg = unet(max_epochs=1, image_size=(24, 24)).fit(rgb, y)
    assert seg.image_shape_ == (3, 16, 16) and seg.module_.resize == (24, 24)
    assert seg.module_.model.stem[0].in_channels == 3
    assert seg.predict(rgb[:3]).shape == (3, 16, 16)
    np.testing.assert_array_equal(seg.predict(rgb.transpose(0, 3, 1, 2) / 255.0),
                                  seg.predict(rgb))


def test_tta_hflip_averages_the_mirrored_back_view(fitted, data):
    X, _ = data
    flipped = pickle.loads(pickle.dumps(fitted)).set_params(tta="hflip")  # same weights
    plain = fitted.predict_proba(X)
    mirrored = fitted.predict_proba(X[..., ::-1].copy())[..., ::-1]
    np.testing.assert_allclose(flipped.predict_proba(X), (plain + mirrored) / 2, atol=1e-6)


# ------------------------------------------------------------ bad masks
@pytest.mark.parametrize(
    "make_y, match",
    [
        (lambda y: y[:, :, :-1], r"y of shape \(n, H, W\) = \(24, 16, 16\) for X here, "
                                 r"but y has shape \(24, 16, 15\)"),
        (lambda y: y[:-1], r"but y has shape \(23, 16, 16\)"),
        (lambda y: np.stack([y] * 3, axis=-1), r"but y has shape \(24, 16, 16, 3\)"),
        (lambda y: y[:, 0, 0], r"but y has shape \(24,\)"),
        (lambda y: y * 0.5, "non-integer floats such as 0.5. Threshold probabilities"),
        (lambda y: np.where(y == 1, np.nan, y), "NaN or infinity"),
        (lambda y: np.zeros_like(y), "needs masks of at least 2 classes; y holds only 0"),
        (lambda y: [y[0], y[1][:3]], "could not read y as masks"),
        (lambda y: None, "requires y to be passed"),
        (lambda y: y.astype(complex), "needs masks of class labels .* dtype complex128"),
    ],
    ids=["width", "count", "colour masks", "one label per image", "fractions", "nan",
         "one class", "ragged", "none", "complex"],
)
def test_bad_masks_at_fit(data, make_y, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        unet(max_epochs=1).fit(X, make_y(y))


def test_labels_never_seen_in_fit(fitted, data):
    X, y = data
    unseen = np.where(y == 2, 5, y)
    with pytest.raises(ValueError, match=r"y has labels \[5\] that ImageSegmenter was not "
                                         r"fitted on \(classes_ is \[0, 1, 2\]\)"):
        fitted.score(X, unseen)
    warm = clone(fitted).set_params(warm_start=True, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"y has labels \[5\] that ImageSegmenter"):
        warm.fit(X, unseen)
    with pytest.raises(ValueError, match=r"y has labels \[5\]"):
        warm.partial_fit(X, unseen)
    with pytest.raises(ValueError, match=r"but y has shape \(24, 16, 8\)"):
        fitted.score(X, y[..., :8])
    with pytest.raises(ValueError, match=r"shape \(C, H, W\) = \(1, 16, 8\), but "
                                         r"ImageSegmenter was fitted on \(1, 16, 16\)"):
        fitted.predict(X[..., :8])


def test_a_sigmoid_loss_needs_two_classes(data):
    X, y = data
    with pytest.raises(ValueError, match="binary loss .* masks hold 3 classes"):
        unet(max_epochs=1, criterion="bce").fit(X, y)


def test_partial_fit_with_every_class_up_front(data):
    X, y = data
    seg = unet()
    with pytest.raises(ValueError, match="needs `classes` on its first call"):
        seg.partial_fit(X, y)
    seg.partial_fit(X[:4], np.minimum(y[:4], 1), classes=[0, 1, 2])
    np.testing.assert_array_equal(seg.classes_, [0, 1, 2])
    seg.partial_fit(X, y)
    assert len(seg.history_) == 2


# ------------------------------------------------------- augmentation
def test_augment_moves_each_mask_with_its_image():
    rng = np.random.default_rng(0)
    X = rng.random((32, 12, 12)).astype(np.float32)
    y = np.digitize(X, [0.3, 0.6])  # classes 0, 1, 2: a function of each pixel
    augment = [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(), v2.RandomRotation(40),
               v2.RandomResizedCrop((12, 12), scale=(0.5, 1.0),
                                    interpolation=v2.InterpolationMode.NEAREST)]
    seg = ImageSegmenter(module__depth=1, module__width=2, augment=augment, max_epochs=2,
                         batch_size=8, random_state=0,
                         callbacks=[("batches", Batches())]).fit(X, y)
    batches = dict(seg.net_.callbacks_)["batches"].batches
    assert len(batches) == 8
    originals = {x.tobytes() for x in X}
    changed = 0
    for images, masks in batches:
        assert images.shape == (8, 1, 12, 12) and masks.shape == (8, 12, 12)
        assert masks.dtype == torch.int64
        expected = torch.from_numpy(np.digitize(images[:, 0].numpy(), [0.3, 0.6]))
        # Pixels a rotation brings in are 0 in the image and class 0 in the mask.
        torch.testing.assert_close(masks, expected)
        changed += sum(image[0].numpy().tobytes() not in originals for image in images)
    assert changed > 50  # of 64: the batches were transformed


def test_noise_changes_the_image_only_and_flips_draw_per_image():
    torch.manual_seed(0)
    image = torch.arange(16.0).reshape(1, 1, 4, 4).expand(32, 1, 4, 4) / 16
    masks = (image[:, 0] > 0.5).long()
    noisy, same = BatchAugment([SaltAndPepperNoise(amount=0.3)]).pair(image, masks)
    assert not torch.equal(noisy, image) and torch.equal(same, masks)
    assert type(noisy) is torch.Tensor and type(same) is torch.Tensor
    flipped_images, flipped_masks = BatchAugment([v2.RandomHorizontalFlip()]).pair(image, masks)
    flipped = flipped_images[:, 0, 0, 0] != image[:, 0, 0, 0]
    assert 0 < int(flipped.sum()) < 32  # independent draws
    torch.testing.assert_close(flipped_masks, (flipped_images[:, 0] > 0.5).long())
    # A sigmoid target (N, 1, H, W) of floats moves the same way.
    _, float_masks = BatchAugment([v2.RandomHorizontalFlip()]).pair(image, masks[:, None].float())
    assert float_masks.shape == (32, 1, 4, 4) and float_masks.dtype == torch.float32


def test_a_rotation_fill_can_leave_new_pixels_out_of_the_loss(data):
    X, y = data
    rotate = v2.RandomRotation(45, fill={tv_tensors.Image: 0, tv_tensors.Mask: -100})
    seg = unet(max_epochs=1, augment=rotate, callbacks=[("batches", Batches())]).fit(X, y)
    masks = torch.cat([m for _, m in dict(seg.net_.callbacks_)["batches"].batches])
    assert (masks == -100).any() and np.isfinite(seg.history_[-1, "train_loss"])


def test_classifiers_still_augment_images_alone():
    from sktorch import ImageClassifier

    rng = np.random.default_rng(0)
    X, y = rng.random((16, 8, 8)).astype(np.float32), np.arange(16) % 2
    clf = ImageClassifier(module__width=2, augment=GaussianNoise(std=0.1), max_epochs=1,
                          random_state=0, callbacks=[("batches", Batches())]).fit(X, y)
    assert not clf.net_.augment_targets
    (images, labels), = dict(clf.net_.callbacks_)["batches"].batches
    assert labels.shape == (16,) and not torch.equal(images, torch.from_numpy(X[:, None]))


# ------------------------------------------------------- torchvision models
def test_torchvision_model_by_name_gets_a_head_for_the_classes(data):
    X, y = data
    seg = ImageSegmenter("lraspp_mobilenet_v3_large", max_epochs=1, batch_size=12,
                         random_state=0).fit(X[:12], y[:12])
    model = seg.module_.model
    assert isinstance(model, torchvision.models.segmentation.LRASPP)
    head = model.classifier
    assert head.low_classifier.out_channels == head.high_classifier.out_channels == 3
    assert seg.module_.channels == 3 and seg.module_.mean is None
    assert seg.predict_proba(X[:2]).shape == (2, 3, 16, 16)
    assert seg.predict(X[:2]).shape == (2, 16, 16)


def test_torchvision_auxiliary_classifier_is_dropped(data):
    X, y = data
    seg = ImageSegmenter("deeplabv3_mobilenet_v3_large", module__aux_loss=True, max_epochs=1,
                         batch_size=6, random_state=0).fit(X[:12], y[:12])
    assert seg.module_.model.aux_classifier is None
    assert seg.module_.model.classifier[-1].out_channels == 3
    assert seg.predict_proba(X[:2]).shape == (2, 3, 16, 16)


def put_hub_weights(weights, model):
    """Write ``model``'s state_dict where torchvision looks for ``weights``."""
    path = os.path.join(torch.hub.get_dir(), "checkpoints",
                        os.path.basename(urllib.parse.urlparse(weights.url).path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = model.state_dict()
    torch.save(state, path)
    return path, state


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch_home"


def test_pretrained_weights_from_the_hub_cache(torch_home, data):
    X, y = data
    weights = torchvision.models.segmentation.LRASPP_MobileNet_V3_Large_Weights.DEFAULT
    torch.manual_seed(123)
    _, state = put_hub_weights(weights, torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=21))
    seg = ImageSegmenter("lraspp_mobilenet_v3_large", weights="DEFAULT", image_size=32,
                         freeze="backbone", max_epochs=1, batch_size=12,
                         random_state=0).fit(X[:12], y[:12])
    module = seg.module_
    for name, value in module.model.named_parameters():
        if name.startswith("backbone."):  # frozen, as loaded
            assert torch.equal(value, state[name]), name
    head = module.model.classifier
    assert head.low_classifier.out_channels == 3 and head.high_classifier.out_channels == 3
    np.testing.assert_allclose(module.mean.flatten(), (0.485, 0.456, 0.406))
    np.testing.assert_allclose(module.std.flatten(), (0.229, 0.224, 0.225))
    assert module.resize == (32, 32) and module.crop is None
    assert seg.predict_proba(X[:2]).shape == (2, 3, 16, 16)
    # Without image_size, the weights' own resize: the shorter side to 520.
    from sktorch.models._segmentation import segmentation_preprocessing

    assert segmentation_preprocessing(weights, resize=True)["resize"] == (520,)


def test_backbone_weights_from_the_hub_cache(torch_home, data):
    X, y = data
    weights = torchvision.models.MobileNet_V3_Large_Weights.DEFAULT
    with pytest.raises(FileNotFoundError, match="backbone weights .* Put that file at .*"
                                                + os.path.basename(weights.url)):
        ImageSegmenter("lraspp_mobilenet_v3_large", weights_backbone="DEFAULT",
                       max_epochs=1).fit(X[:4], y[:4])
    torch.manual_seed(7)
    _, state = put_hub_weights(weights, torchvision.models.mobilenet_v3_large())
    seg = ImageSegmenter("lraspp_mobilenet_v3_large", weights_backbone=weights.name,
                         freeze="backbone", max_epochs=1, batch_size=12,
                         random_state=0).fit(X[:12], y[:12])
    backbone = dict(seg.module_.model.backbone.named_parameters())
    assert backbone and all(torch.equal(v, state[f"features.{k}"]) for k, v in backbone.items())
    np.testing.assert_allclose(seg.module_.mean.flatten(), (0.485, 0.456, 0.406))
    assert seg.module_.resize is None


def test_local_weights_file(tmp_path, fitted, data):
    X, y = data
    path = tmp_path / "unet.pt"
    torch.save(fitted.module_.state_dict(), path)  # an ImageModel's keys: model.*
    seg = unet(weights=str(path), freeze="backbone", max_epochs=1).fit(X, y)
    expected = dict(fitted.module_.named_parameters())
    for name, value in seg.module_.named_parameters():
        if not name.startswith("model.classifier."):
            assert torch.equal(value, expected[name]), name
    # Loaded, then trained: the head starts where the file's left off.
    assert seg.score(X, y) > 0.9


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"module": "unet2"}, InvalidParameterError, r"must be one of \['unet', .*Did you "
                                                     "mean 'unet'"),
        ({"weights": "DEFAULT"}, InvalidParameterError, "not a torchvision architecture"),
        ({"weights_backbone": "DEFAULT"}, InvalidParameterError,
         "'weights_backbone' parameter .* not a torchvision segmentation architecture"),
        ({"module": "lraspp_mobilenet_v3_large", "weights_backbone": "BOGUS"},
         InvalidParameterError, r"must be one of \['IMAGENET1K_V1', 'IMAGENET1K_V2', "
                                "'DEFAULT'\\] for the backbone"),
        ({"module": "lraspp_mobilenet_v3_large", "weights": "DEFAULT",
          "weights_backbone": "DEFAULT"}, InvalidParameterError, "hold the backbone"),
        ({"weights_backbone": 3}, ValueError, "'weights_backbone' parameter"),
        ({"module__depth": 0}, ValueError, "'depth' argument of UNet"),
        ({"metrics": ("mean_iou",)}, InvalidParameterError, "needs validation data"),
    ],
)
def test_bad_parameters(data, params, error, match):
    X, y = data
    with pytest.raises(error, match=match):
        ImageSegmenter(max_epochs=1, **params).fit(X[:4], y[:4])


class HalfResolutionNet(nn.Module):
    """A user's network: scores at half resolution."""

    def __init__(self, in_channels, out_features):
        super().__init__()
        self.body = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.scores = nn.Conv2d(8, out_features, 3, stride=2, padding=1)

    def forward(self, x):
        return self.scores(torch.relu(self.body(x)))


def test_user_networks_class_or_instance(data):
    X, y = data
    seg = ImageSegmenter(HalfResolutionNet, max_epochs=1, random_state=0).fit(X, y)
    assert seg.module_.head == "scores" and seg.predict(X[:2]).shape == (2, 16, 16)
    # An instance with the wrong number of score maps gets a new last convolution.
    seg = ImageSegmenter(HalfResolutionNet(1, 5), max_epochs=1, random_state=0).fit(X, y)
    assert seg.module_.model.scores.out_channels == 3


def test_module_output_of_the_wrong_shape_is_explained(data):
    X, y = data

    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(256, 3)

        def forward(self, x):
            return self.linear(x.flatten(1))

    with pytest.raises(ValueError, match=r"output of shape \(2, 3\) .* needs \(N, K, H, W\) "
                                         r"= \(2, 3, 16, 16\)"):
        ImageSegmenter(Flat, max_epochs=1).fit(X, y)


def test_freeze_backbone_trains_only_the_last_convolution(data):
    X, y = data
    seg = unet(freeze="backbone", max_epochs=1).fit(X, y)
    trainable = {n for n, p in seg.module_.named_parameters() if p.requires_grad}
    assert trainable == {"model.classifier.weight", "model.classifier.bias"}


# ------------------------------------------------ metrics, TensorBoard
class ValidationData(Callback):
    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        self.data = (dataset_valid.X.clone(), dataset_valid.y.clone())


def test_validation_metrics_by_name_and_scorer(data):
    X, y = data
    uint8 = (X * 255).astype(np.uint8)
    seg = unet(max_epochs=2, validation_fraction=0.25, metrics=("mean_iou", dice_scorer),
               callbacks=[("valid", ValidationData())]).fit(uint8, y)
    images, targets = dict(seg.net_.callbacks_)["valid"].data
    masks = seg.net_.decode_targets(targets)
    assert images.dtype == torch.uint8 and masks.shape == (6, 16, 16)
    last = seg.history_[-1]
    assert last["valid_mean_iou"] == pytest.approx(seg.score(images, masks))
    assert last["valid_dice_score"] == pytest.approx(dice_scorer(seg, images, masks))


def test_tensorboard_draws_masks_beside_images(data, tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    X, y = data
    board = TensorBoard(tmp_path, image_every=1, max_images=4, histograms=False, graph=False)
    unet(max_epochs=2, callbacks=[("tb", board)]).fit(X, y)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    acc = event_accumulator.EventAccumulator(str(run), size_guidance={"images": 0})
    acc.Reload()
    events = acc.Images("images/masks")
    assert [e.step for e in events] == [1, 2]
    # 4 rows of (image, true mask, predicted mask), 16 px tiles, 1 px borders.
    assert (events[-1].height, events[-1].width) == (4 * 17 + 1, 3 * 17 + 1)
    grid = np.asarray(Image.open(io.BytesIO(events[-1].encoded_image_string)).convert("RGB"))
    true_masks = grid[1:, 18:34].reshape(4, 17, 16, 3)[:, :16].reshape(-1, 3)
    colours = {tuple(c) for c in np.unique(true_masks, axis=0)}
    # Background black, discs blue, squares orange (tab10), every class present.
    assert colours == {(0, 0, 0), (31, 119, 180), (255, 127, 14)}


def test_training_options_apply(data, tmp_path):
    X, y = data
    seg = unet(max_epochs=4, lr_scheduler="cosine", precision="bf16-mixed",
               validation_fraction=0.25, metrics=("mean_iou",), early_stopping=3,
               early_stopping_monitor="mean_iou", checkpoint_dir=tmp_path,
               max_grad_norm=1.0, accumulate_grad_batches=2).fit(X, y)
    lrs = seg.history_[:, "lr"]
    assert lrs[0] == 0.01 and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert all(0 <= v <= 1 for v in seg.history_[:, "valid_mean_iou"])
    assert {p.name for p in seg.checkpoint_path_.iterdir()} == {"best.pt", "last.pt"}
    assert seg.predict_proba(X[:2]).dtype == np.float32


def test_grid_search_with_the_mean_iou_scorer(data):
    X, y = data
    grid = GridSearchCV(unet(max_epochs=2), {"module__width": [4, 8]},
                        scoring=mean_iou_scorer, cv=2)
    grid.fit(X, y)
    scores = grid.cv_results_["mean_test_score"]
    assert len(scores) == 2 and np.isfinite(scores).all() and (scores <= 1).all()
    best = grid.best_estimator_
    assert best.module_.model.stem[0].out_channels == grid.best_params_["module__width"]
    # The estimator's own score (GridSearchCV's default scoring) is the same mean IoU.
    assert grid.score(X, y) == pytest.approx(best.score(X, y))
    assert grid.score(X, y) == pytest.approx(mean_iou(y, best.predict(X)))


# ------------------------------------------------- scikit-learn contract
def test_pickle_round_trip_predicts_identically(fitted, data):
    X, _ = data
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert restored.net_.augment_targets and restored.net_.estimator is restored


def test_summary_and_grad_cam(fitted, data):
    X, _ = data
    table = fitted.summary()
    assert "model.classifier" in table and "Output shape: (1, 3, 16, 16)" in table
    with pytest.raises(ValueError, match="grad_cam is not supported for segmenters"):
        grad_cam(fitted, X[:2])


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
    check("ImageSegmenter", ImageSegmenter())


def test_tags_and_docstring():
    import inspect

    seg = ImageSegmenter()
    tags = seg.__sklearn_tags__()
    assert is_classifier(seg) and tags.input_tags.three_d_array
    assert tags.target_tags.multi_output and not tags.target_tags.single_output
    doc = ImageSegmenter.__doc__
    assert "$common" not in doc and doc.count("\n    module : ") == 1
    for name in inspect.signature(ImageSegmenter).parameters:
        label = "**kwargs" if name == "kwargs" else name
        assert f"\n    {label} : " in doc, name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_with_float16_and_joint_augmentation(data):
    X, y = data
    seg = unet(max_epochs=2, device="cuda", precision="16-mixed",
               augment=[v2.RandomHorizontalFlip(), SaltAndPepperNoise(amount=0.02)],
               callbacks=[("batches", Batches())]).fit(X, y)
    for images, masks in dict(seg.net_.callbacks_)["batches"].batches:
        assert images.is_cuda and masks.is_cuda
    proba = seg.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-3)
    assert seg.predict(X).shape == y.shape


def test_a_dataset_input_is_a_clear_error():
    from torch.utils.data import TensorDataset

    images = torch.rand(4, 1, 8, 8)
    masks = (images[:, 0] > 0.5).long()
    with pytest.raises(TypeError, match="does not take a torch Dataset"):
        ImageSegmenter(max_epochs=1).fit(TensorDataset(images, masks))


def test_channels_last_images_and_masks_with_a_channel_axis(data):
    # Float (n, H, W, 3) images used to be read as H channels of W x 3; their
    # masks may carry a channel axis where the images have theirs.
    X, y = data
    rgb = np.stack([X, X, 1 - X], axis=-1)  # (n, 16, 16, 3) floats
    seg = unet(max_epochs=1).fit(rgb, y[..., None])
    assert seg.image_shape_ == (3, 16, 16)
    reference = unet(max_epochs=1).fit(rgb.transpose(0, 3, 1, 2), y[:, None])
    np.testing.assert_allclose(seg.predict_proba(rgb[:3]), reference.predict_proba(rgb[:3]),
                               atol=1e-5)
    assert seg.score(rgb, y[..., None]) == seg.score(rgb, y)
    with pytest.raises(ValueError, match=r"y has shape \(24, 16, 1, 16\)"):
        unet(max_epochs=1).fit(rgb, y[:, :, None])
    with pytest.raises(ValueError, match="'channels' parameter of ImageSegmenter"):
        unet(max_epochs=1).fit(rgb[:, :3, :3], y[:, :3, :3])
