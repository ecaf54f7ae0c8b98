"""``estimator.summary()``: a per-layer table of a fitted module, in the
manner of Keras' ``model.summary()`` and torchinfo."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sktorch._utils._introspect import uncompiled
from sktorch._utils._validation import check_is_fitted
from sktorch.models._image import ImageModel


def summary(estimator: Any) -> str:
    """A per-layer table of the fitted module of ``estimator``.

    One row per layer: every submodule without children, and any container
    that holds parameters of its own. Columns are the layer's name in
    ``module_.named_modules()`` (what ``freeze`` patterns and
    :func:`sktorch.explain.grad_cam`'s ``layer`` take), its type, its output
    shape for a batch of one sample, its parameter count and how many of
    those are trainable. Totals follow: all parameters, trainable and frozen
    (non-trainable), their size, and the input and output shapes.

    The shapes come from one forward pass on zeros of shape
    ``(1, *input_shape)`` (float32, which an image module scales like any
    float image), on the module's device, in eval mode and under
    ``torch.no_grad``, with forward hooks recording what every layer
    returns; the training mode of every submodule is restored afterwards.

    Parameters
    ----------
    estimator : BaseTorchEstimator
        A fitted sktorch estimator.

    Returns
    -------
    table : str
        The table, lines joined by newlines.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    Notes
    -----
    A parameter shared by several layers is counted once, in the row of the
    first layer that holds it, so the rows add up to the totals. A layer
    that returns a tuple shows the shape of each element, in brackets; one
    called several times in the forward pass shows each distinct shape and
    the number of calls (``x2``); one never called shows ``--``.
    """
    check_is_fitted(estimator)
    module = uncompiled(estimator.net_.module_)
    input_shape = (1, *tuple(estimator._input_shape))
    device = _module_device(module, estimator.net_.device)

    named = list(module.named_modules())
    # Leaves, and containers with parameters of their own (a ViT's class
    # token): together they hold every parameter exactly once.
    rows_of = {
        name
        for name, layer in named
        if next(layer.children(), None) is None
        or next(layer.parameters(recurse=False), None) is not None
    }
    outputs: dict[int, list[str]] = {id(layer): [] for _, layer in named}

    def record(layer: nn.Module, args: Any, output: Any) -> None:
        outputs[id(layer)].append(_shape(output))

    handles = [layer.register_forward_hook(record) for _, layer in named]
    network_input: list[str] = []
    if isinstance(module, ImageModel):
        # What the network itself receives, after the module's preprocessing.
        handles.append(module.model.register_forward_pre_hook(
            lambda layer, args: network_input.append(_shape(args[0]))
        ))
    modes = {layer: layer.training for _, layer in named}
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(input_shape, dtype=torch.float32, device=device))
    except Exception as exc:
        raise ValueError(
            f"summary() could not run the module of {type(estimator).__name__} on a "
            f"batch of zeros of shape {input_shape}: {exc}"
        ) from exc
    finally:
        for handle in handles:
            handle.remove()
        for layer, training in modes.items():
            layer.training = training

    seen: set[int] = set()
    rows = []
    for name, layer in named:
        if name not in rows_of:
            continue
        params = [p for p in layer.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in params)
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        rows.append((name or "(module)", type(layer).__name__, _calls(outputs[id(layer)]),
                     f"{total:,}", f"{trainable:,}"))

    all_params = list(module.parameters())
    total = sum(p.numel() for p in all_params)
    trainable = sum(p.numel() for p in all_params if p.requires_grad)
    size_mb = sum(p.numel() * p.element_size() for p in all_params) / 2**20

    header = ("Layer", "Type", "Output shape", "Params", "Trainable")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    align = ("<", "<", "<", ">", ">")

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip()

    rule_width = sum(widths) + 2 * (len(widths) - 1)
    title = f"{type(estimator).__name__}: {_module_title(module)} on {device}"
    lines = [title, "=" * rule_width, line(header), "-" * rule_width]
    lines += [line(row) for row in rows]
    lines += [
        "=" * rule_width,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Params size (MB): {size_mb:.2f}",
        f"Input shape: {input_shape}",
        *([f"Network input (preprocessed): {network_input[0]}"] if network_input else []),
        f"Output shape: {_calls(outputs[id(module)])}",
    ]
    return "\n".join(lines)


def _module_title(module: nn.Module) -> str:
    if isinstance(module, ImageModel):
        return f"ImageModel({type(module.model).__name__}; {module.extra_repr()})"
    return type(module).__name__


def _shape(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return str(tuple(output.shape))
    if isinstance(output, (tuple, list)):
        return "[" + ", ".join(_shape(item) for item in output) + "]"
    if isinstance(output, dict):
        return "{" + ", ".join(f"{key}: {_shape(value)}" for key, value in output.items()) + "}"
    if output is None:
        return "None"
    return type(output).__name__


def _calls(shapes: list[str]) -> str:
    if not shapes:
        return "--"
    distinct = list(dict.fromkeys(shapes))
    text = ", ".join(distinct)
    return text if len(shapes) == 1 else f"{text} x{len(shapes)}"


def _module_device(module: nn.Module, default: Any) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device(default)
