"""Export a fitted estimator's network, with its output function, to ONNX.

Uses torch's ``torch.export``-based exporter (``torch.onnx.export(...,
dynamo=True)``), which needs ``onnxscript``: the TorchScript-based exporter is
deprecated since torch 2.9 and slated for removal, and it fixes the batch size
of a graph whose ``forward`` reads ``len(x)``. What is exported is the
estimator's own inference module, the one its ``predict`` runs. Every export
is checked with onnxruntime, on two batch sizes other than the traced one,
against the estimator's ``predict_proba`` (``predict`` for a regressor)
before the file is written, so a graph that silently kept a fixed batch size,
or computes something else than the estimator, is an error rather than a
broken file.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sktorch._engine._inference import float32_inference
from sktorch._utils._atomic import atomic_write
from sktorch._version import __version__
from sktorch._utils._introspect import uncompiled
from sktorch._utils._validation import check_is_fitted
from sktorch.exceptions import OnnxExportError

__all__ = ["DEFAULT_OPSET", "OnnxExportError", "export_onnx"]

# The lowest opset torch's exporter implements natively (lower ones go through
# a version converter that may fail); onnxruntime runs it since 1.14.
DEFAULT_OPSET = 18

INPUT_NAME = "input"

# Largest difference (absolute, and relative to the value) allowed between
# the exported graph and the estimator's own predictions.
CHECK_TOLERANCE = 1e-5


def export_onnx(estimator: Any, path: str | os.PathLike, *, opset: int | None = None) -> None:
    """Export a fitted estimator's network to one ONNX file.

    The graph is the module followed by the estimator's output function, so
    that it computes what ``predict_proba`` (classifiers) or ``predict``
    (regressors) returns: the softmax of the logits, ``[1 - p, p]`` with
    ``p`` the sigmoid of the one logit of a binary (``'bce'``) classifier,
    or the outputs as they are for a regressor. Test-time augmentation
    (``tta``) is part of the graph too, each view's output mapped back as
    ``predict`` does (an ``ImageSegmenter``'s mirrored scores mirrored back):
    the graph is the estimator's own inference module.

    The input is named ``'input'``: float32 of shape ``(batch, *shape)``
    where ``shape`` is one sample as the module takes it (``(n_features,)``
    for tabular data), with a dynamic batch axis. The output is
    ``'probabilities'`` of the shape ``predict_proba`` returns (``(batch,
    n_classes)``, or ``(batch, n_classes, H, W)`` for an ``ImageSegmenter``)
    in the order of ``classes_``, or ``'predictions'`` of the shape
    ``predict`` returns.
    The model's metadata holds the estimator's class, its ``classes_`` and
    ``feature_names_in_`` (as JSON) and the sktorch version.

    Parameters
    ----------
    estimator : fitted sktorch estimator
        A fitted ``TorchClassifier``, ``TorchRegressor``, ``ImageClassifier``
        or ``ImageSegmenter``.
    path : str or path-like
        The ``.onnx`` file to write; written to a temporary name in the same
        directory, checked, then renamed.
    opset : int or None, default=None
        ONNX opset version. None uses 18, the lowest that torch's exporter
        implements natively, run by onnxruntime 1.14 and later.

    Raises
    ------
    ImportError
        If onnx, onnxscript or onnxruntime is missing: ``pip install sktorch[onnx]``.
    OnnxExportError
        If torch cannot export the module, or the exported graph gives
        values farther than 1e-5 from the estimator's ``predict_proba``
        (``predict`` for a regressor) on batches of 1 and 3 samples (for
        instance a ``forward`` that fixes the batch size, or a test-time
        view that cannot be traced); the message names the largest
        difference.

    See Also
    --------
    sktorch.save : Save the whole estimator, to load it back in Python.

    Notes
    -----
    Mixed precision is not exported: the graph computes in float32, as
    ``precision='32'`` does. Input conversions done before the module (an
    image estimator's scaling of uint8 pixels, for instance) are not part of
    the graph: feed what the module takes.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from sklearn.datasets import load_iris
    >>> import sktorch
    >>> X, y = load_iris(return_X_y=True)
    >>> X = X.astype(np.float32)
    >>> clf = sktorch.TorchClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "iris.onnx")
    ...     sktorch.export_onnx(clf, path)
    ...     session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ...     proba = session.run(["probabilities"], {"input": X[:5]})[0]
    >>> np.allclose(proba, clf.predict_proba(X[:5]), atol=1e-5)
    True
    """
    onnx, ort = _import_onnx()
    check_is_fitted(estimator)
    owner = type(estimator).__name__
    path = Path(os.fspath(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot export to {str(path)!r}: the directory {str(path.parent)!r} does not exist."
        )
    opset = DEFAULT_OPSET if opset is None else opset
    graph = _inference_graph(estimator)
    output_name = "probabilities" if hasattr(estimator, "predict_proba") else "predictions"
    sample = torch.zeros((2, *estimator._input_shape))
    try:
        program = torch.onnx.export(
            graph,
            (sample,),
            None,
            input_names=[INPUT_NAME],
            output_names=[output_name],
            dynamic_shapes=({0: torch.export.Dim.DYNAMIC},),
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
    except Exception as exc:
        raise OnnxExportError(
            f"torch.onnx could not export the module of {owner}: {type(exc).__name__}: {exc}"
        ) from exc
    model = program.model_proto
    _name_batch_axis(model, owner)
    onnx.helper.set_model_props(model, _metadata(estimator, output_name))
    data = model.SerializeToString()
    _check_graph(ort, data, estimator, output_name)
    atomic_write(path, lambda stream: stream.write(data))


def _import_onnx():
    try:
        import onnx
        import onnxruntime as ort
        import onnxscript  # noqa: F401  (torch's exporter imports it)
    except ImportError as exc:
        raise ImportError(
            f"sktorch.export_onnx needs onnx, onnxscript and onnxruntime ({exc}). "
            "Install them with: pip install sktorch[onnx]"
        ) from exc
    return onnx, ort


def _inference_graph(estimator: Any) -> nn.Module:
    """The estimator's inference module (see
    :class:`~sktorch._engine._inference.InferenceModule`: views, module,
    inverse views, output function, average) around a CPU copy of its
    module in eval mode; raveled as ``predict`` ravels the outputs of a
    regressor fitted on a 1-d y."""
    module = estimator.net_.module_
    module = uncompiled(module)
    graph = estimator._inference_module(copy.deepcopy(module).to("cpu"))
    if getattr(estimator, "_y_was_1d", False):
        graph = nn.Sequential(graph, nn.Flatten(start_dim=0))
    return graph.eval()


def _name_batch_axis(model: Any, owner: str) -> None:
    """Call the dynamic first axis 'batch' in the inputs and outputs (the
    exporter names it after its symbol, such as 's77')."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if not dims or not dims[0].dim_param:
        raise OnnxExportError(
            f"The ONNX graph of {owner} has a fixed batch size: the module's forward "
            "turns the batch size into a constant. Write reshapes as "
            "x.reshape(x.shape[0], ...) or x.flatten(1) rather than with a fixed size."
        )
    symbol = dims[0].dim_param
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = "batch"


def _metadata(estimator: Any, output_name: str) -> dict[str, str]:
    props = {
        "sktorch_version": __version__,
        "sktorch_estimator": type(estimator).__name__,
        "output": output_name,
    }
    for attribute, key in (("classes_", "classes"), ("feature_names_in_", "feature_names")):
        values = getattr(estimator, attribute, None)
        if values is None:
            continue
        try:
            props[key] = json.dumps(np.asarray(values).tolist())
        except TypeError:  # labels JSON cannot hold
            props[key] = json.dumps([str(v) for v in values])
    return props


def _check_graph(ort: Any, model: bytes, estimator: Any, output_name: str) -> None:
    """Run the exported graph with onnxruntime on batch sizes other than the
    traced one, and compare it with what the estimator itself predicts
    (``predict_proba``, or ``predict`` for a regressor) on the same samples."""
    owner = type(estimator).__name__
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    method = "predict_proba" if output_name == "probabilities" else "predict"
    for n in (1, 3):
        # Values in [0, 1): valid module inputs for tabular and image estimators.
        x = rng.random((n, *estimator._input_shape), dtype=np.float32)
        expected = _predicted(estimator, method, x)
        try:
            (got,) = session.run([output_name], {INPUT_NAME: x})
        except Exception as exc:
            raise OnnxExportError(
                f"The ONNX graph of {owner} fails on a batch of {n} sample(s) with "
                f"onnxruntime: {exc}. If the module's forward fixes the batch size, write "
                "reshapes as x.reshape(x.shape[0], ...) or x.flatten(1)."
            ) from exc
        if got.shape != expected.shape:
            difference = f"output shape {got.shape} instead of {expected.shape}"
        elif not np.allclose(got, expected, rtol=CHECK_TOLERANCE, atol=CHECK_TOLERANCE):
            difference = (f"largest difference {np.max(np.abs(got - expected)):.3g} from "
                          f"{owner}.{method} (tolerance {CHECK_TOLERANCE:g})")
        else:
            continue
        raise OnnxExportError(
            f"The ONNX graph of {owner} does not reproduce the module on a batch of {n} "
            f"sample(s): {difference}. Does the module's forward depend on the batch size, "
            "or behave differently when traced?"
        )


def _predicted(estimator: Any, method: str, inputs: np.ndarray) -> np.ndarray:
    """``estimator.<method>`` of the module inputs ``inputs``, given as an X
    that the estimator reads back as them (``net_.decode_inputs``), in float32
    as the graph computes (mixed precision is not exported)."""
    X = estimator.net_.decode_inputs(torch.from_numpy(inputs) if inputs.ndim == 4 else inputs)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and getattr(X, "ndim", None) == 2:
        import pandas as pd

        X = pd.DataFrame(X, columns=names)  # as fitted: no feature-name warning
    with float32_inference():
        return np.asarray(getattr(estimator, method)(X))
