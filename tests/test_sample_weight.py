"""sample_weight: the training loss, the epoch losses and the validation metrics are weighted means."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score
from torch import nn

from sktorch import ImageSegmenter, TorchClassifier, TorchRegressor
from sktorch._data._split import split_validation
from sktorch.losses import DiceLoss, FocalLoss, TverskyLoss
from sktorch.losses._weighted import unreduced, weighted_loss_terms

# Full batch, plain SGD, no shuffling effect: the updates are those of the
# loss over the whole data, so row duplication and weights compare exactly.
FULL_BATCH = dict(optimizer="sgd", lr=0.1, batch_size=10_000, max_epochs=3, random_state=0,
                  device="cpu")


def params_of(est):
    return [p.detach().clone() for p in est.module_.parameters()]


def assert_same_params(a, b, atol):
    for pa, pb in zip(params_of(a), params_of(b)):
        torch.testing.assert_close(pa, pb, rtol=0, atol=atol)


@pytest.fixture
def counts(iris):
    return np.random.RandomState(0).randint(0, 4, len(iris[1])).astype(float)


def test_integer_weights_equal_duplicated_rows(iris, counts):
    X, y = iris
    weighted = TorchClassifier(module__hidden_sizes=(8,), **FULL_BATCH).fit(X, y, sample_weight=counts)
    repeat = counts.astype(int)
    duplicated = TorchClassifier(module__hidden_sizes=(8,), **FULL_BATCH).fit(
        np.repeat(X, repeat, axis=0), np.repeat(y, repeat))
    assert_same_params(weighted, duplicated, atol=1e-6)
    np.testing.assert_allclose(weighted.history_[:, "train_loss"],
                               duplicated.history_[:, "train_loss"], rtol=1e-6)


def test_regressor_integer_weights_equal_duplicated_rows(regression_data):
    X, Y = regression_data
    counts = np.arange(len(X)) % 3
    weighted = TorchRegressor(module__hidden_sizes=(8,), **FULL_BATCH).fit(
        X, Y, sample_weight=counts)
    duplicated = TorchRegressor(module__hidden_sizes=(8,), **FULL_BATCH).fit(
        np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0))
    assert_same_params(weighted, duplicated, atol=1e-6)


@pytest.mark.parametrize("weight", [1.0, 2.5])
def test_equal_weights_are_no_weights_to_the_bit(iris, weight):
    X, y = iris
    params = dict(module__hidden_sizes=(8,), max_epochs=2, batch_size=16, random_state=0,
                  device="cpu")
    plain = TorchClassifier(**params).fit(X, y)
    for sample_weight in (np.full(len(y), weight), weight):
        weighted = TorchClassifier(**params).fit(X, y, sample_weight=sample_weight)
        assert_same_params(weighted, plain, atol=0)
        assert weighted.history_[:, "train_loss"] == plain.history_[:, "train_loss"]


def test_zero_weights_remove_samples(iris):
    X, y = iris
    keep = np.arange(len(y)) % 2 == 0
    weighted = TorchClassifier(module__hidden_sizes=(8,), **FULL_BATCH).fit(
        X, y, sample_weight=keep.astype(float))
    half = TorchClassifier(module__hidden_sizes=(8,), **FULL_BATCH).fit(X[keep], y[keep])
    assert_same_params(weighted, half, atol=1e-6)


def test_accumulated_batches_give_the_full_batch_step(iris, counts):
    X, y = iris
    full = TorchClassifier(module__hidden_sizes=(8,), **FULL_BATCH).fit(X, y, sample_weight=counts)
    # Three batches of 50 accumulated into one step: the same gradient,
    # although each batch holds a different total weight.
    accumulated = TorchClassifier(
        module__hidden_sizes=(8,), **{**FULL_BATCH, "batch_size": 50},
        accumulate_grad_batches=3, iterator_train__shuffle=False,
    ).fit(X, y, sample_weight=counts)
    assert_same_params(accumulated, full, atol=1e-6)
    # The epoch's loss is the weighted mean over all rows, not the mean of
    # the three batches' means.
    np.testing.assert_allclose(accumulated.history_[:, "train_loss"],
                               full.history_[:, "train_loss"], rtol=1e-6)


def test_epoch_losses_are_weighted_means_over_the_rows(iris, counts):
    X, y = iris
    # lr=0 leaves the module as it was built: the recorded losses are those
    # of the initial module, which we recompute by hand.
    est = TorchClassifier(module__hidden_sizes=(8,), optimizer="sgd", lr=1e-30, batch_size=16,
                          max_epochs=1, validation_fraction=0.3, metrics=("accuracy",),
                          random_state=0, device="cpu")
    est.fit(X, y, sample_weight=counts)
    targets = torch.from_numpy(y)
    weights = torch.from_numpy(counts.astype(np.float32))
    from sktorch._data._tensors import WeightedTargets

    (train_x, train_t), (valid_x, valid_t) = split_validation(
        torch.from_numpy(X), WeightedTargets(targets, weights), 0.3, est._split_seed,
        est._target_adapter(est))
    with torch.no_grad():
        for inputs, weighted, key in ((train_x, train_t, "train_loss"),
                                      (valid_x, valid_t, "valid_loss")):
            losses = nn.functional.cross_entropy(est.module_(inputs), weighted.targets,
                                                 reduction="none")
            expected = float((losses * weighted.weights).sum() / weighted.weights.sum())
            assert est.history_[-1, key] == pytest.approx(expected, rel=1e-5)
    accuracy = accuracy_score(valid_t.targets.numpy(), est.predict(valid_x.numpy()),
                              sample_weight=valid_t.weights.numpy())
    assert est.history_[-1, "valid_accuracy"] == pytest.approx(accuracy, rel=1e-12)


def test_segmenter_weighs_whole_images():
    rng = np.random.RandomState(0)
    images = rng.rand(6, 1, 8, 8).astype(np.float32)
    masks = (images[:, 0] > 0.5).astype(int)
    counts = np.array([0, 1, 2, 1, 3, 0])
    # (Batch normalization averages the rows of a batch unweighted: off here.)
    params = dict(module__depth=1, module__width=4, module__batch_norm=False,
                  criterion="cross_entropy", **FULL_BATCH)
    weighted = ImageSegmenter(**params).fit(images, masks, sample_weight=counts)
    duplicated = ImageSegmenter(**params).fit(np.repeat(images, counts, axis=0),
                                              np.repeat(masks, counts, axis=0))
    assert_same_params(weighted, duplicated, atol=1e-6)


LOSSES = [
    (nn.CrossEntropyLoss(), "index"),
    (nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0, 0.5]), ignore_index=1), "index"),
    (nn.NLLLoss(weight=torch.tensor([2.0, 1.0, 1.0])), "log_index"),
    (nn.BCEWithLogitsLoss(), "binary"),
    (nn.MSELoss(), "real"),
    (nn.L1Loss(), "real"),
    (nn.SmoothL1Loss(), "real"),
    (FocalLoss(mode="multiclass"), "index"),
    (FocalLoss(mode="multiclass", ignore_index=2), "index"),
    (DiceLoss(mode="multiclass"), "index"),
    (TverskyLoss(mode="multiclass"), "index"),
]


@pytest.mark.parametrize("criterion, kind", LOSSES, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize("spatial", [False, True], ids=["rows", "pixels"])
def test_unit_weights_give_the_losses_own_mean(criterion, kind, spatial):
    """With every weight 1, S / D is the loss's own 'mean', for each loss
    that has a per-sample form; weights then act per sample."""
    torch.manual_seed(0)
    shape = (5, 3, 4, 4) if spatial else (5, 3)
    logits = torch.randn(shape)
    if kind in ("index", "log_index"):
        target = torch.randint(0, 3, (shape[0], *shape[2:]))
        if kind == "log_index":
            logits = logits.log_softmax(1)
    elif kind == "binary":
        target = torch.randint(0, 2, shape).float()
    else:
        target = torch.randn(shape)
    total, denominator = weighted_loss_terms(unreduced(criterion, "Test"), logits, target,
                                             torch.ones(shape[0]), "Test")
    torch.testing.assert_close(total / denominator, criterion(logits, target))
    # Weights 2 on the first sample: as if it came twice.
    weights = torch.tensor([2.0, 1, 1, 1, 1])
    total, denominator = weighted_loss_terms(unreduced(criterion, "Test"), logits, target,
                                             weights, "Test")
    twice = criterion(torch.cat([logits[:1], logits]), torch.cat([target[:1], target]))
    torch.testing.assert_close(total / denominator, twice)


def test_the_loss_is_not_changed_by_its_unreduced_copy():
    criterion = nn.CrossEntropyLoss()
    copy = unreduced(criterion, "Test")
    assert copy.reduction == "none" and criterion.reduction == "mean"


@pytest.mark.parametrize("sample_weight, match", [
    (lambda n: -np.ones(n), "negative weights"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], "NaN or infinite"),
    (lambda n: np.ones(n - 1), r"shape \(150,\)"),
    (lambda n: np.zeros(n), "zero for every sample"),
    (lambda n: np.ones((n, 2)), r"one weight per sample"),
    (lambda n: ["a"] * n, "must be numbers"),
])
def test_bad_weights_are_clear_errors(iris, sample_weight, match):
    X, y = iris
    with pytest.raises(ValueError, match=f"'sample_weight' argument of TorchClassifier.*{match}"
                       if "shape" not in match else match):
        TorchClassifier(max_epochs=1).fit(X, y, sample_weight=sample_weight(len(y)))


def test_a_loss_without_per_sample_values_is_refused_with_the_way_out(iris, counts):
    X, y = iris
    with pytest.raises(ValueError, match="batch=True pools.*criterion__batch=False"):
        TorchClassifier(criterion="dice", max_epochs=1).fit(X, y, sample_weight=counts)


def test_partial_fit_takes_weights(iris, counts):
    X, y = iris
    a = TorchClassifier(module__hidden_sizes=(8,), **{**FULL_BATCH, "max_epochs": 1})
    b = TorchClassifier(module__hidden_sizes=(8,), **{**FULL_BATCH, "max_epochs": 1})
    repeat = counts.astype(int)
    for _ in range(2):
        a.partial_fit(X, y, classes=np.unique(y), sample_weight=counts)
        b.partial_fit(np.repeat(X, repeat, axis=0), np.repeat(y, repeat), classes=np.unique(y))
    assert_same_params(a, b, atol=1e-6)


def test_score_takes_weights(iris, counts):
    X, y = iris
    est = TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert est.score(X, y, sample_weight=counts) == pytest.approx(
        accuracy_score(y, est.predict(X), sample_weight=counts))


# ------------------------------------------------------ scikit-learn's meta-estimators
def quick(**params):
    return TorchClassifier(module__hidden_sizes=(8,), lr=0.05, max_epochs=5, random_state=0,
                           **params)


@pytest.fixture(scope="module")
def tumours():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    rows = np.random.RandomState(0).permutation(len(y))[:240]
    weights = np.random.RandomState(1).rand(len(rows)) + 0.5
    return X[rows], y[rows], weights


@pytest.mark.parametrize("name", ["adaboost", "calibrated", "bagging", "stacking", "tuned",
                                  "one_vs_rest"])
def test_meta_estimators_run_unchanged(tumours, name):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import AdaBoostClassifier, BaggingClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import TunedThresholdClassifierCV
    from sklearn.multiclass import OneVsRestClassifier

    X, y, weights = tumours
    meta, fit_params = {
        # AdaBoost reweighs the samples of every round through sample_weight.
        "adaboost": (AdaBoostClassifier(quick(), n_estimators=3, random_state=0), {}),
        "calibrated": (CalibratedClassifierCV(quick(), ensemble=False, cv=3),
                       {"sample_weight": weights}),
        "bagging": (BaggingClassifier(quick(), n_estimators=3, random_state=0),
                    {"sample_weight": weights}),
        "stacking": (StackingClassifier([("torch", quick())], cv=3,
                                        final_estimator=LogisticRegression()),
                     {"sample_weight": weights}),
        "tuned": (TunedThresholdClassifierCV(quick(), cv=3, random_state=0), {}),
        "one_vs_rest": (OneVsRestClassifier(quick()), {}),
    }[name]
    meta.fit(X, y, **fit_params)
    assert meta.score(X, y) > 0.9


def test_metadata_routing_sends_the_weights_of_each_fold(tumours):
    import sklearn
    from sklearn.model_selection import GridSearchCV, KFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, weights = tumours
    cv = KFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            quick().set_fit_request(sample_weight=True).set_score_request(sample_weight=True),
        )
        result = cross_validate(pipe, X, y, cv=cv, params={"sample_weight": weights},
                                return_estimator=True)
        search = GridSearchCV(pipe, {"torchclassifier__lr": [0.01, 0.05]}, cv=cv)
        search.fit(X, y, sample_weight=weights)
    assert set(search.best_params_) == {"torchclassifier__lr"}
    for (train, test), fitted, score in zip(cv.split(X), result["estimator"],
                                            result["test_score"]):
        by_hand = make_pipeline(StandardScaler(), quick())
        by_hand.fit(X[train], y[train], torchclassifier__sample_weight=weights[train])
        np.testing.assert_array_equal(fitted.predict_proba(X[test]),
                                      by_hand.predict_proba(X[test]))
        assert score == pytest.approx(accuracy_score(y[test], by_hand.predict(X[test]),
                                                     sample_weight=weights[test]))


# ------------------------------------------------------------------ class_weight
def test_balanced_class_weight_is_scikit_learns_sample_weight(iris):
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = iris
    keep = np.r_[np.arange(0, 50), np.arange(50, 70), np.arange(100, 150)]
    X, y = X[keep], np.array(["setosa", "versicolor", "virginica"])[y[keep]]
    balanced = TorchClassifier(module__hidden_sizes=(8,), class_weight="balanced",
                               **FULL_BATCH).fit(X, y)
    by_hand = TorchClassifier(module__hidden_sizes=(8,), **FULL_BATCH).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y))
    assert_same_params(balanced, by_hand, atol=1e-7)


def test_class_weight_dict_multiplies_sample_weight(iris, counts):
    X, y = iris
    labels = np.array(["a", "b", "c"])[y]
    weights = {"a": 2.0, "c": 0.5}  # 'b' weighs 1
    combined = TorchClassifier(module__hidden_sizes=(8,), class_weight=weights,
                               **FULL_BATCH).fit(X, labels, sample_weight=counts)
    by_hand = TorchClassifier(module__hidden_sizes=(8,), **FULL_BATCH).fit(
        X, labels, sample_weight=counts * np.array([2.0, 1.0, 0.5])[y])
    assert_same_params(combined, by_hand, atol=1e-7)


def test_class_weight_equals_the_cross_entropys_own_class_weights(iris):
    X, y = iris
    weighted = TorchClassifier(module__hidden_sizes=(8,), class_weight={0: 3.0, 1: 1.0, 2: 0.5},
                               **FULL_BATCH).fit(X, y)
    in_the_loss = TorchClassifier(module__hidden_sizes=(8,),
                                  criterion__weight=torch.tensor([3.0, 1.0, 0.5]),
                                  **FULL_BATCH).fit(X, y)
    assert_same_params(weighted, in_the_loss, atol=1e-6)


def test_balanced_class_weight_raises_minority_recall():
    from sklearn.datasets import make_classification
    from sklearn.metrics import recall_score

    X, y = make_classification(n_samples=600, n_features=8, weights=[0.95], flip_y=0,
                               class_sep=0.6, random_state=0)
    X_test, y_test = X[400:], y[400:]
    params = dict(module__hidden_sizes=(16,), max_epochs=10, lr=0.01, random_state=0)
    plain = TorchClassifier(**params).fit(X[:400], y[:400])
    balanced = TorchClassifier(class_weight="balanced", **params).fit(X[:400], y[:400])
    minority = (recall_score(y_test, plain.predict(X_test)),
                recall_score(y_test, balanced.predict(X_test)))
    assert minority[1] > minority[0] + 0.2, minority


@pytest.mark.parametrize("class_weight, fit, match", [
    ({"x": 1.0}, "fit", r"'class_weight' parameter of TorchClassifier has the key 'x', which is "
                        r"not a class of y"),
    ({0: -1.0}, "fit", r"gives class 0 the weight -1.0; weights must be finite and >= 0"),
    ("balanced", "partial_fit", r"class_weight='balanced' of TorchClassifier cannot be used "
                                r"with partial_fit"),
    ("auto", "fit", r"'class_weight' parameter of TorchClassifier must be"),
])
def test_bad_class_weights_are_clear_errors(iris, class_weight, fit, match):
    X, y = iris
    est = TorchClassifier(class_weight=class_weight, max_epochs=1)
    with pytest.raises(ValueError, match=match):
        if fit == "fit":
            est.fit(X, y)
        else:
            est.partial_fit(X, y, classes=np.unique(y))
