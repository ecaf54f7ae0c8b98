"""Explaining the predictions of fitted image estimators.

:func:`grad_cam` shows where a fitted image classifier looks: Grad-CAM
(Selvaraju et al., 2017) heatmaps, one per image, at the size of the images
the estimator was given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import nn
from torchvision.transforms.v2 import functional as tvf

from sktorch._utils._introspect import did_you_mean, uncompiled
from sktorch._engine._inference import first_output
from sktorch._engine._summary import _module_device
from sktorch._utils._validation import check_is_fitted
from sktorch.models._image import ImageModel

__all__ = ["grad_cam"]

# Pooling layers keep a 4-D output but only summarize the map before them;
# Grad-CAM explains the last map that still has the network's own features.
_POOLING = (
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._LPPoolNd,
)


def grad_cam(
    estimator: Any,
    X: Any,
    target: Any = None,
    layer: str | nn.Module | None = None,
) -> np.ndarray:
    """Grad-CAM heatmaps: where a fitted image classifier looks to score a class.

    For each image, the gradients of the class score (the logit, before the
    softmax) with respect to the feature maps ``A`` of ``layer`` are averaged
    over space into one weight per channel ``w_c``; the map is
    ``ReLU(sum_c w_c A_c)``, brought to the size of the image and divided by
    its maximum [1]_.

    Parameters
    ----------
    estimator : ImageClassifier
        A fitted image classifier (its inputs are images, (n, C, H, W)).
    X : images
        Anything the estimator's ``predict`` accepts: an array or tensor
        (n, H, W), (n, C, H, W) or (n, H, W, C) (as its ``channels`` says),
        a list of PIL images or of paths.
    target : label, array-like of labels or None, default=None
        The class to explain, as a label of ``estimator.classes_`` (for
        class indices, pass ``estimator.classes_[i]``): one label for every
        image, or one per image. None explains the class each image is
        predicted as by the module (test-time augmentation aside).
    layer : str, nn.Module or None, default=None
        The layer whose output Grad-CAM weighs: a name in
        ``estimator.module_.named_modules()`` (``'model.layer3'``; a name
        inside the network, ``'layer3'``, also works for an
        :class:`~sktorch.models.ImageModel`), or a submodule of
        ``estimator.module_``. Its output must be a 4-D tensor, and it must
        run once per forward pass. None takes the layer the network declares
        as ``gradcam_layer`` (``'features'`` for ``'cnn'``), or else the last
        direct child of the network whose output is a 4-D feature map and
        that is neither a pooling layer nor the classification head
        (``'layer4'`` of a ResNet, ``'features'`` of MobileNet and
        EfficientNet).

    Returns
    -------
    heatmaps : ndarray of shape (n_samples, H, W), float32
        One map per image of X, at the height and width of the images as
        given, in [0, 1]: each map is divided by its maximum, so it peaks at
        1, unless it is zero everywhere (no evidence for the class), in which
        case it stays zero.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If the estimator does not take images or is not a classifier (a
        segmenter is not supported), if a target is not a class, or if
        ``layer`` is not a usable layer.

    Notes
    -----
    The module runs in eval mode and in float32 (no autocast), in batches of
    the estimator's ``batch_size`` on its device; the training mode of every
    submodule, the parameters' ``requires_grad`` and their ``.grad`` are as
    before afterwards. A forward hook on ``layer`` detaches its output into a
    tensor that requires grad, and a tensor hook on that tensor receives the
    gradient: Grad-CAM needs gradients from the layer up only, so nothing
    below the layer is differentiated (and no autograd graph is kept there),
    and a network whose parameters are all frozen is explained all the same.
    The rest of the network gets a copy of the layer's output, so in-place
    operations after the layer (``ReLU(inplace=True)``, a residual ``+=``)
    leave the weighed feature maps untouched.

    Geometry: the layer's map covers the network's input, that is the image
    after the module's preprocessing. Without a center crop, the map is
    upsampled bilinearly straight to (H, W). With a resize then a center crop
    (torchvision weights' preprocessing), it is upsampled to the crop, placed
    where the crop lies in the resized image (zero where the network saw
    nothing), and that is resized to (H, W): the heat lands on the pixels of
    the original image it comes from.

    References
    ----------
    .. [1] R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh and
       D. Batra, "Grad-CAM: Visual Explanations from Deep Networks via
       Gradient-based Localization", ICCV 2017,
       https://arxiv.org/abs/1610.02391

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sktorch import ImageClassifier
    >>> from sktorch.explain import grad_cam
    >>> digits = load_digits()
    >>> X, y = digits.images[:100] / 16, digits.target[:100]
    >>> clf = ImageClassifier("cnn", module__width=8, max_epochs=1, random_state=0)
    >>> heatmaps = grad_cam(clf.fit(X, y), X[:4])
    >>> heatmaps.shape
    (4, 8, 8)
    >>> bool(heatmaps.min() >= 0 and heatmaps.max() <= 1)
    True
    """
    check_is_fitted(estimator)
    owner = type(estimator).__name__
    input_shape = tuple(getattr(estimator, "_input_shape", ()))
    if len(input_shape) != 3:
        raise ValueError(
            f"grad_cam needs an image estimator, one whose inputs are images of shape "
            f"(n, C, H, W) such as ImageClassifier; {owner} takes inputs of shape "
            f"(n, {', '.join(map(str, input_shape))})."
        )
    if not hasattr(estimator, "classes_"):
        raise ValueError(
            f"grad_cam explains the class scores of a classifier; {owner} has no "
            "classes_. Use an image classifier such as ImageClassifier."
        )
    if estimator._target_adapter.dense:
        raise ValueError(
            f"grad_cam is not supported for segmenters: it explains one class score per "
            f"image, and {owner} scores every pixel. Its predict_proba gives the "
            "per-pixel probabilities of each class."
        )
    inputs = estimator._predict_inputs(X)
    n_images, height, width = len(inputs), inputs.shape[-2], inputs.shape[-1]
    targets = _target_indices(estimator, target, n_images)
    module = uncompiled(estimator.net_.module_)
    name, chosen = _resolve_layer(module, layer, inputs[:1], owner)
    device = _module_device(module, estimator.net_.device)
    sigmoid = estimator._loss_plan.sigmoid
    batch_size = max(1, int(getattr(estimator, "batch_size", 32)))

    modes = {sub: sub.training for sub in module.modules()}
    grads = {param: param.grad for param in module.parameters()}
    maps = []
    module.eval()
    try:
        for start in range(0, n_images, batch_size):
            batch = inputs[start : start + batch_size].to(device)
            index = None if targets is None else targets[start : start + batch_size].to(device)
            cam = _cam(module, chosen, name, batch, index, sigmoid)
            maps.append(_normalize(_to_image_geometry(cam, module, height, width)).cpu())
    finally:
        for sub, training in modes.items():
            sub.training = training
        for param, grad in grads.items():
            param.grad = grad
    return torch.cat(maps).numpy()


def _cam(
    module: nn.Module,
    layer: nn.Module,
    name: str,
    batch: torch.Tensor,
    index: torch.Tensor | None,
    sigmoid: bool,
) -> torch.Tensor:
    """``ReLU(sum_c w_c A_c)`` at the layer's resolution, (n, h, w)."""
    captured: dict[str, Any] = {"calls": 0}

    def keep_gradient(gradient: torch.Tensor) -> None:
        captured["gradient"] = gradient

    def forward_hook(mod: nn.Module, args: Any, output: Any) -> torch.Tensor:
        captured["calls"] += 1
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            raise ValueError(
                f"grad_cam needs a layer whose output is a 4-D feature map (n, C, h, w); "
                f"layer {name!r} ({type(mod).__name__}) returns {_describe(output)}. "
                "Pass a convolutional layer or block as `layer`."
            )
        # The backbone below ran without autograd (see the no_grad below): the
        # graph starts here, at a private copy of the layer's output that the
        # tensor hook reports the gradient of.
        torch.set_grad_enabled(True)
        activation = output.detach().clone().float().requires_grad_(True)
        activation.register_hook(keep_gradient)
        captured["activation"] = activation
        # The network continues on another copy, so that in-place operations
        # downstream neither change A nor hit a leaf that requires grad.
        return activation.clone().to(output.dtype)

    handle = layer.register_forward_hook(forward_hook)
    try:
        with torch.inference_mode(False), torch.no_grad():
            output = module(batch)
            # Grad mode is on again from the hook on: the score is part of
            # the graph that starts at the activation.
            logits = first_output(output)
            if captured["calls"] != 1:
                raise ValueError(
                    f"grad_cam needs a layer that runs exactly once per forward pass; "
                    f"layer {name!r} ran {captured['calls']} times. Pass another layer."
                )
            if not logits.requires_grad:
                raise ValueError(
                    f"The output of the module does not depend on layer {name!r} "
                    "(no gradient flows from it). Pass a layer the prediction goes through."
                )
            logits = logits.float().reshape(len(batch), -1)
            if sigmoid:
                # One logit scores class 1; class 0 scores its negative.
                if index is None:
                    index = (logits[:, 0] > 0).long()
                score = logits[:, 0] * (2 * index - 1).to(logits.dtype)
            else:
                if index is None:
                    index = logits.detach().argmax(dim=1)
                score = logits.gather(1, index[:, None])[:, 0]
            # Each image's score depends on its own activation only (eval
            # mode), so one backward pass of the sum gives every image's
            # gradient. Only the activation is differentiated: no parameter's
            # .grad changes.
            activation = captured["activation"]
            torch.autograd.backward(score.sum(), inputs=[activation])
    finally:
        handle.remove()
    gradient = captured["gradient"]
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * activation.detach()).sum(dim=1))


def _to_image_geometry(
    cam: torch.Tensor, module: nn.Module, height: int, width: int
) -> torch.Tensor:
    """Bring maps that cover the network's input to the images' own pixels."""
    resized = (height, width)
    crop = None
    if isinstance(module, ImageModel):
        if module.resize is not None:
            # The resized size as the module's own resize computes it (one
            # int resizes the shorter side, keeping the aspect ratio).
            probe = torch.zeros(1, 1, height, width)
            resized = tuple(tvf.resize(probe, list(module.resize), antialias=False).shape[-2:])
        if module.crop is not None:
            crop = (module.crop[0], module.crop[-1])
    if crop is None or crop == resized:
        return _resize(cam, (height, width))
    crop_cam = _resize(cam, crop)
    # Where torchvision's center_crop takes the crop from (it pads the image
    # first when the crop is larger).
    top = _crop_offset(resized[0], crop[0])
    left = _crop_offset(resized[1], crop[1])
    canvas = cam.new_zeros((len(cam), *resized))
    r0, r1 = max(top, 0), min(top + crop[0], resized[0])
    c0, c1 = max(left, 0), min(left + crop[1], resized[1])
    canvas[:, r0:r1, c0:c1] = crop_cam[:, r0 - top : r1 - top, c0 - left : c1 - left]
    return _resize(canvas, (height, width))


def _crop_offset(size: int, crop: int) -> int:
    if size >= crop:
        return int(round((size - crop) / 2.0))
    return -((crop - size) // 2)


def _resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    # Antialiasing (for downsizing) keeps bilinear weights non-negative, so a
    # non-negative map stays non-negative.
    return nnf.interpolate(
        maps[:, None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True
    )[:, 0]


def _normalize(maps: torch.Tensor) -> torch.Tensor:
    maps = maps.clamp_min(0)
    peak = maps.amax(dim=(1, 2), keepdim=True)
    # An all-zero map (no positive evidence) stays zero instead of 0/0.
    return torch.where(peak > 0, maps / peak.clamp_min(torch.finfo(maps.dtype).tiny), maps)


def _target_indices(estimator: Any, target: Any, n_images: int) -> torch.Tensor | None:
    """Class indices of ``target`` (labels), one per image, or None."""
    if target is None:
        return None
    classes = np.asarray(estimator.classes_)
    lookup = {label: i for i, label in enumerate(classes.tolist())}
    if isinstance(target, torch.Tensor):
        target = target.detach().cpu().numpy()
    try:
        ndim = np.ndim(target)
    except ValueError:  # ragged nesting
        ndim = -1
    if ndim == 0:
        values = [target.item() if isinstance(target, np.ndarray) else target] * n_images
    elif ndim == 1 and len(target) == n_images:
        values = target.tolist() if hasattr(target, "tolist") else list(target)
    else:
        raise ValueError(
            f"grad_cam takes one target label for all images, or one per image; "
            f"target has shape {np.shape(target) if ndim >= 0 else '(ragged)'} for "
            f"{n_images} images."
        )
    indices = []
    for value in values:
        try:
            index = lookup.get(value)
        except TypeError:  # unhashable
            index = None
        if index is None:
            shown = classes.tolist()
            shown = shown if len(shown) <= 20 else shown[:20] + ["..."]
            raise ValueError(
                f"target {value!r} is not a class of {type(estimator).__name__}; "
                f"classes_ is {shown}. Give a label of classes_ (for the i-th class, "
                "estimator.classes_[i]), or None to explain the predicted class."
            )
        indices.append(index)
    return torch.tensor(indices, dtype=torch.long)


# ---------------------------------------------------------------- layers
def _resolve_layer(
    module: nn.Module, layer: str | nn.Module | None, sample: torch.Tensor, owner: str
) -> tuple[str, nn.Module]:
    """The name (in ``module``) and the submodule Grad-CAM weighs."""
    named = dict(module.named_modules())
    if isinstance(layer, nn.Module):
        for name, sub in named.items():
            if sub is layer:
                return name, sub
        raise ValueError(
            f"The layer {type(layer).__name__} given to grad_cam is not a submodule of "
            f"the module_ of {owner}. Pass a submodule of estimator.module_, or its "
            f"name, such as {_some_names(named)}."
        )
    if isinstance(layer, str):
        if layer in named and layer:
            return layer, named[layer]
        prefix = _network_prefix(module)
        if prefix and prefix + layer in named:
            return prefix + layer, named[prefix + layer]
        raise ValueError(
            f"The layer {layer!r} given to grad_cam is not a module of the module_ of "
            f"{owner}; layer names are those of estimator.module_.named_modules(), such "
            f"as {_some_names(named)}." + did_you_mean(layer, [n for n in named if n])
        )
    if layer is not None:
        raise ValueError(
            f"The layer given to grad_cam must be a name, an nn.Module or None. Got "
            f"{layer!r} instead."
        )
    prefix = _network_prefix(module)
    declared = getattr(module, "gradcam_layer", None)
    if declared is not None:
        name = prefix + declared
        if name not in named:
            raise ValueError(
                f"The network of {owner} declares gradcam_layer={declared!r}, which is "
                f"not one of its modules ({_some_names(named)}). Pass layer= to grad_cam."
            )
        return name, named[name]
    return _find_layer(module, sample, owner)


def _find_layer(module: nn.Module, sample: torch.Tensor, owner: str) -> tuple[str, nn.Module]:
    """The last direct child of the network that outputs a 4-D feature map
    and is neither a pooling layer nor (a container of) the head, found by
    running one image through the network."""
    prefix = _network_prefix(module)
    network = module.get_submodule(prefix[:-1]) if prefix else module
    head = getattr(module, "head", None) or getattr(network, "head", None)
    if isinstance(head, str):  # a name, as ImageModel and sktorch's networks declare
        head_child = head.split(".")[0]
    else:  # a network may hold its head as a submodule called `head` (timm's do)
        head_child = next((n for n, c in network.named_children() if c is head), None)
    calls: list[str] = []
    handles = []

    def recorder(name: str):
        def hook(mod: nn.Module, args: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                calls.append(name)

        return hook

    for name, child in network.named_children():
        if name != head_child and not isinstance(child, _POOLING):
            handles.append(child.register_forward_hook(recorder(name)))
    modes = {sub: sub.training for sub in module.modules()}
    module.eval()
    try:
        with torch.inference_mode():
            module(sample.to(_module_device(module, "cpu")))
    finally:
        for handle in handles:
            handle.remove()
        for sub, training in modes.items():
            sub.training = training
    if not calls:
        names = _some_names(dict(module.named_modules()))
        raise ValueError(
            f"grad_cam found no layer of the network of {owner} "
            f"({type(network).__name__}) whose output is a 4-D feature map. Pass the "
            f"layer to explain as `layer`, a name such as {names}."
        )
    name = prefix + calls[-1]
    return name, module.get_submodule(name)


def _network_prefix(module: nn.Module) -> str:
    """Where the network lives inside the module: 'model.' in an ImageModel."""
    return "model." if isinstance(module, ImageModel) else ""


def _some_names(named: dict[str, nn.Module], limit: int = 8) -> str:
    order = {name: i for i, name in enumerate(named) if name}
    # Shallow names first: the blocks a user is likely to mean.
    names = sorted(order, key=lambda n: (n.count("."), order[n]))[:limit]
    return ", ".join(repr(n) for n in names) + (", ..." if len(order) > limit else "")


def _describe(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    return f"a {type(output).__name__}"
