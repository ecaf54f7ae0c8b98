"""Overlap losses for segmentation: Dice, Tversky, and Dice plus cross-entropy."""

from __future__ import annotations

import torch
from torch import nn

from sktorch.losses._common import (
    Mode,
    Prepared,
    Reduction,
    arguments_repr,
    check_common,
    check_overlap_args,
    check_real,
    fill_doc,
    full_precision,
    masked_reduce,
    prepare,
    probabilities,
    reduce,
)
from sktorch.losses._focal import focal_terms


def _masked_probs_and_onehot(
    prepared: Prepared, mode: str, from_logits: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and one-hot target, both ``(N, C, S)``, zero at ignored positions.

    The softmax runs over every class before any masking, so that dropping the
    background later changes which terms are averaged, not the probabilities.
    """
    probs = probabilities(prepared.input, mode, from_logits)
    if mode == "multiclass":
        classes = torch.arange(probs.shape[1], device=probs.device).view(1, -1, 1)
        valid = prepared.valid.unsqueeze(1).to(probs.dtype)
        onehot = (prepared.target.unsqueeze(1) == classes).to(probs.dtype) * valid
    else:
        valid = prepared.valid.to(probs.dtype)
        onehot = prepared.target  # already 0 at ignored positions
    return probs * valid, onehot


def _drop_background(
    values: torch.Tensor, mode: str, include_background: bool, owner: str
) -> torch.Tensor:
    """Drop the first class (last dimension of ``values``) unless it is kept."""
    if include_background or mode == "binary":
        return values
    if values.shape[-1] < 2:
        raise ValueError(
            f"{owner}(include_background=False) needs an input with at least 2 classes "
            f"along dimension 1; got {values.shape[-1]}."
        )
    return values[..., 1:]


def dice_per_class(
    prepared: Prepared,
    *,
    mode: str,
    from_logits: bool,
    smooth: float,
    batch: bool,
    include_background: bool,
    owner: str,
) -> torch.Tensor:
    """``1 - (2 I + smooth) / (P + G + smooth)``: shape ``(N, C)``, or ``(C,)`` with ``batch``."""
    probs, onehot = _masked_probs_and_onehot(prepared, mode, from_logits)
    dims = (0, 2) if batch else (2,)
    intersection = (probs * onehot).sum(dims)
    prob_sum = probs.sum(dims)
    target_sum = onehot.sum(dims)
    loss = 1 - (2 * intersection + smooth) / (prob_sum + target_sum + smooth)
    return _drop_background(loss, mode, include_background, owner)


@fill_doc
class DiceLoss(nn.Module):
    """Soft Dice loss: one minus the overlap of predicted probabilities and target.

    Registered as ``criterion='dice'``. For each sample and class,

    ``1 - (2 * I + smooth) / (P + G + smooth)``

    where ``I`` is the sum over the positions of probability times one-hot
    target, ``P`` the sum of the probabilities and ``G`` that of the one-hot
    target. The values are then reduced.

    Parameters
    ----------
    $mode
    $overlap
    $from_logits
    reduction : {'mean', 'sum', 'none'}, default='mean'
        How the per-(sample, class) values (per-class with ``batch=True``) are
        reduced; 'none' returns them, of shape ``(N, C)`` or ``(C,)`` (one
        class fewer without the background; ``C = 1`` in 'binary' mode).
    $ignore_index

    See Also
    --------
    TverskyLoss : Dice with separate weights on false positives and negatives.
    DiceCELoss : Dice plus cross-entropy, the usual choice to train from scratch.
    FocalLoss : Cross-entropy focused on hard examples.

    Notes
    -----
    An empty target (``G = 0``) gives ``1 - smooth / (P + smooth)``: near 1
    unless the predicted probabilities sum to far less than ``smooth``, then
    near 0. This is the convention of MONAI's ``DiceLoss``. Positions whose
    target equals ``ignore_index`` leave ``I``, ``P`` and ``G``; a batch whose
    every target is ignored gives 0 with a zero gradient.

    The loss is computed in float32 (float64 inputs stay float64), with
    autocast switched off, and returned in that dtype.

    References
    ----------
    .. [1] F. Milletari, N. Navab and S.-A. Ahmadi, "V-Net: Fully Convolutional
       Neural Networks for Volumetric Medical Image Segmentation", 3DV 2016,
       https://arxiv.org/abs/1606.04797

    Examples
    --------
    >>> import torch
    >>> from sktorch.losses import DiceLoss
    >>> logits = torch.zeros(1, 2, 2, 2)  # a uniform prediction on a 2x2 image
    >>> target = torch.tensor([[[0, 0], [1, 1]]])
    >>> # each class: I = 2 * 0.5, P = 4 * 0.5, G = 2 -> 1 - 2 / 4 = 0.5
    >>> round(DiceLoss()(logits, target).item(), 4)
    0.5
    >>> DiceLoss(reduction="none", include_background=False)(logits, target).shape
    torch.Size([1, 1])
    """

    def __init__(
        self,
        mode: Mode = "multiclass",
        smooth: float = 1e-5,
        batch: bool = False,
        include_background: bool = True,
        from_logits: bool = True,
        reduction: Reduction = "mean",
        ignore_index: int | None = -100,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_common(owner, mode, from_logits, reduction, ignore_index)
        check_overlap_args(owner, smooth, batch, include_background)
        self.mode = mode
        self.smooth = smooth
        self.batch = batch
        self.include_background = include_background
        self.from_logits = from_logits
        self.reduction = reduction
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Dice loss of ``input`` (logits or probabilities) against ``target``."""
        owner = type(self).__name__
        with full_precision(input.device):
            prepared = prepare(
                input, target, mode=self.mode, ignore_index=self.ignore_index, owner=owner
            )
            loss = dice_per_class(
                prepared,
                mode=self.mode,
                from_logits=self.from_logits,
                smooth=float(self.smooth),
                batch=self.batch,
                include_background=self.include_background,
                owner=owner,
            )
            return reduce(loss, self.reduction)

    def extra_repr(self) -> str:
        return arguments_repr(self)


@fill_doc
class TverskyLoss(nn.Module):
    """Tversky loss: Dice with separate weights on false positives and false negatives.

    Registered as ``criterion='tversky'``. For each sample and class, with
    ``TP``, ``FP`` and ``FN`` the soft true positives, false positives and
    false negatives (sums over the positions of ``p * g``, ``p * (1 - g)`` and
    ``(1 - p) * g``),

    ``1 - (2 * TP + smooth) / (2 * TP + 2 * alpha * FP + 2 * beta * FN + smooth)``

    which is the Tversky index ``TP / (TP + alpha * FP + beta * FN)`` with the
    smoothing of :class:`DiceLoss`; at ``alpha = beta = 0.5`` it equals
    :class:`DiceLoss` for the same ``smooth``.

    Parameters
    ----------
    $mode
    alpha : float, default=0.5
        Weight of the false positives, >= 0. Raise it to penalize
        over-segmentation.
    beta : float, default=0.5
        Weight of the false negatives, >= 0. Raise it (e.g. ``alpha=0.3,
        beta=0.7``) to favour recall on small structures.
    $overlap
    $from_logits
    reduction : {'mean', 'sum', 'none'}, default='mean'
        How the per-(sample, class) values (per-class with ``batch=True``) are
        reduced; 'none' returns them, of shape ``(N, C)`` or ``(C,)``.
    $ignore_index

    See Also
    --------
    DiceLoss : The case ``alpha = beta = 0.5``.

    Notes
    -----
    ``smooth`` is added to ``2 * TP`` and to the doubled denominator, as in
    Dice, so that the two losses agree exactly at 0.5/0.5; adding it to
    ``TP`` instead, as some libraries do, amounts to twice the smoothing.
    Ignored positions, empty targets and the dtype behave as in
    :class:`DiceLoss`.

    References
    ----------
    .. [1] S. S. M. Salehi, D. Erdogmus and A. Gholipour, "Tversky loss function
       for image segmentation using 3D fully convolutional deep networks",
       MLMI 2017, https://arxiv.org/abs/1706.05721

    Examples
    --------
    >>> import torch
    >>> from sktorch.losses import TverskyLoss
    >>> probs = torch.tensor([[0.9, 0.2, 0.6]])  # one sample, three positions
    >>> target = torch.tensor([[1.0, 0.0, 0.0]])
    >>> loss = TverskyLoss(mode="binary", alpha=0.7, beta=0.3, smooth=1.0, from_logits=False)
    >>> # TP = 0.9, FP = 0.8, FN = 0.1 -> 1 - 2.8 / (1.8 + 1.12 + 0.06 + 1)
    >>> round(loss(probs, target).item(), 4)
    0.2965
    """

    def __init__(
        self,
        mode: Mode = "multiclass",
        alpha: float = 0.5,
        beta: float = 0.5,
        smooth: float = 1e-5,
        batch: bool = False,
        include_background: bool = True,
        from_logits: bool = True,
        reduction: Reduction = "mean",
        ignore_index: int | None = -100,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_common(owner, mode, from_logits, reduction, ignore_index)
        check_real(alpha, "alpha", owner, low=0.0)
        check_real(beta, "beta", owner, low=0.0)
        if alpha == 0 and beta == 0:
            raise ValueError(
                f"The 'alpha' and 'beta' arguments of {owner} must not both be 0: the loss "
                "would be 0 whatever the prediction. Got alpha=0 and beta=0; use 0.5 and 0.5 "
                "for the Dice loss."
            )
        check_overlap_args(owner, smooth, batch, include_background)
        self.mode = mode
        self.alpha = alpha
        self.beta = beta
        self.smooth = smooth
        self.batch = batch
        self.include_background = include_background
        self.from_logits = from_logits
        self.reduction = reduction
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Tversky loss of ``input`` (logits or probabilities) against ``target``."""
        owner = type(self).__name__
        with full_precision(input.device):
            prepared = prepare(
                input, target, mode=self.mode, ignore_index=self.ignore_index, owner=owner
            )
            probs, onehot = _masked_probs_and_onehot(prepared, self.mode, self.from_logits)
            dims = (0, 2) if self.batch else (2,)
            # FP and FN summed directly rather than as P - TP and G - TP, which
            # round-off can leave slightly negative.
            tp = (probs * onehot).sum(dims)
            fp = (probs * (1 - onehot)).sum(dims)
            # (1 - p) is 1 at ignored positions, but the masked one-hot is 0 there.
            fn = ((1 - probs) * onehot).sum(dims)
            smooth = float(self.smooth)
            loss = 1 - (2 * tp + smooth) / (
                2 * tp + 2 * float(self.alpha) * fp + 2 * float(self.beta) * fn + smooth
            )
            loss = _drop_background(loss, self.mode, self.include_background, owner)
            return reduce(loss, self.reduction)

    def extra_repr(self) -> str:
        return arguments_repr(self)


@fill_doc
class DiceCELoss(nn.Module):
    """Weighted sum of the Dice loss and the cross-entropy.

    Registered as ``criterion='dice_ce'``. Computes
    ``lambda_dice * Dice + lambda_ce * CE``, where ``Dice`` is
    :class:`DiceLoss` with the same arguments and ``CE`` is the cross-entropy
    ('multiclass') or the binary cross-entropy ('binary' and 'multilabel'),
    both over the positions whose target is not ignored. The cross-entropy
    gives well-scaled gradients from the first step; the Dice term counters
    the imbalance between a small foreground and a large background.

    Parameters
    ----------
    $mode
    lambda_dice : float, default=1.0
        Weight of the Dice term, >= 0.
    lambda_ce : float, default=1.0
        Weight of the cross-entropy term, >= 0.
    $overlap
        It only affects the Dice term; the cross-entropy always covers every
        class.
    $from_logits
    reduction : {'mean', 'sum'}, default='mean'
        Applied to both terms: 'mean' averages the Dice values and the
        cross-entropy over the non-ignored positions; 'sum' adds each up (the
        cross-entropy sum then grows with the number of pixels). 'none' is
        refused, as the two terms have different shapes.
    $ignore_index

    See Also
    --------
    DiceLoss, FocalLoss

    Notes
    -----
    A batch whose every target is ignored gives 0 with a zero gradient (where
    ``F.cross_entropy`` gives NaN). The loss is computed in float32 (float64
    inputs stay float64), with autocast switched off.

    Examples
    --------
    >>> import torch
    >>> from sktorch.losses import DiceCELoss
    >>> logits = torch.zeros(1, 2, 2, 2)
    >>> target = torch.tensor([[[0, 0], [1, 1]]])
    >>> # Dice 0.5 (see DiceLoss) + cross-entropy log(2) = 0.6931
    >>> round(DiceCELoss()(logits, target).item(), 4)
    1.1931
    """

    def __init__(
        self,
        mode: Mode = "multiclass",
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        smooth: float = 1e-5,
        batch: bool = False,
        include_background: bool = True,
        from_logits: bool = True,
        reduction: Reduction = "mean",
        ignore_index: int | None = -100,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_common(owner, mode, from_logits, reduction, ignore_index)
        if reduction == "none":
            raise ValueError(
                f"The 'reduction' argument of {owner} must be one of ['mean', 'sum']. Got "
                "'none' instead: the Dice term has one value per (sample, class) and the "
                "cross-entropy one per position, so they cannot be added element-wise. Use "
                "DiceLoss and FocalLoss(gamma=0) with reduction='none' separately."
            )
        check_real(lambda_dice, "lambda_dice", owner, low=0.0)
        check_real(lambda_ce, "lambda_ce", owner, low=0.0)
        if lambda_dice == 0 and lambda_ce == 0:
            raise ValueError(
                f"The 'lambda_dice' and 'lambda_ce' arguments of {owner} must not both be 0: "
                "the loss would be 0 whatever the prediction. Got lambda_dice=0 and "
                "lambda_ce=0."
            )
        check_overlap_args(owner, smooth, batch, include_background)
        self.mode = mode
        self.lambda_dice = lambda_dice
        self.lambda_ce = lambda_ce
        self.smooth = smooth
        self.batch = batch
        self.include_background = include_background
        self.from_logits = from_logits
        self.reduction = reduction
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Dice plus cross-entropy of ``input`` (logits or probabilities) against ``target``."""
        owner = type(self).__name__
        with full_precision(input.device):
            prepared = prepare(
                input, target, mode=self.mode, ignore_index=self.ignore_index, owner=owner
            )
            dice = dice_per_class(
                prepared,
                mode=self.mode,
                from_logits=self.from_logits,
                smooth=float(self.smooth),
                batch=self.batch,
                include_background=self.include_background,
                owner=owner,
            )
            ce = focal_terms(
                prepared, mode=self.mode, from_logits=self.from_logits, gamma=0.0, alpha=None
            )
            ce = masked_reduce(ce, prepared.valid, self.reduction, prepared.shape)
            dice = reduce(dice, self.reduction)
            return float(self.lambda_dice) * dice + float(self.lambda_ce) * ce

    def extra_repr(self) -> str:
        return arguments_repr(self)
