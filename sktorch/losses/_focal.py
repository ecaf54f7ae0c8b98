"""Focal loss (Lin et al., 2017), sigmoid and softmax forms."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from sktorch.losses._common import (
    Mode,
    Prepared,
    Reduction,
    arguments_repr,
    check_common,
    check_real,
    fill_doc,
    full_precision,
    masked_reduce,
    prepare,
    safe_log,
)


def _modulating_factor(one_minus_pt: torch.Tensor, gamma: float) -> torch.Tensor:
    # (1 - p_t) ** gamma has an infinite derivative at 0 when gamma < 1; where
    # 1 - p_t underflows to 0 (a confident, correct logit of 1e4) that infinity
    # would meet the zero derivative of the sigmoid and give NaN. Clamping to
    # the smallest normal number zeroes the gradient there instead.
    return one_minus_pt.clamp_min(torch.finfo(one_minus_pt.dtype).tiny).pow(gamma)


def focal_terms(
    prepared: Prepared,
    *,
    mode: str,
    from_logits: bool,
    gamma: float,
    alpha: torch.Tensor | None,
) -> torch.Tensor:
    """Element-wise focal loss of a :class:`Prepared` pair, before masking.

    Returns ``(N, S)`` for 'multiclass' and ``(N, C, S)`` otherwise. With
    ``gamma=0`` and ``alpha=None`` these are the cross-entropy and the binary
    cross-entropy terms. ``alpha`` is a tensor of shape ``(C,)`` (per-class
    weights) or ``()`` (the weight of the positive class, sigmoid form only).
    """
    x, target = prepared.input, prepared.target
    if mode == "multiclass":
        log_p = torch.log_softmax(x, dim=1) if from_logits else safe_log(x)
        log_pt = log_p.gather(1, target.unsqueeze(1)).squeeze(1)
        loss = -log_pt
        if gamma:
            # 1 - p_t as -expm1(log p_t): no cancellation when p_t is close to 1.
            loss = loss * _modulating_factor(-torch.expm1(log_pt), gamma)
        if alpha is not None:
            loss = loss * alpha[target]
        return loss

    if from_logits:
        loss = F.binary_cross_entropy_with_logits(x, target, reduction="none")
        # sigmoid(-x) rather than 1 - sigmoid(x): exact for large positive logits.
        one_minus_pt = torch.sigmoid(x) * (1 - target) + torch.sigmoid(-x) * target
    else:
        loss = F.binary_cross_entropy(x, target, reduction="none")
        one_minus_pt = x * (1 - target) + (1 - x) * target
    if gamma:
        loss = loss * _modulating_factor(one_minus_pt, gamma)
    if alpha is not None:
        if alpha.dim():  # one weight per label, along the channel dimension
            alpha = alpha.view(1, -1, 1)
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss


def check_alpha_size(alpha: torch.Tensor | None, n_classes: int, owner: str, mode: str) -> None:
    """Raise if per-class weights do not match the input's number of classes."""
    if alpha is not None and alpha.dim() and alpha.numel() != n_classes:
        raise ValueError(
            f"The 'alpha' argument of {owner} gives {alpha.numel()} class weights, but the "
            f"input has {n_classes} classes (mode={mode!r}, dimension 1 of the input)."
        )


@fill_doc
class FocalLoss(nn.Module):
    """Focal loss: cross-entropy scaled down on well-classified examples.

    Registered as ``criterion='focal'``. Each term is
    ``-alpha_t * (1 - p_t) ** gamma * log(p_t)``, where ``p_t`` is the
    probability given to the true class (Lin et al., 2017). In 'binary' and
    'multilabel' modes it is the sigmoid focal loss, equal to
    :func:`torchvision.ops.sigmoid_focal_loss` for the same ``alpha`` and
    ``gamma``; in 'multiclass' mode it is the softmax focal loss.

    Parameters
    ----------
    $mode
    alpha : float, sequence of float or None, default=None
        Class weights; None weighs every term by 1. 'binary' and 'multilabel':
        a float in [0, 1], the weight of positives (negatives get
        ``1 - alpha``; torchvision's default is 0.25); 'multilabel' also takes
        one such float per channel. 'multiclass': one non-negative weight per
        class (a single float is an error, as it has no meaning under a
        softmax).
    gamma : float, default=2.0
        Focusing parameter, >= 0; 0 gives back the (weighted) cross-entropy.
    $from_logits
    reduction : {'mean', 'sum', 'none'}, default='mean'
        'mean' averages over the positions whose target is not ignored (the
        class weights do not enter the divisor), 'sum' adds them up, 'none'
        returns the element-wise map (zeros at ignored positions): shape
        ``(N, *spatial)`` in 'multiclass' mode, the input's shape otherwise.
    $ignore_index

    See Also
    --------
    DiceLoss : Overlap loss, robust to a small foreground on a large background.
    DiceCELoss : Dice plus cross-entropy.

    Notes
    -----
    With ``gamma=0`` and ``alpha=None`` the loss equals
    :func:`torch.nn.functional.cross_entropy` ('multiclass') or
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`. With per-class
    weights, 'mean' divides by the number of non-ignored positions, not by the
    sum of their weights as ``F.cross_entropy(weight=...)`` does. A batch
    whose every target is ignored gives 0 (with a zero gradient), not NaN.

    The loss is computed in float32 (float64 inputs stay float64), with
    autocast switched off, and returned in that dtype.

    References
    ----------
    .. [1] T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollar, "Focal Loss
       for Dense Object Detection", ICCV 2017, https://arxiv.org/abs/1708.02002

    Examples
    --------
    >>> import torch
    >>> from sktorch.losses import FocalLoss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    >>> target = torch.tensor([0, 2])
    >>> loss = FocalLoss(gamma=2.0)(logits, target)
    >>> round(loss.item(), 4)
    0.0036
    >>> binary = FocalLoss(mode="binary", alpha=0.25)
    >>> round(binary(torch.tensor([[0.0]]), torch.tensor([[1.0]])).item(), 4)
    0.0433
    """

    def __init__(
        self,
        mode: Mode = "multiclass",
        alpha: float | Sequence[float] | None = None,
        gamma: float = 2.0,
        from_logits: bool = True,
        reduction: Reduction = "mean",
        ignore_index: int | None = -100,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_common(owner, mode, from_logits, reduction, ignore_index)
        check_real(gamma, "gamma", owner, low=0.0)
        weights = _check_alpha(alpha, mode, owner)
        self.mode = mode
        self.alpha = alpha
        self.gamma = gamma
        self.from_logits = from_logits
        self.reduction = reduction
        self.ignore_index = ignore_index
        # A non-persistent buffer follows .to(device) without entering the state_dict.
        self.register_buffer("_alpha_weights", weights, persistent=False)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Focal loss of ``input`` (logits or probabilities) against ``target``."""
        owner = type(self).__name__
        with full_precision(input.device):
            prepared = prepare(
                input, target, mode=self.mode, ignore_index=self.ignore_index, owner=owner
            )
            alpha = self._alpha_weights
            if alpha is not None:
                alpha = alpha.to(device=prepared.input.device, dtype=prepared.input.dtype)
                check_alpha_size(alpha, prepared.input.shape[1], owner, self.mode)
            loss = focal_terms(
                prepared,
                mode=self.mode,
                from_logits=self.from_logits,
                gamma=float(self.gamma),
                alpha=alpha,
            )
            return masked_reduce(loss, prepared.valid, self.reduction, prepared.shape)

    def extra_repr(self) -> str:
        return arguments_repr(self)


_MAX_WEIGHT = torch.finfo(torch.float32).max  # finite: a NaN or inf weight fails "0 <= v <= max"


def _check_alpha(alpha: object, mode: str, owner: str) -> torch.Tensor | None:
    """Validate ``alpha`` for ``mode`` and return it as a tensor (or None)."""
    if alpha is None:
        return None
    if isinstance(alpha, Real) and not isinstance(alpha, bool):
        if mode == "multiclass":
            raise ValueError(
                f"The 'alpha' argument of {owner} must be None or a sequence of one weight "
                f"per class in mode='multiclass'. Got {alpha!r} instead: a single float "
                "weighs positives against negatives, which only has a meaning for sigmoid "
                "outputs (mode='binary' or 'multilabel')."
            )
        check_real(alpha, "alpha", owner, low=0.0, high=1.0)
        return torch.tensor(float(alpha))
    if mode == "binary":
        raise ValueError(
            f"The 'alpha' argument of {owner} must be None or a float in the range [0, 1] "
            f"(the weight of positives) in mode='binary'. Got {alpha!r} instead."
        )
    values = alpha.tolist() if hasattr(alpha, "tolist") else alpha
    high = 1.0 if mode == "multilabel" else None
    expected = (
        "a sequence of floats in the range [0, 1]" if high else "a sequence of floats >= 0"
    )
    if (
        not isinstance(values, Sequence)
        or isinstance(values, str)
        or not values
        or not all(
            isinstance(v, Real) and not isinstance(v, bool) and 0 <= v <= (high or _MAX_WEIGHT)
            for v in values
        )
    ):
        raise ValueError(
            f"The 'alpha' argument of {owner} must be None or {expected}, one per class, "
            f"in mode={mode!r}. Got {alpha!r} instead."
        )
    return torch.tensor([float(v) for v in values])
