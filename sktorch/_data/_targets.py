"""Target adapters: what an estimator accepts as y, and how it becomes the training target.

An estimator names its adapter class (``_target_adapter``). An adapter says
how scikit-learn's joint X/y check treats y (``joint_checks``), validates y
beside the converted X, encodes it into the target tensor and the module's
output width (recording ``classes_``, ``n_outputs_``, the fit's loss plan
from the estimator's ``_plan_loss``...), decodes training
targets back into labels for the validation metrics, and gives the labels to
stratify the validation split on.

A new kind of y (multilabel indicators, sample weights, boxes) is a new
subclass of :class:`TargetAdapter`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight

from sktorch._utils._validation import (
    as_array_input,
    check_array,
    check_classification_targets,
    check_consistent_length,
    check_finite_float32,
    column_or_1d,
)


class TargetAdapter:
    """How an estimator reads y.

    Parameters
    ----------
    estimator : BaseTorchEstimator
        The estimator whose fitted attributes the adapter records and reads.
    """

    #: Options of scikit-learn's ``validate_data`` for y when X is a table.
    joint_checks: dict[str, Any] = {}
    #: Why the estimator refuses a torch Dataset X, or None if it takes one.
    refuses_datasets: str | None = None
    #: Whether a target moves with its input through ``augment`` (a mask
    #: with its image), rather than staying as it is (a label).
    augment_with_inputs: bool = False
    #: Whether the target is dense: one per position of the input (a mask,
    #: a label per pixel), rather than one per sample.
    dense: bool = False

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.owner = type(estimator).__name__

    def validate(self, y: Any, inputs: torch.Tensor) -> Any:
        """y checked for the converted inputs of a fit (same length, kind)."""
        raise NotImplementedError

    def validate_collected(self, y: np.ndarray) -> np.ndarray:
        """The targets collected from a Dataset, checked as ``validate`` checks y."""
        raise NotImplementedError

    def encode(self, y: Any, classes: Any, reset: bool) -> tuple[torch.Tensor, int]:
        """The training target tensor and the module's output width; with
        ``reset``, record what the fit learns (``classes_``, ``n_outputs_``,
        ``_loss_plan``)."""
        raise NotImplementedError

    def decode(self, targets: torch.Tensor) -> np.ndarray:
        """Training targets back as the user gave ``y``, so validation
        metrics score as on the user's own data."""
        raise NotImplementedError

    def stratify(self, targets: torch.Tensor) -> np.ndarray | None:
        """Labels to stratify the validation split on, or None."""
        return None

    def check_first_partial_fit(self, classes: Any) -> None:
        """Check the arguments of the first ``partial_fit`` call."""

    def weigh(self, targets: torch.Tensor, weights: np.ndarray | None,
              method: str) -> np.ndarray | None:
        """The sample weights of the encoded ``targets``: ``weights`` (the
        user's ``sample_weight``, checked; None for none) times what the
        estimator weighs by target (a classifier's ``class_weight``)."""
        return weights


class RegressionTarget(TargetAdapter):
    """y as numbers: one column, or several (``n_outputs_``); predictions
    keep y's shape (1-D in, 1-D out)."""

    joint_checks = {"multi_output": True, "y_numeric": True}

    def validate(self, y, inputs):
        y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")
        check_consistent_length(inputs, y)
        return y

    def validate_collected(self, y):
        return check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")

    def encode(self, y, classes, reset):
        estimator = self.estimator
        y = check_finite_float32(y, self.owner)
        y_was_1d = y.ndim == 1
        targets = y.reshape(len(y), -1)
        if reset:
            estimator._y_was_1d = y_was_1d
            estimator.n_outputs_ = targets.shape[1]
            estimator._loss_plan = estimator._plan_loss()
        elif targets.shape[1] != estimator.n_outputs_:
            raise ValueError(
                f"y has {targets.shape[1]} target column(s), but {self.owner} "
                f"was fitted on {estimator.n_outputs_}."
            )
        return torch.from_numpy(np.ascontiguousarray(targets)), estimator.n_outputs_

    def decode(self, targets):
        y = targets.detach().cpu().double().numpy()
        return y.ravel() if self.estimator._y_was_1d else y


class _Labels(TargetAdapter):
    """Shared by targets of class labels: ``classes_`` learned at the first
    fit (or from ``partial_fit``'s ``classes``), one logit per class or one
    sigmoid logit for a binary loss."""

    #: What the labels are called in errors ("y", "the masks").
    _what = "y"

    def labels(self, y: Any) -> np.ndarray:
        """The sorted distinct labels of y."""
        return np.unique(y)

    def encode(self, y, classes, reset):
        estimator, owner = self.estimator, self.owner
        if reset:
            present = self.labels(y)
            labels = present if classes is None else self.labels(np.asarray(classes))
            self._check_classes(present, labels, classes)
            plan = estimator._plan_loss(len(labels))
            if plan.sigmoid and len(labels) != 2:
                raise ValueError(self._binary_loss_error(len(labels)))
            estimator.classes_ = labels
            estimator._loss_plan = plan
            estimator.n_outputs_ = 1 if plan.sigmoid else len(labels)
        else:
            self.check_seen(y)
        index = torch.from_numpy(np.searchsorted(estimator.classes_, y).astype(np.int64))
        if estimator._loss_plan.sigmoid:
            return index.to(torch.float32).unsqueeze(1), 1
        return index, estimator.n_outputs_

    def check_first_partial_fit(self, classes):
        if classes is None:
            raise ValueError(
                f"{self.owner}.partial_fit needs `classes` on its first call: "
                "the module's output width depends on the full set of labels."
            )

    def _check_classes(self, present: np.ndarray, labels: np.ndarray, classes: Any) -> None:
        raise NotImplementedError

    def _binary_loss_error(self, n_classes: int) -> str:
        raise NotImplementedError

    def check_seen(self, y: Any) -> np.ndarray:
        raise NotImplementedError


class LabelTarget(_Labels):
    """y as one class label per sample (any sortable type)."""

    def validate(self, y, inputs):
        y = column_or_1d(y, warn=True)
        check_consistent_length(inputs, y)
        check_classification_targets(y)
        return y

    def validate_collected(self, y):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return y

    def _check_classes(self, present, labels, classes):
        if len(labels) < 2:
            raise ValueError(
                f"{self.owner} needs samples of at least 2 classes in y; got 1 class "
                f"({labels[0]!r})."
            )
        if classes is not None and not np.isin(present, labels).all():
            raise ValueError(
                f"y has labels {sorted(set(present) - set(labels))!r} that are "
                f"not in `classes` {labels.tolist()!r}."
            )

    def _binary_loss_error(self, n_classes):
        return (
            f"The criterion {self.estimator.criterion!r} of {self.owner} is a binary loss (one "
            f"sigmoid output), but y has {n_classes} classes. Use "
            "criterion='cross_entropy', or mode='multiclass', for more than two classes."
        )

    def weigh(self, targets, weights, method):
        class_weight = getattr(self.estimator, "class_weight", None)
        if class_weight is None:
            return weights
        classes = self.estimator.classes_
        index = (targets if targets.ndim == 1 else targets[:, 0]).long().numpy()
        if isinstance(class_weight, str):  # 'balanced' (the parameter's constraint)
            if method == "partial_fit":
                raise ValueError(
                    f"class_weight='balanced' of {self.owner} cannot be used with "
                    "partial_fit: each call sees only part of the data, so the classes' "
                    "frequencies are unknown. Compute the weights once, e.g. with "
                    "sklearn.utils.class_weight.compute_class_weight on all of y, and "
                    "pass them as a dict."
                )
            per_class = compute_class_weight("balanced", classes=np.arange(len(classes)),
                                             y=index)
        else:
            per_class = np.ones(len(classes))
            for label, weight in class_weight.items():
                found = np.flatnonzero(classes == label)
                if len(found) != 1:
                    raise ValueError(
                        f"The 'class_weight' parameter of {self.owner} has the key "
                        f"{label!r}, which is not a class of y (classes_ is "
                        f"{classes.tolist()!r})."
                    )
                if not (np.isfinite(weight) and weight >= 0):
                    raise ValueError(
                        f"The 'class_weight' parameter of {self.owner} gives class "
                        f"{label!r} the weight {weight!r}; weights must be finite and >= 0."
                    )
                per_class[found[0]] = weight
        by_class = per_class[index]
        return by_class if weights is None else weights * by_class

    def check_seen(self, y):
        classes = self.estimator.classes_
        unseen = np.setdiff1d(np.unique(y), classes)
        if len(unseen):
            raise ValueError(
                f"y has labels {unseen.tolist()!r} that {self.owner} was not fitted on "
                f"(classes_ is {classes.tolist()!r}); the module's output "
                "width cannot grow. Fit from scratch instead."
            )
        return unseen

    def decode(self, targets):
        index = targets.reshape(len(targets), -1)[:, 0].to(torch.int64).cpu().numpy()
        return self.estimator.classes_[index]

    def stratify(self, targets):
        return targets.reshape(len(targets), -1)[:, 0].to(torch.int64).numpy()


MASK_HELP = (
    "y holds one mask per image of X: an array (n, H, W) (or (n, 1, H, W) or "
    "(n, H, W, 1)) of class labels, integers, strings or booleans, of the images' "
    "height and width."
)


class MaskTarget(_Labels):
    """y as one mask of class labels per image, at the image's height and width."""

    augment_with_inputs = True
    dense = True
    refuses_datasets = (
        "{owner} does not take a torch Dataset yet: pass the images "
        "and masks as arrays (or tensors, PIL images, file paths) X and y."
    )

    def labels(self, y):
        try:
            return np.unique(y)
        except TypeError as exc:
            raise ValueError(
                f"{self.owner} could not sort the labels of y ({exc}); masks must hold labels "
                "of one type (all integers, or all strings)."
            ) from exc

    def validate(self, y, inputs):
        return self.check_masks(y, (len(inputs), *inputs.shape[-2:]))

    def check_masks(self, y: Any, shape: tuple[int, int, int]) -> np.ndarray:
        """y as an array (n, H, W) of labels, for images of ``shape``."""
        owner = self.owner
        try:
            masks = np.asarray(as_array_input(y))
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{owner} could not read y as masks: {exc}. {MASK_HELP}") from exc
        if masks.ndim == 4:
            # A single channel axis, first or last as the images' may be:
            # whichever leaves the images' (n, H, W).
            for axis in (1, 3):
                if masks.shape[axis] == 1 and np.delete(masks.shape, axis).tolist() == list(shape):
                    masks = np.squeeze(masks, axis)
                    break
        if masks.shape != tuple(shape):
            raise ValueError(
                f"{owner} needs one mask per image, at the image's height and width: y "
                f"of shape (n, H, W) = {tuple(shape)} for X here, but y has shape "
                f"{masks.shape}. {MASK_HELP}"
            )
        kind = masks.dtype.kind
        if kind == "f":
            if not np.isfinite(masks).all():
                raise ValueError(f"y contains NaN or infinity; {owner} needs masks of labels.")
            fractional = masks[masks != np.round(masks)]
            if fractional.size:
                raise ValueError(
                    f"{owner} needs masks of class labels, but y holds non-integer floats "
                    f"such as {fractional.flat[0]:g}. Threshold probabilities (e.g. y > 0.5) "
                    "or round soft masks first."
                )
        elif kind not in "biuUSO":
            raise ValueError(
                f"{owner} needs masks of class labels (integers, strings or booleans); y "
                f"has dtype {masks.dtype}."
            )
        return masks

    def _check_classes(self, present, labels, classes):
        if len(labels) < 2:
            raise ValueError(
                f"{self.owner} needs masks of at least 2 classes; y holds only "
                f"{labels.tolist()[0]!r}. Pass every class to partial_fit's classes when a "
                "first batch lacks some."
            )
        if classes is not None and not np.isin(present, labels).all():
            raise ValueError(
                f"y has labels {np.setdiff1d(present, labels).tolist()!r} that are not "
                f"in `classes` {labels.tolist()!r}."
            )

    def _binary_loss_error(self, n_classes):
        return (
            f"The criterion {self.estimator.criterion!r} of {self.owner} is a binary loss (one "
            f"sigmoid output), but the masks hold {n_classes} classes. Use "
            "criterion__mode='multiclass' (or criterion='cross_entropy')."
        )

    def check_seen(self, y):
        """The labels of the masks ``y``, which must all be in ``classes_``."""
        classes = self.estimator.classes_
        present = self.labels(y)
        unseen = np.setdiff1d(present, classes)
        if len(unseen):
            raise ValueError(
                f"y has labels {unseen.tolist()!r} that {self.owner} was not "
                f"fitted on (classes_ is {classes.tolist()!r}): the network has no "
                "channel for them. Fit from scratch on masks that hold every label, or "
                "give them all to partial_fit's classes."
            )
        return present

    def decode(self, targets):
        if targets.ndim == 4:  # one sigmoid channel
            targets = targets[:, 0]
        return self.estimator.classes_[targets.to(torch.int64).cpu().numpy()]
