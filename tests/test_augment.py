"""Training-time augmentation (``augment``) and test-time augmentation
(``tta``): where they run, how their options are routed, what they average."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from torchvision.transforms import v2

from sktorch import ImageClassifier, TorchClassifier, TorchRegressor
from sktorch._data._augment import BatchAugment, hflip, resolve_augment, resolve_tta
from sktorch._utils._validation import SklearnInvalidParameterError
from sktorch.exceptions import InvalidParameterError
from sktorch.transforms import GaussianNoise, SaltAndPepperNoise

OWNER = "ImageClassifier"


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.images[:300] / 16).astype(np.float32), data.target[:300]


def recorder(batch_aware):
    """A transform that records each call (shape, device, grad mode) and
    returns its input. A function, so the copies fit makes of it share
    ``calls``."""
    calls = []

    def record(x):
        calls.append((tuple(x.shape), x.device, torch.is_grad_enabled()))
        return x

    record.batch_aware = batch_aware
    return record, calls


def small_cnn(**params):
    return ImageClassifier("cnn", module__width=4, lr=0.01, random_state=0, **params)


def probabilities(module, x):
    with torch.no_grad():
        return torch.softmax(module(x).double(), dim=1).numpy()


# --------------------------------------------------- where augment runs
def test_batch_aware_augment_runs_once_per_training_batch(digits):
    X, y = digits
    record, calls = recorder(batch_aware=True)
    # 300 images, 60 held out: 240 training images, 8 batches of up to 32.
    clf = small_cnn(augment=record, validation_fraction=0.2, max_epochs=2, batch_size=32)
    clf.fit(X, y)
    assert "valid_loss" in clf.history_[-1]
    shapes = [shape for shape, _, _ in calls]
    per_epoch = [(32, 1, 8, 8)] * 7 + [(16, 1, 8, 8)]
    assert sorted(shapes[:8]) == sorted(per_epoch) and sorted(shapes[8:]) == sorted(per_epoch)
    assert {device for _, device, _ in calls} == {torch.device(clf.net_.device)}
    assert not any(grad for _, _, grad in calls)  # augment is outside autograd
    n_calls = len(calls)
    clf.predict(X)
    clf.predict_proba(X[:10])
    clf.score(X, y)
    assert len(calls) == n_calls == 16


def test_other_augment_runs_sample_by_sample(digits):
    X, y = digits
    record, calls = recorder(batch_aware=False)
    clf = small_cnn(augment=[record], validation_fraction=0.2, max_epochs=2, batch_size=64)
    clf.fit(X, y)
    assert len(calls) == 2 * 240
    assert {shape for shape, _, _ in calls} == {(1, 8, 8)}
    clf.predict_proba(X)
    assert len(calls) == 2 * 240


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augment_runs_on_the_training_device(digits):
    X, y = digits
    record, calls = recorder(batch_aware=True)
    small_cnn(augment=record, device="cuda", max_epochs=1).fit(X[:64], y[:64])
    assert {device.type for _, device, _ in calls} == {"cuda"}


def test_augment_never_runs_at_predict(digits):
    X, y = digits
    clf = small_cnn(augment="salt_and_pepper", augment__amount=0.3, max_epochs=2).fit(X, y)
    first = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict_proba(X), first)
    np.testing.assert_array_equal(clf.predict(X), clf.predict(X))
    # The plain network in eval mode, no augmentation.
    module = clf.module_
    assert not module.training
    np.testing.assert_allclose(first, probabilities(module, torch.from_numpy(X[:, None])),
                               rtol=0, atol=1e-12)
    np.testing.assert_array_equal(clf.set_params(augment=None).predict_proba(X), first)


def test_augment_changes_training_and_only_through_its_transform(digits):
    X, y = digits
    plain = small_cnn(max_epochs=2).fit(X, y)
    noisy = small_cnn(augment="salt_and_pepper", augment__amount=0.3, max_epochs=2).fit(X, y)
    # amount=0 draws nothing and returns the batch: the fit is the plain one.
    no_op = small_cnn(augment="salt_and_pepper", augment__amount=0.0, max_epochs=2).fit(X, y)
    weights = [dict(est.module_.named_parameters()) for est in (plain, noisy, no_op)]
    assert not torch.equal(weights[0]["model.features.0.weight"],
                           weights[1]["model.features.0.weight"])
    assert all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    assert not np.array_equal(plain.predict_proba(X), noisy.predict_proba(X))
    np.testing.assert_array_equal(plain.predict_proba(X), no_op.predict_proba(X))


def test_augment_on_tabular_data(iris):
    X, y = iris
    record, calls = recorder(batch_aware=True)
    TorchClassifier(augment=[record, GaussianNoise(std=0.1, clip=False)], max_epochs=1,
                    batch_size=50, random_state=0).fit(X, y)
    assert [shape for shape, _, _ in calls] == [(50, 4)] * 3


# ------------------------------------------------- options and resolution
def test_augment_amount_is_routed_through_grid_search(digits):
    X, y = digits
    grid = GridSearchCV(small_cnn(augment="salt_and_pepper", max_epochs=1),
                        {"augment__amount": [0.0, 0.05]}, cv=2).fit(X[:120], y[:120])
    assert [p["augment__amount"] for p in grid.cv_results_["params"]] == [0.0, 0.05]
    built = grid.best_estimator_.net_.augment.transforms[0]
    assert isinstance(built, SaltAndPepperNoise)
    assert built.amount == grid.best_params_["augment__amount"]
    for params in grid.cv_results_["params"]:
        fitted = clone(grid.estimator).set_params(**params).fit(X[:40], y[:40])
        assert fitted.net_.augment.transforms[0].amount == params["augment__amount"]


def test_augment_by_name_class_and_instance():
    by_name = resolve_augment("salt_and_pepper", {}, OWNER)
    assert isinstance(by_name, BatchAugment)
    assert repr(by_name.transforms[0]) == repr(SaltAndPepperNoise())
    (noise,) = resolve_augment("gaussian_noise", {"std": 0.3}, OWNER).transforms
    assert isinstance(noise, GaussianNoise) and noise.std == 0.3
    (built,) = resolve_augment(SaltAndPepperNoise, {"amount": 0.2, "p": 0.5}, OWNER).transforms
    assert (built.amount, built.p) == (0.2, 0.5)
    instance = SaltAndPepperNoise(amount=0.1, per_channel=True)
    (copy,) = resolve_augment(instance, {}, OWNER).transforms
    assert copy is not instance and repr(copy) == repr(instance)
    (rebuilt,) = resolve_augment(instance, {"amount": 0.4}, OWNER).transforms
    assert (rebuilt.amount, rebuilt.per_channel, instance.amount) == (0.4, True, 0.1)
    (flip,) = resolve_augment(v2.RandomHorizontalFlip(p=0.3), {"p": 0.9}, OWNER).transforms
    assert isinstance(flip, v2.RandomHorizontalFlip) and flip.p == 0.9
    assert resolve_augment(None, {}, OWNER) is None


def test_list_options_go_to_the_unique_taker_or_by_position():
    record, _ = recorder(batch_aware=True)
    augment = resolve_augment(
        [record, "salt_and_pepper", GaussianNoise],
        {"amount": 0.2, "std": 0.05, "1__p": 0.5, "2__p": 0.25},
        OWNER,
    )
    first, salt, gauss = augment.transforms
    assert first is record
    assert (salt.amount, salt.p) == (0.2, 0.5)
    assert (gauss.std, gauss.p) == (0.05, 0.25)
    # A plain function takes no option, though its type's signature has a
    # 'name' argument.
    (_, named) = resolve_augment([record, SaltAndPepperNoise], {"amount": 0.1}, OWNER).transforms
    assert named.amount == 0.1


@pytest.mark.parametrize(
    "augment, options, match",
    [
        (None, {"amount": 0.1}, r"augment__ options \['amount'\] of ImageClassifier were given, "
                                r"but augment is None"),
        (["salt_and_pepper", "gaussian_noise"], {"p": 0.5},
         r"augment__p of ImageClassifier must go to exactly one transform of the augment list, "
         r"but transforms \[0, 1\] take 'p'. Name one by position: augment__<i>__p"),
        (["salt_and_pepper", "gaussian_noise"], {"bogus": 1},
         "but none take 'bogus'"),
        (["salt_and_pepper"], {"3__amount": 0.1}, "names transform 3, but augment holds 1"),
        ("salt_and_pepper", {"std": 0.1}, "std"),
        ("salt_and_peper", {}, "Did you mean 'salt_and_pepper'"),
        ([3], {}, r"augment\[0\] of ImageClassifier must be a transform name"),
        (hflip, {"dims": 1}, "cannot be applied to the function"),
        (lambda x: x, {"p": 1}, "cannot be applied to the function"),
    ],
)
def test_bad_augment_options(augment, options, match):
    with pytest.raises(InvalidParameterError, match=match):
        resolve_augment(augment, options, OWNER)


def test_bad_augment_fails_at_fit_before_training(digits):
    X, y = digits
    clf = small_cnn(augment=None, augment__amount=0.1, max_epochs=1)
    with pytest.raises(InvalidParameterError, match="but augment is None"):
        clf.fit(X[:20], y[:20])
    assert not hasattr(clf, "net_")
    with pytest.raises(SklearnInvalidParameterError, match="'augment' parameter"):
        small_cnn(augment=3, max_epochs=1).fit(X[:20], y[:20])


def test_v2_transforms_draw_per_sample_in_a_batch():
    torch.manual_seed(0)
    # Images whose mirror differs from them: a ramp from left to right.
    batch = torch.linspace(0, 1, 8).expand(400, 1, 8, 8).clone()
    before = batch.clone()
    flip = v2.RandomHorizontalFlip(p=0.5)
    out = BatchAugment([flip])(batch)
    assert torch.equal(batch, before)  # input untouched
    flipped = (out == batch.flip(-1)).flatten(1).all(dim=1)
    kept = (out == batch).flatten(1).all(dim=1)
    assert (flipped ^ kept).all()
    assert 150 < int(flipped.sum()) < 250
    # Called on the batch itself, a v2 transform draws once for all of it.
    whole = [flip(batch) for _ in range(20)]
    assert all(torch.equal(out, batch) or torch.equal(out, batch.flip(-1)) for out in whole)
    assert {torch.equal(out, batch) for out in whole} == {True, False}


def test_batch_augment_order_and_batch_awareness():
    record, calls = recorder(batch_aware=True)
    augment = BatchAugment([lambda x: x + 1, record, lambda x: x * 2])
    x = torch.zeros(5, 1, 2, 2, requires_grad=True)
    out = augment(x)
    torch.testing.assert_close(out, torch.full((5, 1, 2, 2), 2.0))
    assert [shape for shape, _, _ in calls] == [(5, 1, 2, 2)]
    assert not out.requires_grad
    assert "BatchAugment([" in repr(augment)


def test_estimator_with_a_transform_instance_clones_and_pickles(digits):
    X, y = digits
    transform = v2.Compose([SaltAndPepperNoise(amount=0.1), v2.RandomHorizontalFlip(p=0.5)])
    clf = small_cnn(augment=transform, max_epochs=1)
    copy = clone(clf)
    assert copy.augment is not transform and repr(copy.augment) == repr(transform)
    unfitted = pickle.loads(pickle.dumps(clf))
    assert repr(unfitted.augment) == repr(transform)
    clf.fit(X[:100], y[:100])
    assert clf.augment is transform  # fit used a copy
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.augment.transforms[0].amount == 0.1
    assert isinstance(restored.net_.augment, BatchAugment)
    restored.set_params(warm_start=True, max_epochs=1).fit(X[:100], y[:100])


# -------------------------------------------------------------------- tta
def test_tta_hflip_averages_the_probabilities_of_both_views(digits):
    X, y = digits
    clf = small_cnn(tta="hflip", max_epochs=2).fit(X, y)
    proba = clf.predict_proba(X)
    x = torch.from_numpy(X[:, None])
    expected = (probabilities(clf.module_, x) + probabilities(clf.module_, x.flip(-1))) / 2
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    plain = clf.set_params(tta=None).predict_proba(X)
    np.testing.assert_allclose(plain, probabilities(clf.module_, x), rtol=0, atol=1e-12)
    assert not np.allclose(plain, proba)


def test_tta_does_not_change_training(digits):
    X, y = digits
    with_tta = small_cnn(tta="hflip", max_epochs=1).fit(X, y)
    without = small_cnn(max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(with_tta.set_params(tta=None).predict_proba(X),
                                  without.predict_proba(X))


def test_tta_list_of_transforms(digits):
    X, y = digits
    record, calls = recorder(batch_aware=False)
    clf = small_cnn(tta=[v2.RandomHorizontalFlip(p=1.0), lambda im: 1 - im, "hflip", record],
                    max_epochs=1)
    clf.fit(X, y)
    assert calls == []  # tta never runs in training
    proba = clf.predict_proba(X)
    assert len(calls) == len(X)  # per sample: record is not batch aware
    x = torch.from_numpy(X[:, None])
    views = [x, x.flip(-1), 1 - x, x.flip(-1), x]
    expected = sum(probabilities(clf.module_, view) for view in views) / len(views)
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    "tta, error, match",
    [
        ("vflip", SklearnInvalidParameterError,
         r"The 'tta' parameter of ImageClassifier must be a str among \{'hflip'\}.* Got 'vflip'"),
        (3, SklearnInvalidParameterError, "The 'tta' parameter of ImageClassifier"),
        ([3], InvalidParameterError, r"tta\[0\] of ImageClassifier must be 'hflip' or a callable"),
        (["vflip"], InvalidParameterError, r"tta\[0\] .* Got 'vflip' instead"),
        ([], InvalidParameterError, "empty list; use None"),
    ],
)
def test_bad_tta_fails_at_fit(digits, tta, error, match):
    X, y = digits
    clf = small_cnn(tta=tta, max_epochs=1)
    with pytest.raises(error, match=match):
        clf.fit(X[:20], y[:20])
    assert not hasattr(clf, "net_")


def test_resolve_tta():
    assert resolve_tta(None, OWNER) == []
    assert resolve_tta("hflip", OWNER) == [hflip]
    views = resolve_tta(("hflip", SaltAndPepperNoise(amount=0.5)), OWNER)
    assert views[0] is hflip and isinstance(views[1], BatchAugment)
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    torch.testing.assert_close(hflip(x), torch.tensor([[[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]]]))


@pytest.mark.parametrize("two_d", [True, False])
def test_regressor_tta_averages_outputs(regression_data, two_d):
    X, Y = regression_data
    Y = Y if two_d else Y[:, 0]
    reg = TorchRegressor(tta=[lambda row: -row, "hflip"], max_epochs=3, random_state=0).fit(X, Y)
    pred = reg.predict(X)
    x = torch.from_numpy(X)
    with torch.no_grad():
        outputs = [reg.module_(view).double() for view in (x, -x, x.flip(-1))]
    expected = (sum(outputs) / 3).numpy()
    np.testing.assert_allclose(pred, expected if two_d else expected.ravel(), rtol=1e-6, atol=1e-9)
    plain = reg.set_params(tta=None).predict(X)
    with torch.no_grad():
        direct = reg.module_(x).double().numpy()
    np.testing.assert_allclose(plain, direct if two_d else direct.ravel(), rtol=1e-6, atol=1e-9)
    assert not np.allclose(plain, pred)
