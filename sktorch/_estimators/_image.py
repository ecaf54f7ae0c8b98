"""ImageClassifier: image classification, from a small CNN to finetuning a
pretrained torchvision model."""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import Any

import torch
from skorch.callbacks import Callback
from skorch.utils import params_for
from torch import nn

from sktorch._estimators._base import BaseTorchEstimator
from sktorch._estimators._params import fill_doc
from sktorch._estimators._classifier import TorchClassifier
from sktorch._data._images import CHANNELS
from sktorch._data._inputs import ImageInput
from sktorch._utils._introspect import accepted_arguments, did_you_mean
from sktorch._utils._validation import (
    Interval,
    StrOptions,
)
from sktorch.exceptions import InvalidParameterError
from sktorch.models import IMAGE_MODELS
from sktorch.models._image import (
    ImageModel,
    find_head,
    first_conv_channels,
    is_weights_path,
    load_local_weights,
    load_torchvision_weights,
    replace_head,
    torchvision_models,
    torchvision_weights,
    weights_preprocessing,
)


class FineTune(Callback):
    """Train only the head for the first ``epochs`` epochs, then everything
    (fastai's ``fine_tune``).

    The backbone's parameters are in the optimizer from the start (with
    their own learning rate when ``backbone_lr`` is set), so the learning-rate
    schedule covers them; while frozen they have ``requires_grad=False`` and
    no gradient, which optimizers skip.
    """

    def __init__(self, backbone: tuple[str, ...], epochs: int) -> None:
        self.backbone = backbone
        self.epochs = epochs

    def on_epoch_begin(self, net, **kwargs):
        trainable = len(net.history) > self.epochs
        names = set(self.backbone)
        for name, param in net.module_.named_parameters():
            if name in names and param.requires_grad != trainable:
                param.requires_grad_(trainable)


class ImageMixin:
    """What image estimators share (:class:`ImageClassifier`,
    :class:`~sktorch.ImageSegmenter`): images as X (the image input adapter,
    ``image_shape_``), the image hyperparameters (``weights``, ``image_size``,
    ``channels``, ``backbone_lr``, ``memory_format``, ``freeze``) and
    finetuning (freezing the backbone, its learning rate, the head). Mixed
    in before :class:`BaseTorchEstimator`; the estimator builds its own
    network (``_module_spec``)."""

    _input_adapter = ImageInput
    _image_constraints: dict = {
        "weights": [str, os.PathLike, None],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "channels": [StrOptions(set(CHANNELS))],
        "backbone_lr": [Interval(Real, 0, None, closed="neither"), None],
        "memory_format": [StrOptions({"contiguous", "channels_last"})],
        "freeze": [StrOptions({"backbone"}), Interval(Integral, 0, None, closed="left"),
                   tuple, list, None],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def _image_size(self) -> tuple[int, int]:
        size = self.image_size
        # bool is an Integral, which the declared constraint lets through.
        if isinstance(size, Integral) and not isinstance(size, bool):
            return (int(size), int(size))
        size = tuple(size) if isinstance(size, (tuple, list)) else (size,)
        if len(size) != 2 or not all(
            isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in size
        ):
            raise InvalidParameterError(
                f"The 'image_size' parameter of {type(self).__name__} must be an int or a "
                f"(height, width) pair of positive ints. Got {self.image_size!r} instead."
            )
        return (int(size[0]), int(size[1]))

    @staticmethod
    def _head_width(network: nn.Module, head: str) -> int:
        layer = network.get_submodule(head)
        if isinstance(layer, nn.Sequential):
            layer = layer[-1]
        return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels

    def _check_channels(self, expected: int | None, given: int) -> None:
        if expected is None or expected == given or (expected == 3 and given == 1):
            return
        raise ValueError(
            f"The network of {type(self).__name__} takes {expected}-channel images, but X "
            f"holds {given}-channel images."
        )

    # ---------------------------------------------------- freezing and lrs
    def _backbone_names(self, module: ImageModel) -> tuple[str, ...]:
        head = f"model.{module.head}."
        return tuple(
            name for name, _ in module.named_parameters() if not name.startswith(head)
        )

    def _freeze_patterns(self, module):
        if isinstance(self.freeze, bool):
            # bool is an Integral, which the declared constraint lets through.
            raise InvalidParameterError(
                f"The 'freeze' parameter of {type(self).__name__} must be 'backbone', an "
                "int (epochs of head-only training), a tuple of parameter-name patterns "
                f"or None. Got {self.freeze!r} instead."
            )
        if self.freeze == "backbone":
            return self._backbone_names(module)
        if isinstance(self.freeze, Integral):
            return ()
        return super()._freeze_patterns(module)

    def _resolve_init(self, options, module):
        if self.init is not None and self.weights is not None:
            raise InvalidParameterError(
                f"The 'init' parameter of {type(self).__name__} would overwrite the "
                f"pretrained weights {self.weights!r}. Use init=None with weights."
            )
        return super()._resolve_init(options, module)

    def _task_callbacks(self, module):
        if isinstance(self.freeze, Integral) and not isinstance(self.freeze, bool):
            return [("fine_tune", FineTune(self._backbone_names(module), int(self.freeze)))]
        return []

    def _optimizer_options(self, options, module):
        optimizer_options = super()._optimizer_options(options, module)
        if self.backbone_lr is None:
            return optimizer_options
        # The head keeps ``lr`` (group 0, the one ``history_`` logs as 'lr');
        # everything else, skorch's default group, gets lr * backbone_lr.
        # An ``optimizer__lr`` overrides ``lr`` in skorch; it is the base here too.
        lr = optimizer_options.get("lr", self.lr)
        groups = list(optimizer_options.get("param_groups", []))
        groups.append((f"model.{module.head}.*", {"lr": lr}))
        return {**optimizer_options, "param_groups": groups, "lr": lr * self.backbone_lr}


class ImageClassifier(ImageMixin, TorchClassifier):
    """Image classification with a small CNN or a torchvision model, as a
    scikit-learn classifier.

    X holds images: an array or tensor (n, H, W) (gray), (n, C, H, W) or
    (n, H, W, C) (see ``channels``), a list of PIL images or a list of
    image file paths. uint8 values are 0-255; other unsigned integers are
    scaled by their dtype's maximum (uint16 by 65535, uint32 by
    2**32 - 1); signed integers are read as 0-255; floats must be in
    [0, 1]. PIL images and files: 'L' and 'RGB' are kept, '1' and 'LA'
    read as 'L', palette ('P') and other colour modes (RGBA, CMYK, ...) as
    'RGB'; 16-bit 'I;16' and 32-bit integer 'I' images (Pillow's modes for
    16-bit files) are divided by 65535 ('I' values outside 0-65535 are an
    error); float 'F' images are read as float arrays are. The network is
    ``module_.model``, inside an :class:`~sktorch.models.ImageModel` that
    scales the images to [0, 1], repeats a gray channel to three when the
    network takes three, and resizes and normalizes them as the pretrained
    weights expect. That preprocessing runs on the training device, inside
    the module, so prediction, ONNX export and Grad-CAM share it.

    Parameters
    ----------
    module : str, nn.Module class or instance, default='cnn'
        'cnn' (:class:`~sktorch.models.SmallCNN`, for small images), a
        torchvision classification architecture by name ('resnet18',
        'mobilenet_v3_small', 'efficientnet_b0', ...; see
        :func:`sktorch.models.list_image_models`), or the user's network
        (a class gets ``in_channels`` and ``out_features`` when its
        ``__init__`` takes them). Options go as ``module__<name>``.
    weights : str, path or None, default=None
        Pretrained weights for a torchvision architecture: a name of its
        weights enum ('DEFAULT', 'IMAGENET1K_V1'), read from torch's hub
        cache (``$TORCH_HOME/hub/checkpoints``; this is where torchvision
        downloads them, and where to put the file on a machine without
        network), or the path of a local state_dict file (``.pt``, ``.pth``
        or ``.safetensors``; the head's weights are kept only when they fit
        the classes). The classification head is replaced to fit
        ``classes_``. With torchvision weights, the images are resized,
        center-cropped and normalized as the weights' own transforms do.
    image_size : int, tuple of int or None, default=None
        Resize images to this (height, width) (one int: a square) before the
        network, overriding the weights' resize and crop. None keeps the
        weights' sizes, or the images' own without torchvision weights.
    channels : {'auto', 'first', 'last'}, default='auto'
        Where the channel axis of 4-D arrays and tensors X is: 'first'
        (n, C, H, W) or 'last' (n, H, W, C). 'auto' tells from the shape,
        never from the dtype: channels-first when axis 1 has 1, 3 or 4
        entries (gray, RGB, RGBA) and the last axis does not,
        channels-last in the opposite case, and an error asking for
        'first' or 'last' otherwise (both could be channels, as in
        (n, 3, 5, 3), or neither, as in 5-channel images). 3-D X
        (n, H, W) is always gray; PIL images and files are decoded
        channels-last whatever the value.
    backbone_lr : float or None, default=None
        Learning rate of the backbone (everything but the head) as a
        multiple of ``lr`` (discriminative learning rates, e.g. 0.1).
    memory_format : {'contiguous', 'channels_last'}, default='contiguous'
        Memory layout of the network's weights and of the image batches it
        runs on. 'channels_last' (NHWC) speeds convolutions up on GPUs with
        tensor cores (with '16-mixed' or 'bf16-mixed') and often on CPUs;
        results are the same up to floating-point rounding.
    $common_parameters
    $class_weight

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    image_shape_ : tuple of int
        (channels, height, width) of the images seen during fit.
    n_outputs_ : int
        Width of the module's output.
    module_ : ImageModel
        The trained network (``module_.model``) with its preprocessing.
    history_ : skorch.History
        Per-epoch record.
    net_ : skorch.NeuralNet
        The skorch net that trained ``module_``.

    See Also
    --------
    TorchClassifier : The same for tabular data.
    sktorch.explain.grad_cam : Where the network looks.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sktorch import ImageClassifier
    >>> digits = load_digits()
    >>> X, y = digits.images[:200] / 16, digits.target[:200]
    >>> clf = ImageClassifier("cnn", module__width=8, max_epochs=2, random_state=0)
    >>> clf.fit(X, y).predict(X[:4]).shape
    (4,)
    >>> clf.image_shape_
    (1, 8, 8)
    """

    _fitted_attributes = (*TorchClassifier._fitted_attributes, "image_shape_")
    _parameter_constraints: dict = {
        **TorchClassifier._parameter_constraints, **ImageMixin._image_constraints,
    }

    def __init__(
        self,
        module: Any = "cnn",
        *,
        weights: str | os.PathLike | None = None,
        image_size: int | tuple[int, int] | None = None,
        channels: str = "auto",
        backbone_lr: float | None = None,
        memory_format: str = "contiguous",
        criterion: Any = "cross_entropy",
        class_weight: dict | str | None = None,
        optimizer: Any = "adam",
        lr: float = 1e-3,
        lr_scheduler: Any = None,
        max_epochs: int = 20,
        batch_size: int = 32,
        precision: str = "32",
        max_grad_norm: float | None = None,
        accumulate_grad_batches: int = 1,
        on_nonfinite_loss: str = "raise",
        init: Any = None,
        freeze: Any = None,
        augment: Any = None,
        tta: Any = None,
        device: str | torch.device = "auto",
        strategy: str | None = None,
        devices: int | None = None,
        compile: bool = False,
        random_state: Any = None,
        validation_fraction: float | None = None,
        early_stopping: int | bool | None = None,
        early_stopping_monitor: str = "valid_loss",
        metrics: Any = None,
        tensorboard: str | os.PathLike | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume_from: str | os.PathLike | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        callbacks: list | None = None,
        **kwargs: Any,
    ) -> None:
        self.class_weight = class_weight
        self.weights = weights
        self.image_size = image_size
        self.channels = channels
        self.backbone_lr = backbone_lr
        self.memory_format = memory_format
        BaseTorchEstimator.__init__(
            self,
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            lr_scheduler=lr_scheduler,
            max_epochs=max_epochs,
            batch_size=batch_size,
            precision=precision,
            max_grad_norm=max_grad_norm,
            accumulate_grad_batches=accumulate_grad_batches,
            on_nonfinite_loss=on_nonfinite_loss,
            init=init,
            freeze=freeze,
            augment=augment,
            tta=tta,
            device=device,
            strategy=strategy,
            devices=devices,
            compile=compile,
            random_state=random_state,
            validation_fraction=validation_fraction,
            early_stopping=early_stopping,
            early_stopping_monitor=early_stopping_monitor,
            metrics=metrics,
            tensorboard=tensorboard,
            checkpoint_dir=checkpoint_dir,
            resume_from=resume_from,
            warm_start=warm_start,
            verbose=verbose,
            callbacks=callbacks,
            **kwargs,
        )

    # ------------------------------------------------------------ module
    def _module_spec(self, options, inputs, n_outputs, pretrained):
        owner = type(self).__name__
        module_options = params_for("module", options)
        spec = self.module
        if isinstance(spec, str) and spec not in IMAGE_MODELS:
            if spec not in torchvision_models():
                valid = IMAGE_MODELS.names() + torchvision_models()
                raise InvalidParameterError(
                    f"The 'module' parameter of {owner} must be one of {valid}, an "
                    f"nn.Module class or an nn.Module instance. Got {spec!r} instead."
                    + did_you_mean(spec, valid)
                )
            network, preprocessing = self._torchvision_network(spec, module_options, pretrained)
        else:
            if self.weights is not None and not is_weights_path(self.weights):
                raise InvalidParameterError(
                    f"The 'weights' parameter of {owner} is {self.weights!r}, a torchvision "
                    f"weights name, but module={spec!r} is not a torchvision architecture. "
                    "Pass the path of a state_dict file instead."
                )
            component, component_options = self._component(IMAGE_MODELS, "module", options)
            if isinstance(component, nn.Module):
                network = component
            else:
                sizes = accepted_arguments(
                    component, {"in_channels": inputs.shape[1], "out_features": n_outputs}
                )
                network = component(**{**sizes, **component_options})
            preprocessing = {}
        channels = first_conv_channels(network)
        self._check_channels(channels, inputs.shape[1])
        head = find_head(network)
        if self._head_width(network, head) != n_outputs:
            replace_head(network, head, n_outputs)
        if self.weights is not None and is_weights_path(self.weights) and pretrained:
            normalization = load_local_weights(network, self.weights, head, owner)
            preprocessing = {**preprocessing, **normalization}
        if self.image_size is not None:
            size = self._image_size()
            preprocessing = {**preprocessing, "resize": size, "crop": None}
        module = ImageModel(
            network,
            channels=channels,
            head=head,
            gradcam_layer=getattr(network, "gradcam_layer", None),
            channels_last=self.memory_format == "channels_last",
            **preprocessing,
        )
        return module, {}

    def _torchvision_network(self, arch: str, module_options: dict[str, Any], pretrained: bool):
        owner = type(self).__name__
        import torchvision

        if self.weights is None or is_weights_path(self.weights):
            return torchvision.models.get_model(arch, **module_options), {}
        weights = torchvision_weights(arch, str(self.weights), owner)
        if module_options:
            raise InvalidParameterError(
                f"module__ options {sorted(module_options)} of {owner} cannot be used with "
                f"pretrained weights {weights}: the architecture must match the weights."
            )
        if not pretrained:
            return torchvision.models.get_model(arch), weights_preprocessing(weights)
        return load_torchvision_weights(arch, weights, owner), weights_preprocessing(weights)



fill_doc(
    ImageClassifier,
    criterion="'cross_entropy'",
    freeze_doc="""'backbone', int, tuple of str or None, default=None
        'backbone' trains the head only: every other parameter gets
        ``requires_grad=False``, stays out of the optimizer and is unchanged
        by fit (batch-norm statistics still adapt). An int k trains the head
        alone for the first k epochs, then everything (fastai's
        ``fine_tune``). A tuple holds ``fnmatch`` patterns of the
        ``module_`` parameter names to freeze (``'model.layer1.*'``).""",
)
