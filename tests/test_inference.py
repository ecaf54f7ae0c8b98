"""The one inference loop (sktorch._engine._inference): test-time views that
carry their inverse, the per-batch InferenceModule, and the loop's modes."""

import numpy as np
import pytest
import torch
from torch import nn

from sktorch._data._augment import BatchAugment, hflip, resolve_tta
from sktorch._engine._inference import InferenceModule, chunks, run_inference


class Scores(nn.Module):
    """Per-pixel 'scores' that are the image itself, twice: (N, 1, H, W) to
    (N, 2, H, W), the second channel the first one doubled."""

    def forward(self, x):
        return torch.cat([x, 2 * x], dim=1)


class PerSample(nn.Module):
    """One score per sample and column: a weighted sum over the width, not
    mirror-symmetric."""

    def forward(self, x):
        weights = torch.arange(1.0, x.shape[-1] + 1)
        return (x * weights).sum(dim=(-1, -2))


class VFlip:
    """A batch-aware test-time view that flips the height and declares its
    inverse: it flips spatial outputs back."""

    batch_aware = True

    def __call__(self, x):
        return x.flip(-2)

    def inverse(self, output):
        return output.flip(-2) if output.ndim >= 3 else output


def images(n=3, height=4, width=5):
    return torch.arange(n * height * width, dtype=torch.float32).reshape(n, 1, height, width)


def test_hflip_view_flips_spatial_outputs_back_and_keeps_per_sample_ones():
    x = images()
    assert hflip.forward is hflip
    torch.testing.assert_close(hflip(x), x.flip(-1))
    torch.testing.assert_close(hflip.inverse(hflip(x)), x)
    scores = torch.randn(3, 2)
    assert hflip.inverse(scores) is scores


def test_a_flipped_views_output_is_flipped_back():
    # The module maps each pixel to its own value: the mirrored view, once
    # mirrored back, gives exactly the input's scores, so the average is
    # them. Without the inverse it would be the mean of the image and its
    # mirror, which this image is not.
    x = images()
    model = InferenceModule(Scores(), "identity", resolve_tta("hflip", "Test"))
    torch.testing.assert_close(model(x), Scores()(x))
    assert not torch.allclose(model(x), (Scores()(x) + Scores()(x.flip(-1))) / 2)


def test_per_sample_outputs_of_a_flipped_view_are_averaged_as_they_are():
    x = images()
    model = InferenceModule(PerSample(), "identity", [hflip])
    torch.testing.assert_close(model(x), (PerSample()(x) + PerSample()(x.flip(-1))) / 2)


def test_a_declared_inverse_is_applied_and_an_undeclared_one_is_identity():
    x = images()
    shift = lambda batch: batch + 1.0  # noqa: E731  (no inverse: averaged as it is)
    views = resolve_tta([VFlip(), shift], "Test")
    assert all(isinstance(view, BatchAugment) for view in views)
    model = InferenceModule(Scores(), "identity", views)
    expected = (Scores()(x) + Scores()(x) + Scores()(x + 1.0)) / 3
    torch.testing.assert_close(model(x), expected)


def test_batch_augment_inverts_its_transforms_in_reverse_order():
    class Add:
        def __init__(self, value):
            self.value = value

        def __call__(self, x):
            return x + self.value

        def inverse(self, output):
            return output * 10 + self.value  # order-sensitive

    augment = BatchAugment([Add(1.0), Add(2.0)])
    # Add(2).inverse first, then Add(1).inverse: ((0 * 10 + 2) * 10 + 1).
    assert augment.inverse(torch.zeros(1)).item() == 21.0


@pytest.mark.parametrize("link, expected", [
    ("identity", lambda s: s),
    ("softmax", lambda s: torch.softmax(s, dim=1)),
    ("sigmoid", lambda s: torch.cat([1 - torch.sigmoid(s), torch.sigmoid(s)], dim=1)),
])
def test_link_is_applied_per_view_before_averaging(link, expected):
    torch.manual_seed(0)
    module = nn.Linear(4, 1 if link == "sigmoid" else 3)
    x = torch.randn(6, 4)
    view = lambda batch: -batch  # noqa: E731
    model = InferenceModule(module, link, resolve_tta([view], "Test"))
    with torch.no_grad():
        want = (expected(module(x)) + expected(module(-x))) / 2
        torch.testing.assert_close(model(x), want)


def test_unknown_link_is_refused():
    with pytest.raises(ValueError, match=r"link of InferenceModule must be one of "
                                         r"\('identity', 'sigmoid', 'softmax'\). Got 'tanh'"):
        InferenceModule(nn.Identity(), "tanh")


class _Net:
    """The two things run_inference reads of a net."""

    device = "cpu"

    @staticmethod
    def autocast():
        return torch.autocast("cpu", enabled=False)


@pytest.mark.parametrize("restore_mode", [False, True])
def test_loop_runs_in_eval_mode_and_restores_training_only_when_asked(restore_mode):
    seen = []

    class Recorder(nn.Module):
        def forward(self, x):
            seen.append((self.training, torch.is_inference_mode_enabled()))
            return x.flatten(1)

    module = Recorder().train()
    x = torch.randn(10, 2, 3)
    output = run_inference(_Net(), chunks(x, 4), len(x), InferenceModule(module), owner="T",
                           chunk_rows=4, restore_mode=restore_mode)
    assert seen == [(False, True)] * 3  # three chunks of at most 4 rows
    assert module.training is restore_mode
    assert output.dtype == torch.float64 and not output.is_inference()
    np.testing.assert_array_equal(output.numpy(), x.flatten(1).double().numpy())


def test_loop_reduces_each_block_and_matches_the_module_called_at_once():
    torch.manual_seed(0)
    x = torch.rand(11, 1, 4, 5)
    model = InferenceModule(nn.Conv2d(1, 3, 3, padding=1), "softmax", [hflip, VFlip()])
    with torch.no_grad():
        whole = model(x)
    proba = run_inference(_Net(), chunks(x, 3), len(x), model, owner="T", chunk_rows=3,
                          dtype=torch.float32, on_device=True)
    torch.testing.assert_close(proba, whole)
    labels = run_inference(_Net(), chunks(x, 3), len(x), model, owner="T", chunk_rows=3,
                           dtype=torch.float32, reduce=lambda p: p.argmax(dim=1))
    assert labels.dtype == torch.int64 and labels.shape == (11, 4, 5)
    np.testing.assert_array_equal(labels.numpy(), whole.argmax(dim=1).numpy())


def test_plain_inference_module_is_reused_per_owner_and_rebuilt_when_stale():
    import gc
    import weakref

    from sktorch._engine._inference import _PLAIN, plain_inference_module

    class Owner:
        pass

    owner, module = Owner(), nn.Linear(2, 2)
    first = plain_inference_module(owner, module, "softmax")
    assert plain_inference_module(owner, module, "softmax") is first
    assert first.views == [] and first.link == "softmax"
    relinked = plain_inference_module(owner, module, "identity")
    assert relinked is not first and relinked.link == "identity"
    other = nn.Linear(2, 2)
    assert plain_inference_module(owner, other, "identity").module is other
    # Weak: the cache keeps no owner alive.
    alive = weakref.ref(owner)
    del owner
    gc.collect()
    assert alive() is None and all(key is not None for key in _PLAIN.keys())


def test_estimator_rebuilds_its_inference_module_when_tta_or_module_change(iris):
    from sktorch import TorchClassifier

    X, y = iris
    clf = TorchClassifier(module__hidden_sizes=(4,), max_epochs=1, random_state=0).fit(X, y)
    plain = clf._inference_module()
    assert clf._inference_module() is plain and plain.link == "softmax"
    clf.set_params(tta="hflip")
    assert clf._inference_module().views == [hflip]
    np.testing.assert_allclose(
        clf.predict_proba(X),
        (clf.set_params(tta=None).predict_proba(X) + clf.predict_proba(X[:, ::-1].copy())) / 2,
        rtol=0, atol=1e-12)
    clf.fit(X, y)  # a new module
    assert clf._inference_module().module is clf.module_
