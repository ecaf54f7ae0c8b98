"""ImageSegmenter: semantic segmentation, one class label per pixel, with a
U-Net or a torchvision segmentation model."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from skorch.utils import params_for
from torch import nn

from sktorch._data._targets import MaskTarget
from sktorch._engine._inference import PREDICT_CHUNK_ROWS, chunks, run_inference
from sktorch._estimators._base import BaseTorchEstimator
from sktorch._estimators._classifier import LabelsMixin
from sktorch._estimators._image import ImageMixin
from sktorch._estimators._params import fill_doc
from sktorch.callbacks._tensorboard_summaries import mask_grid
from sktorch._utils._introspect import accepted_arguments, did_you_mean, uncompiled
from sktorch._utils._validation import check_is_fitted
from sktorch.exceptions import InvalidParameterError
from sktorch.metrics import mean_iou
from sktorch.models import SEGMENTATION_MODELS
from sktorch.models._image import (
    first_conv_channels,
    is_weights_path,
    load_local_weights,
    load_torchvision_weights,
    replace_head,
    torchvision_weights,
)
from sktorch.models._segmentation import (
    SegmentationModel,
    backbone_weights,
    build_torchvision_segmentation,
    drop_aux_classifier,
    replace_class_convolutions,
    score_channels,
    score_layer,
    segmentation_preprocessing,
    torchvision_segmentation_models,
)



class ImageSegmenter(ImageMixin, LabelsMixin, ClassifierMixin, BaseTorchEstimator):
    """Semantic segmentation: one class label per pixel, with a U-Net or a
    torchvision segmentation model, as a scikit-learn estimator.

    X holds images, in every form :class:`~sktorch.ImageClassifier` takes;
    y holds one mask per image, an array (n, H, W) of class labels at the
    images' height and width: integers of any values, strings or booleans
    (``classes_`` maps them to the network's channels and back). The network
    is ``module_.model``, inside a :class:`~sktorch.models.SegmentationModel`
    that brings the images to what it expects (floats in [0, 1], three
    channels for an RGB backbone, the weights' resize and normalization) and
    brings its scores back to the height and width of the input, so that
    ``predict`` gives masks (n, H, W) of the images as given and
    ``predict_proba`` probabilities (n, K, H, W).

    With a loss in binary mode, the default for masks of two classes (e.g.
    booleans) with ``criterion='dice_ce'``, 'dice', 'focal' or 'tversky',
    or with ``criterion='bce'``, the network has one output channel, scored
    with a sigmoid; otherwise one channel per class, scored with a softmax
    (``criterion='cross_entropy'`` on two classes gives two). Losses that
    take a ``mode`` get it from the task unless ``criterion__mode`` is
    given; those that take ``batch`` get ``batch=True``: the overlap of a
    class is summed over the whole batch, so an image without that class
    does not ask for a probability of exactly zero everywhere (the
    convention of segmentation_models_pytorch).

    Parameters
    ----------
    module : str, nn.Module class or instance, default='unet'
        'unet' (:class:`~sktorch.models.UNet`; ``module__depth``,
        ``module__width``, ``module__bilinear``...), a torchvision
        segmentation architecture by name ('lraspp_mobilenet_v3_large',
        'deeplabv3_mobilenet_v3_large', 'fcn_resnet50', ...; see
        :func:`sktorch.models.list_segmentation_models`), or the user's
        network: a batch (N, C, H, W) to scores (N, K, h, w), its class
        getting ``in_channels`` and ``out_features`` when its ``__init__``
        takes them. A torchvision model is built with ``num_classes`` fitted
        to ``classes_`` (with weights, the convolutions that score the
        weights' classes are replaced); its auxiliary classifier is dropped,
        since only its main output ``'out'`` is trained and predicted.
    weights : str, path or None, default=None
        Pretrained weights of a torchvision segmentation architecture: a
        name of its weights enum ('DEFAULT', 'COCO_WITH_VOC_LABELS_V1'),
        read from torch's hub cache (``$TORCH_HOME/hub/checkpoints``, where
        torchvision downloads them, and where to put the file on a machine
        without network), or the path of a local state_dict file (the
        scoring layers' weights are kept only when they fit the classes).
        With torchvision weights, the images are resized (shorter side to
        520 pixels) and normalized as the weights' own transforms do; the
        scores come back at the images' size.
    weights_backbone : str or None, default=None
        Pretrained weights of the backbone alone of a torchvision
        segmentation architecture, a name of the backbone's weights enum
        ('DEFAULT', 'IMAGENET1K_V1'), read from the hub cache like
        ``weights``; the images are then normalized as those weights expect,
        and not resized. None (unlike torchvision's own default, which
        downloads ImageNet weights) starts the backbone untrained. Not with
        ``weights``, which hold the backbone already.
    image_size : int, tuple of int or None, default=None
        Resize images to this (height, width) (one int: a square) before the
        network, overriding the weights' resize; the scores come back at the
        images' own size. None keeps the weights' size, or the images' own.
    channels : {'auto', 'first', 'last'}, default='auto'
        Where the channel axis of 4-D arrays and tensors X is: 'first'
        (n, C, H, W) or 'last' (n, H, W, C); 'auto' tells from the shape
        as :class:`~sktorch.ImageClassifier` does, and is an error when the
        shape leaves it ambiguous. Masks have no channel axis, (n, H, W), or
        a single one where the images have theirs, (n, 1, H, W) or
        (n, H, W, 1).
    backbone_lr : float or None, default=None
        Learning rate of the backbone (everything but the head: ``classifier``
        of a torchvision model or of a U-Net) as a multiple of ``lr``.
    memory_format : {'contiguous', 'channels_last'}, default='contiguous'
        Memory layout of the network's weights and of the image batches it
        runs on; 'channels_last' often runs convolutions faster.
    $common_parameters

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels found in the masks, sorted; channel k of
        ``predict_proba`` is ``classes_[k]``.
    image_shape_ : tuple of int
        (channels, height, width) of the images seen during fit.
    n_outputs_ : int
        Output channels of the network: the number of classes, or 1 with a
        binary (sigmoid) loss.
    module_ : SegmentationModel
        The trained network (``module_.model``) with its preprocessing.
    history_ : skorch.History
        Per-epoch record.
    net_ : skorch.NeuralNet
        The skorch net that trained ``module_``.

    See Also
    --------
    ImageClassifier : One label per image.
    sktorch.metrics.mean_iou : The score.
    sktorch.models.UNet : The default network.

    Notes
    -----
    ``augment`` moves each mask with its image: training batches go through
    the transforms as a ``tv_tensors.Image`` and a ``tv_tensors.Mask``, so a
    torchvision v2 flip, rotation or crop moves both alike (the mask by
    nearest neighbour), while noise (:mod:`sktorch.transforms`) and colour
    transforms change the image only. Pixels a rotation brings in get fill
    0 in the image and class index 0 (``classes_[0]``) in the mask; with
    ``v2.RandomRotation(30, fill={tv_tensors.Image: 0, tv_tensors.Mask:
    -100})`` they are left out of the loss instead (-100 is the losses'
    ``ignore_index``). A callable that is not a v2 transform sees the image
    only and must not move pixels.

    ``tta='hflip'`` averages the probabilities of each image and of its
    mirror image, mirrored back. Another test-time transform that moves
    pixels must declare how to move the scores back: an ``inverse(output)``
    method or attribute, called on the module's scores (N, K, H, W) for the
    transformed batch; without one its scores are averaged as they are.

    ``score`` is the mean IoU over ``classes_``
    (:func:`sktorch.metrics.mean_iou`); a class absent from both the true
    and the predicted masks is left out of the mean. Cross-validation folds
    hold whole images. :func:`sktorch.explain.grad_cam` does not apply (it
    explains one score per image).

    Examples
    --------
    >>> import numpy as np
    >>> from sktorch import ImageSegmenter
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((16, 12, 12)).astype(np.float32)  # images in [0, 1]
    >>> y = np.where(X > 0.5, "bright", "dark")           # a mask per image
    >>> seg = ImageSegmenter(module__depth=2, module__width=4, max_epochs=2,
    ...                      random_state=0).fit(X, y)
    >>> seg.classes_
    array(['bright', 'dark'], dtype='<U6')
    >>> seg.predict(X[:3]).shape, seg.predict_proba(X[:3]).shape
    ((3, 12, 12), (3, 2, 12, 12))
    >>> 0 <= seg.score(X, y) <= 1
    True
    """

    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints, **ImageMixin._image_constraints,
        "weights_backbone": [str, None],
    }
    _fitted_attributes = (*BaseTorchEstimator._fitted_attributes, *LabelsMixin._label_attributes,
                          "image_shape_")
    _target_adapter = MaskTarget

    def __init__(
        self,
        module: Any = "unet",
        *,
        weights: str | os.PathLike | None = None,
        weights_backbone: str | None = None,
        image_size: int | tuple[int, int] | None = None,
        channels: str = "auto",
        backbone_lr: float | None = None,
        memory_format: str = "contiguous",
        criterion: Any = "dice_ce",
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
        self.weights = weights
        self.weights_backbone = weights_backbone
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # y is one mask (n, H, W) per image: many outputs per sample.
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags

    def partial_fit(self, X: Any, y: Any, classes: Any = None,
                    sample_weight: Any = None) -> ImageSegmenter:
        """Train for one epoch on the images X and masks y, from the current weights.

        Parameters
        ----------
        X : images
            As for ``fit``.
        y : array-like of shape (n_samples, H, W)
            Masks of class labels; each label must be one of ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every label the masks will ever hold. Required on the first call
            (the network's number of score maps depends on it), ignored after.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample, as for ``fit``.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.

        Notes
        -----
        $continuing_rule
        """
        return self._partial_fit(X, y, classes, sample_weight)

    # ------------------------------------------------------- prediction
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of every pixel of the images of X.

        Parameters
        ----------
        X : images
            As for ``fit``: an array or tensor (n, H, W), (n, C, H, W) or
            (n, H, W, C) (see ``channels``), PIL images or paths.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes, H, W), float32
            Channel k is the probability of ``classes_[k]``; they sum to 1
            over the classes at every pixel.
        """
        return self._segment(X).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted masks, labels as they were given in ``y`` at fit.

        Parameters
        ----------
        X : images
            As for ``fit``.

        Returns
        -------
        masks : ndarray of shape (n_samples, H, W)
            The most probable class of every pixel, from ``classes_``.
        """
        index = self._segment(X, self._decode).numpy()
        return self.classes_[index]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean intersection over union (Jaccard) of the predicted masks,
        over ``classes_``.

        Parameters
        ----------
        X : images
            As for ``fit``.
        y : array-like of shape (n_samples, H, W)
            True masks, with labels from ``classes_``.
        sample_weight : None
            Not supported; must be None.

        Returns
        -------
        score : float
            :func:`sktorch.metrics.mean_iou` of ``y`` and ``predict(X)``
            with ``labels=classes_``: in [0, 1], 1 for perfect masks.
        """
        owner = type(self).__name__
        if sample_weight is not None:
            raise ValueError(
                f"{owner}.score does not take sample_weight: the mean IoU weighs "
                "every pixel alike."
            )
        y_pred = self.predict(X)
        adapt_targets = MaskTarget(self)
        masks = adapt_targets.check_masks(y, y_pred.shape)
        adapt_targets.check_seen(masks)
        return float(mean_iou(masks, y_pred, labels=self.classes_))

    def _decode(self, proba: torch.Tensor) -> torch.Tensor:
        """Class indices (N, H, W) of probabilities (N, K, H, W): the most
        probable class of every pixel."""
        return proba.argmax(dim=1)

    def _segment(self, X: Any, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 ) -> torch.Tensor:
        """The probabilities (N, K, H, W) of the images of X (or their
        ``reduce``), from the inference loop: float32, chunks of about a
        million pixels, each linked, averaged over the views and reduced on
        the device, then gathered on the CPU."""
        check_is_fitted(self)
        inputs = self._predict_inputs(X)
        # Chunks of at least a training batch, or about a million pixels.
        pixels = max(1, inputs.shape[-2] * inputs.shape[-1])
        chunk = max(1, min(PREDICT_CHUNK_ROWS, max(int(self.batch_size), 2**20 // pixels)))
        return run_inference(self.net_, chunks(inputs, chunk), len(inputs),
                             self._inference_module(), owner=type(self).__name__,
                             chunk_rows=chunk, dtype=torch.float32, on_device=True,
                             reduce=reduce)

    def _output_reason(self, n_outputs):
        if self._loss_plan.sigmoid:
            return "one score map, for a binary loss"
        return f"one score map per class, {n_outputs} classes"

    # ------------------------------------------------------------ module
    def _module_spec(self, options, inputs, n_outputs, pretrained=True):
        owner = type(self).__name__
        spec = self.module
        torchvision_arch = (
            isinstance(spec, str) and spec not in SEGMENTATION_MODELS
            and spec in torchvision_segmentation_models()
        )
        if self.weights_backbone is not None and not torchvision_arch:
            raise InvalidParameterError(
                f"The 'weights_backbone' parameter of {owner} is {self.weights_backbone!r}, "
                f"but module={spec!r} is not a torchvision segmentation architecture "
                f"({torchvision_segmentation_models()})."
            )
        if isinstance(spec, str) and spec not in SEGMENTATION_MODELS and not torchvision_arch:
            valid = SEGMENTATION_MODELS.names() + torchvision_segmentation_models()
            raise InvalidParameterError(
                f"The 'module' parameter of {owner} must be one of {valid}, an nn.Module "
                f"class or an nn.Module instance. Got {spec!r} instead."
                + did_you_mean(spec, valid)
            )
        if torchvision_arch:
            network, preprocessing = self._torchvision_segmentation(
                spec, params_for("module", options), n_outputs, pretrained
            )
            head = "classifier"
        else:
            if self.weights is not None and not is_weights_path(self.weights):
                raise InvalidParameterError(
                    f"The 'weights' parameter of {owner} is {self.weights!r}, a torchvision "
                    f"weights name, but module={spec!r} is not a torchvision architecture. "
                    "Pass the path of a state_dict file instead."
                )
            component, component_options = self._component(SEGMENTATION_MODELS, "module",
                                                            options)
            if isinstance(component, nn.Module):
                network = component
            else:
                sizes = accepted_arguments(
                    component, {"in_channels": inputs.shape[1], "out_features": n_outputs}
                )
                network = component(**{**sizes, **component_options})
            preprocessing = {}
            head = score_layer(network)
            if head is not None and score_channels(network, head) not in (None, n_outputs):
                replace_head(network, head, n_outputs)
        channels = first_conv_channels(network)
        self._check_channels(channels, inputs.shape[1])
        if self.weights is not None and is_weights_path(self.weights) and pretrained:
            # A head name that matches no key when there is no head.
            normalization = load_local_weights(network, self.weights, head or "\0", owner)
            preprocessing = {**preprocessing, **normalization}
        if self.image_size is not None:
            preprocessing = {**preprocessing, "resize": self._image_size()}
        module = SegmentationModel(
            network,
            channels=channels,
            head=head,
            channels_last=getattr(self, "memory_format", "contiguous") == "channels_last",
            **preprocessing,
        )
        return module, {}

    def _torchvision_segmentation(self, arch, module_options, n_outputs, pretrained):
        owner = type(self).__name__
        if self.weights is None or is_weights_path(self.weights):
            backbone = None
            if self.weights_backbone is not None:
                backbone = backbone_weights(arch, str(self.weights_backbone), owner)
            network = build_torchvision_segmentation(
                arch, n_outputs, weights_backbone=backbone if pretrained else None,
                owner=owner, **module_options
            )
            preprocessing = (
                segmentation_preprocessing(backbone, resize=False) if backbone is not None
                else {}
            )
            return network, preprocessing
        weights = torchvision_weights(arch, str(self.weights), owner)
        if self.weights_backbone is not None:
            raise InvalidParameterError(
                f"The 'weights_backbone' parameter of {owner} cannot be used with the "
                f"pretrained weights {weights}, which hold the backbone's weights already. "
                "Set one of them to None."
            )
        if module_options:
            raise InvalidParameterError(
                f"module__ options {sorted(module_options)} of {owner} cannot be used with "
                f"pretrained weights {weights}: the architecture must match the weights."
            )
        n_classes = len(weights.meta["categories"])
        if pretrained:
            network = load_torchvision_weights(arch, weights, owner)
        else:  # the same architecture, every weight to be loaded by the caller
            network = build_torchvision_segmentation(arch, n_classes, owner=owner)
        drop_aux_classifier(network)
        if n_classes != n_outputs:
            replace_class_convolutions(network.classifier, n_classes, n_outputs)
        return network, segmentation_preprocessing(weights, resize=True)

    def _check_module_output(self, net, sample, n_outputs):
        module = net.module_
        owner = type(self).__name__
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                output = module(sample.to(net.device))
        except Exception as exc:
            raise ValueError(
                f"The module of {owner} failed on a batch of shape "
                f"{tuple(sample.shape)} taken from X: {exc}"
            ) from exc
        finally:
            module.train(was_training)
        expected = (len(sample), n_outputs, *sample.shape[-2:])
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
        if shape != expected:
            raise ValueError(
                f"The module of {owner} returned an output of shape {shape} for an input "
                f"of shape {tuple(sample.shape)}; {owner} needs (N, K, H, W) = {expected} "
                f"here ({self._output_reason(n_outputs)}). Give the network a last "
                "convolution with that many output channels, or use a module class whose "
                "__init__ takes out_features."
            )
        return output

    def _backbone_names(self, module):
        if module.head is None:
            raise InvalidParameterError(
                f"{type(self).__name__} cannot tell the head of {type(module.model).__name__} "
                "from its backbone (it has no convolution and declares no `head`), which "
                "freeze='backbone', an int freeze and backbone_lr need. Give the class a "
                "`head` attribute naming its last layer, or freeze by name patterns."
            )
        return super()._backbone_names(module)

    def _resolve_init(self, options, module):
        if self.init is not None and self.weights_backbone is not None:
            raise InvalidParameterError(
                f"The 'init' parameter of {type(self).__name__} would overwrite the "
                f"pretrained backbone weights {self.weights_backbone!r}. Use init=None "
                "with weights_backbone."
            )
        return super()._resolve_init(options, module)

    # --------------------------------------------------------- TensorBoard
    def _tensorboard_images(self, writer, net, epoch, images, targets):
        """Write each image of the batch beside its true and its predicted
        mask (``images/masks``); called by :class:`~sktorch.callbacks.TensorBoard`."""
        if targets is None or len(images) == 0:
            return
        module = uncompiled(net.module_)
        device = torch.device(net.device)
        # As predict shows them: the inference loop, the module put back in
        # training mode afterwards, and the fit's random stream forked, so
        # that random test-time views do not change the training.
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            predicted = run_inference(
                net, [images], len(images), self._inference_module(module),
                owner=type(self).__name__, chunk_rows=max(len(images), 1),
                dtype=torch.float32, on_device=True, reduce=self._decode, restore_mode=True,
            )
        true = (targets[:, 0] if targets.ndim == 4 else targets).long()
        grid = mask_grid(images, true, predicted, len(self.classes_))
        writer.add_image("images/masks", grid, global_step=epoch)


fill_doc(
    ImageSegmenter,
    criterion="'dice_ce'",
    freeze_doc="""'backbone', int, tuple of str or None, default=None
        'backbone' trains the head only (``classifier``: a U-Net's last
        convolution, a torchvision model's whole segmentation head): every
        other parameter gets ``requires_grad=False`` and is unchanged by fit.
        An int k trains the head alone for the first k epochs, then
        everything. A tuple holds ``fnmatch`` patterns of the ``module_``
        parameter names to freeze (``'model.backbone.*'``).""",
)
