"""skorch callbacks that read validation scores, in a fit without
validation data: a clear error before training."""

import pytest
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, EpochScoring

from sktorch import TorchClassifier
from sktorch.exceptions import InvalidParameterError


@pytest.mark.parametrize(
    "callback, message",
    [
        (EarlyStopping(), r"'EarlyStopping' \(EarlyStopping\) .* monitors 'valid_loss'"),
        (EpochScoring("accuracy"), r"'EpochScoring' .* scores the validation data"),
        (Checkpoint(dirname="unused"), r"'Checkpoint' .* monitors 'valid_loss_best'"),
    ],
)
def test_callback_needing_validation_data_without_it(iris, callback, message):
    X, y = iris
    trained = []
    clf = TorchClassifier(max_epochs=2, callbacks=[callback, ("spy", _Spy(trained))])
    with pytest.raises(InvalidParameterError, match=message + ".*set validation_fraction"):
        clf.fit(X, y)
    assert trained == []  # raised before the first epoch


def test_callback_options_and_training_scores_are_accepted(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, callbacks=[("stop", EarlyStopping())],
                          callbacks__stop__monitor="train_loss", random_state=0).fit(X, y)
    assert len(clf.history_) == 2
    with pytest.raises(InvalidParameterError, match="'lr_scheduler' .* monitors 'valid_loss'"):
        TorchClassifier(max_epochs=1, lr_scheduler="plateau",
                        lr_scheduler__monitor="valid_loss").fit(X, y)


def test_callback_needing_validation_data_with_it(iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=2, validation_fraction=0.2, random_state=0,
                          callbacks=[EarlyStopping(patience=5)]).fit(X, y)
    assert len(clf.history_[:, "valid_loss"]) == 2


class _Spy(Callback):
    def __init__(self, log):
        self.log = log

    def on_epoch_begin(self, net, **kwargs):
        self.log.append(len(net.history))
