"""The inference loop: every prediction of a fitted module goes through it.

:class:`InferenceModule` is the per-batch computation, an ``nn.Module``:
each test-time view of the batch through the module, the view's output
mapped back (its ``inverse``), the output function (the *link*: identity,
sigmoid or softmax) applied per view, and the views averaged.
:func:`run_inference` runs it over the batches of an X in eval mode, under
``torch.inference_mode`` and the net's autocast, and gathers the results in
one output allocated once. ``predict``/``predict_proba`` of every estimator,
the segmenter's TensorBoard images and ``export_onnx`` (which exports the
same ``InferenceModule``) all use it, so what the ONNX graph computes and
what ``predict_proba`` returns cannot drift apart.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from sktorch._utils._rng import drawing_from_global_rng
from sktorch.losses._plan import LINKS

__all__ = ["PREDICT_CHUNK_ROWS", "InferenceModule", "chunks", "first_output",
           "float32_inference", "plain_inference_module", "run_inference"]

# Rows of X per forward pass of an in-memory X, and per block the link sees.
PREDICT_CHUNK_ROWS = 4096



def first_output(output: Any) -> torch.Tensor:
    """A module may return a tuple (e.g. logits and auxiliary outputs); the
    first element is the prediction."""
    return output[0] if isinstance(output, (tuple, list)) else output


class InferenceModule(nn.Module):
    """What prediction computes for one batch, as a module.

    For the batch and for each test-time view: the view's batch through
    ``module``, the output mapped back with the view's ``inverse``, then
    ``link``; the linked outputs averaged. :func:`run_inference` calls
    :meth:`outputs` on each batch and :meth:`combine` on each block of rows;
    :meth:`forward` is the two at once, which ``export_onnx`` exports.

    Parameters
    ----------
    module : nn.Module
        The fitted network.
    link : {'identity', 'sigmoid', 'softmax'}, default='identity'
        The output function: the module's outputs as they are, the sigmoid
        of one logit as the two columns ``[1 - p, p]``, or a softmax over
        axis 1 (see :class:`sktorch.losses._plan.LossPlan`).
    views : sequence, default=()
        Test-time views (:func:`sktorch._data._augment.resolve_tta`): each
        called on a batch, with ``inverse(output)``.
    """

    def __init__(self, module: nn.Module, link: str = "identity",
                 views: Sequence[Any] = ()) -> None:
        super().__init__()
        if link not in LINKS:
            raise ValueError(f"The link of InferenceModule must be one of {LINKS}. "
                             f"Got {link!r} instead.")
        self.module = module
        self.link = link
        # A plain list: views are transforms without weights, not submodules.
        self.views = list(views)

    @property
    def n_views(self) -> int:
        """Outputs per batch: the batch itself, then one per view."""
        return len(self.views) + 1

    def outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The module's output for the batch, then for each view, mapped
        back to the batch's frame; not linked."""
        outputs = [first_output(self.module(x))]
        for view in self.views:
            outputs.append(view.inverse(first_output(self.module(view(x)))))
        return outputs

    def combine(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The linked outputs of the views (those of :meth:`outputs`, on the
        same rows), averaged: summed from zero, in order, then divided by
        their number."""
        first = self._linked(outputs[0])
        if len(outputs) == 1:
            return first
        total = torch.zeros_like(first)
        total += first
        for output in outputs[1:]:
            total += self._linked(output)
        total /= len(outputs)
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine([output.float() for output in self.outputs(x)])

    def _linked(self, output: torch.Tensor) -> torch.Tensor:
        if self.link == "softmax":
            return torch.softmax(output, dim=1)
        if self.link == "sigmoid":
            positive = torch.sigmoid(output)
            return torch.cat([1.0 - positive, positive], dim=1)
        return output

    def extra_repr(self) -> str:
        return f"link={self.link!r}, views={self.views!r}"


# owner (an estimator) -> its InferenceModule without views. Weak keys: the
# cache keeps no estimator alive, and is no part of what pickles or clones.
_PLAIN: weakref.WeakKeyDictionary[Any, InferenceModule] = weakref.WeakKeyDictionary()


def plain_inference_module(owner: Any, module: nn.Module, link: str) -> InferenceModule:
    """An :class:`InferenceModule` of ``module`` and ``link`` without views,
    built once per ``owner`` and reused while they stay the same.

    Building an ``nn.Module`` costs a sizeable share of a small network's
    forward pass on one row; a one-row ``predict`` pays it only once. The
    module holds no state of its own, so threads may share it.
    """
    model = _PLAIN.get(owner)
    if model is None or model._modules["module"] is not module or model.link != link:
        model = InferenceModule(module, link)
        _PLAIN[owner] = model
    return model


def chunks(inputs: torch.Tensor, rows: int = PREDICT_CHUNK_ROWS) -> Iterator[torch.Tensor]:
    """The in-memory inputs in blocks of ``rows`` rows (views, no copies)."""
    return (inputs[start : start + rows] for start in range(0, len(inputs), rows))


# Set by float32_inference, for the calls of the thread (or task) that set it.
_FLOAT32 = contextvars.ContextVar("sktorch_float32_inference", default=False)


@contextlib.contextmanager
def float32_inference() -> Iterator[None]:
    """Within this context, :func:`run_inference` computes in float32
    whatever the net's ``precision`` (no autocast), in this thread only:
    ``export_onnx`` compares its float32 graph with ``predict_proba`` so,
    while other threads keep predicting with the estimator's precision."""
    token = _FLOAT32.set(True)
    try:
        yield
    finally:
        _FLOAT32.reset(token)


def run_inference(
    net: Any,
    batches: Iterable[torch.Tensor],
    n_rows: int,
    model: InferenceModule,
    *,
    owner: str,
    chunk_rows: int = PREDICT_CHUNK_ROWS,
    dtype: torch.dtype = torch.float64,
    on_device: bool = False,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    restore_mode: bool = False,
) -> torch.Tensor:
    """``model`` over the batches of an X, gathered on the CPU.

    The module runs in eval mode (left so: a module in training mode is
    switched once; with ``restore_mode`` its mode is put back), under
    ``torch.inference_mode`` and the net's autocast (none within
    :func:`float32_inference`), on the net's device.
    The outputs of each view, through float32 (what the module computes
    under any precision), are staged as ``dtype`` in blocks of
    ``chunk_rows`` rows; each block goes through ``model.combine`` (link per
    view, average), then ``reduce``, into the output allocated once (see
    :class:`_Predictions`).

    Parameters
    ----------
    net : SktorchNet
        The fitted net: its ``device`` and ``autocast()``.
    batches : iterable of Tensor
        The module's inputs, batch by batch, in order.
    n_rows : int
        Rows expected (len(X)).
    model : InferenceModule
        The per-batch computation, around the net's module.
    owner : str
        The estimator's class name, for error messages.
    chunk_rows : int, default=PREDICT_CHUNK_ROWS
        Rows per block the link sees.
    dtype : torch.dtype, default=torch.float64
        Dtype the outputs are linked and averaged in.
    on_device : bool, default=False
        Stage, link and reduce on the net's device (large per-pixel
        outputs); else on the CPU, where the link sees the same blocks
        whatever the device.
    reduce : callable or None, default=None
        Applied to each combined block (a segmenter's decoding to labels).
    restore_mode : bool, default=False
        Put the module back in training mode afterwards if it was (for
        predictions made during training).

    Returns
    -------
    output : Tensor of shape (n_samples, ...)
        On the CPU, an ordinary tensor (not an inference one).
    """
    module = model.module
    was_training = module.training
    if was_training:
        module.eval()
    device = net.device
    predictions = _Predictions(n_rows, model, chunk_rows, dtype,
                               torch.device(device) if on_device else torch.device("cpu"),
                               reduce)
    # Test-time transforms may draw from torch's global random state,
    # which a fit in another thread must not see move.
    drawing = drawing_from_global_rng() if model.views else contextlib.nullcontext()
    autocast = contextlib.nullcontext() if _FLOAT32.get() else net.autocast()
    try:
        with drawing, torch.inference_mode(), autocast:
            for batch in batches:
                predictions.add(model.outputs(batch.to(device)))
            return predictions.result(owner)
    finally:
        if was_training and restore_mode:
            module.train()


class _Predictions:
    """The output of :func:`run_inference`, filled batch by batch.

    Each view's module outputs (the input's, then each ``tta`` view's) are
    staged as ``dtype`` in blocks of ``chunk_rows`` rows. A full block (and
    the last one) goes through ``model.combine`` (the link per view, then
    their average: summed from zero, as Python's ``sum`` of them was, 0.0 +
    -0.0 being 0.0, then divided by the number of views) and ``reduce``,
    and into its rows of the output, allocated once on the first block, of
    the block's width and dtype.

    The link thus sees blocks of the same rows whatever the loader's batch
    size, those of the in-memory path: linking each batch on its own would
    change the last bit of some probabilities with the batch size, for an
    elementwise kernel (sigmoid) computes the few values past its last full
    vector register apart. (Softmax works row by row: any blocks give the
    values of one call on the whole output.)
    """

    def __init__(self, n_rows: int, model: InferenceModule, chunk_rows: int,
                 dtype: torch.dtype, device: torch.device,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        self.n_rows = n_rows
        self.model = model
        self.chunk_rows = chunk_rows
        self.dtype = dtype
        self.device = device
        self.reduce = reduce
        self.stages: list[torch.Tensor] = []
        self.staged = 0
        self.output: torch.Tensor | None = None
        self.filled = 0

    def add(self, outputs: list[torch.Tensor]) -> None:
        """Stage one batch's outputs, one tensor per view."""
        outputs = [output.float().to(self.device) for output in outputs]
        if not self.stages:
            # No larger than X: a few rows of large outputs (images) stay small.
            rows = min(self.chunk_rows, max(self.n_rows, 1))
            self.stages = [torch.empty((rows, *output.shape[1:]), dtype=self.dtype,
                                       device=self.device) for output in outputs]
        start, n = 0, len(outputs[0])
        while start < n:
            if self.staged == len(self.stages[0]):
                # More rows than X has (a loader's sampler): full-size blocks.
                self.stages = [_grown(stage, self.chunk_rows) for stage in self.stages]
            take = min(n - start, len(self.stages[0]) - self.staged)
            for stage, output in zip(self.stages, outputs):
                stage[self.staged : self.staged + take] = output[start : start + take]
            self.staged += take
            start += take
            if self.staged == self.chunk_rows:
                self._flush()

    def _flush(self) -> None:
        if not self.staged:
            return
        block = self.model.combine([stage[: self.staged] for stage in self.stages])
        if self.reduce is not None:
            block = self.reduce(block)
        rows = self._reserve(block)[self.filled : self.filled + self.staged]
        rows.copy_(block)
        self.filled += self.staged
        self.staged = 0

    def _reserve(self, like: torch.Tensor) -> torch.Tensor:
        """The output, with room for the staged rows: allocated for the rows
        expected, grown only when a loader yields more than that. Allocated
        outside inference mode: an ordinary tensor, which callers may modify."""
        needed = self.filled + self.staged
        if self.output is None:
            with torch.inference_mode(False):
                self.output = torch.empty((max(self.n_rows, needed), *like.shape[1:]),
                                          dtype=like.dtype)
        elif needed > len(self.output):
            with torch.inference_mode(False):
                self.output = _grown(self.output, max(needed, 2 * len(self.output)))
        return self.output

    def result(self, owner: str) -> torch.Tensor:
        """The output, of the rows the batches gave (fewer than expected when
        the loader dropped some: a view, no copy)."""
        self._flush()
        if self.output is None:
            raise ValueError(
                f"{owner} got no batch to predict from X: its DataLoader yielded nothing "
                "(do iterator_valid__ options drop the samples?)."
            )
        return self.output if self.filled == len(self.output) else self.output[: self.filled]


def _grown(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """A copy of ``tensor`` with room for ``rows`` rows (the first ones its
    own, the rest uninitialized)."""
    grown = torch.empty((rows, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    grown[: len(tensor)] = tensor
    return grown
