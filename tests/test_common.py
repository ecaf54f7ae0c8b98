"""scikit-learn's own estimator checks, on every sktorch estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktorch import TorchClassifier, TorchRegressor

ESTIMATORS = [TorchClassifier(), TorchRegressor()]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
