"""TensorBoard records built by hand: the HParams entry of a run, the model graph, and mask grids.

The :class:`~sktorch.callbacks.TensorBoard` callback writes these through
its ``SummaryWriter``; the protobufs come from the ``tensorboard`` package,
imported when a record is built.
"""

from __future__ import annotations

import time
import inspect
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch


def _short(value: Any) -> str:
    """A compact text for a hyperparameter value, for a directory name."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return f"{float(value):g}"
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return "-".join(_short(v) for v in value)
    if inspect.isclass(value) or inspect.isfunction(value):
        return value.__name__
    if isinstance(value, torch.nn.Module):
        return type(value).__name__
    text = repr(value)
    return type(value).__name__ if " at 0x" in text else text


def _hparam_value(value: Any) -> bool | int | float | str:
    """A value the HParams plugin can show: numbers, strings and booleans as
    they are, anything else as compact text (``None`` is ``'None'``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return _short(value) if not isinstance(value, (tuple, list)) else _sequence_text(value)


def _sequence_text(value: tuple | list) -> str:
    items = ", ".join(
        repr(v) if isinstance(v, str) else str(_hparam_value(v)) for v in value
    )
    return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"


def _hparams_of(owner: Any) -> dict[str, bool | int | float | str]:
    """The hyperparameters of ``owner`` as HParams values: an sktorch
    estimator's ``get_params(deep=False)`` (``prefix__option`` ones
    included), or a bare skorch net's, less its callbacks."""
    from skorch import NeuralNet

    params = owner.get_params(deep=False)
    if isinstance(owner, NeuralNet):
        params = {k: v for k, v in params.items() if not k.startswith("callbacks")}
    return {name: _hparam_value(value) for name, value in sorted(params.items())}


def _final_metrics(history: Any) -> dict[str, float]:
    """The last epoch's losses and validation metrics, and the best
    validation loss (of the training loss without validation)."""
    last = history[-1]
    metrics = {}
    for key, value in last.items():
        if _is_number(value) and (key in ("train_loss", "valid_loss") or (
                key.startswith("valid_") and _is_metric_key(key))):
            metrics[key] = float(value)
    for key in ("valid_loss", "train_loss"):
        values = [row[key] for row in history if _is_number(row.get(key))]
        if values:
            metrics[f"best_{key}"] = float(min(values))
            break
    return metrics


def _is_metric_key(key: str) -> bool:
    """Whether a per-epoch history key is a metric (``valid_accuracy``...):
    a ``train_``/``valid_`` key other than the losses, the ``*_best`` flags
    and skorch's batch counts."""
    return (
        key.startswith(("train_", "valid_"))
        and key not in ("train_loss", "valid_loss")
        and not key.endswith(("_best", "_batch_count", "_batch_size"))
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _hparams_summaries(hparams: dict[str, bool | int | float | str], start_time: float):
    """The session start and end summaries of the HParams plugin.

    No experiment summary is written: TensorBoard takes the first one it
    finds for the whole log directory, so hyperparameters that only some
    runs have would be dropped; without one it builds the experiment from
    every run's session start info (the union of their hyperparameters) and
    takes each run's scalars as its metrics.
    """
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.api_pb2 import Status
    from tensorboard.plugins.hparams.plugin_data_pb2 import (
        HParamsPluginData,
        SessionEndInfo,
        SessionStartInfo,
    )

    start = SessionStartInfo(start_time_secs=start_time)
    for name, value in hparams.items():
        # bool before number: True is an int to Python, not to TensorBoard.
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = value
    end = SessionEndInfo(status=Status.Value("STATUS_SUCCESS"), end_time_secs=time.time())

    def summary(tag: str, **data: Any) -> Summary:
        plugin_data = HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **data)
        return Summary(value=[Summary.Value(
            tag=tag, metadata=metadata.create_summary_metadata(plugin_data))])

    return (summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))


# -------------------------------------------------------------------- images


def _graph_def(module: torch.nn.Module, inputs: Any) -> tuple[Any, Any]:
    """TensorBoard's graph of one forward pass of ``module`` on ``inputs``
    (a tensor, or a tuple of the module's arguments), as
    ``SummaryWriter.add_graph`` writes it: the ``GraphDef`` and a
    ``RunMetadata``, for ``FileWriter.add_graph``.

    ``add_graph`` traces with ``torch.jit.trace``, which registers a new
    TorchScript class per module and submodule (twice: it traces again to
    check the trace) in torch's global compilation unit, compiles and runs
    them; torch never frees that unit, so each traced fit kept a few hundred
    kilobytes, and a ``ConcreteModuleType`` per submodule in
    ``torch.jit._recursive.concrete_type_store``, for the life of the
    process. Here the module is traced as the ONNX exporter traces it, into
    a free-standing graph that goes with its last reference, with the
    module hierarchy recorded as scopes named as ``add_graph`` names them
    (``MLP/Sequential[layers]/Linear[0]``): parameters and buffers are
    inputs of the graph, shown in the scope of their module.
    """
    from tensorboard.compat.proto.attr_value_pb2 import AttrValue
    from tensorboard.compat.proto.config_pb2 import RunMetadata
    from tensorboard.compat.proto.graph_pb2 import GraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef
    from tensorboard.compat.proto.step_stats_pb2 import DeviceStepStats, StepStats
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.compat.proto.versions_pb2 import VersionDef

    root = type(module).__name__
    scopes = {"": root}  # module path -> scope
    segments = {module: root}  # module -> the scope it pushes when called
    for path, submodule in module.named_modules():
        if path:
            parent, _, leaf = path.rpartition(".")
            segments[submodule] = f"{type(submodule).__name__}[{leaf}]"
            scopes[path] = f"{scopes[parent]}/{segments[submodule]}"
    state = list(torch.jit._unique_state_dict(module, keep_vars=True))
    saved = torch.jit._trace._trace_module_map
    torch.jit._trace._trace_module_map = segments
    try:
        with torch.no_grad():
            graph, _ = torch.jit._get_trace_graph(module, inputs)
    finally:
        torch.jit._trace._trace_module_map = saved

    nodes = []
    names: dict[str, str] = {}  # value's debug name -> name of the node giving it
    taken: set[str] = set()

    def add(value: Any, name: str, op: str, node_inputs: list[str], attributes: str = "") -> None:
        if name in taken:  # a value named like a parameter of its scope
            name = f"{name}.{value.debugName()}"
        taken.add(name)
        names[value.debugName()] = name
        attr = {"attr": AttrValue(s=attributes.encode())} if attributes else {}
        if value.isCompleteTensor():
            shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=size)
                                          for size in value.type().sizes()])
            attr["_output_shapes"] = AttrValue(list=AttrValue.ListValue(shape=[shape]))
        nodes.append(NodeDef(name=name, op=op, input=node_inputs, attr=attr))

    graph_inputs = list(graph.inputs())
    n_data = len(graph_inputs) - len(state)
    for i, value in enumerate(graph_inputs):
        if i < n_data:
            add(value, f"input/input.{i + 1}", "IO Node", [])
        elif value.uses():
            owner, _, leaf = state[i - n_data].rpartition(".")
            add(value, f"{scopes.get(owner, root)}/{leaf}", "Parameter", [])
    for node in graph.nodes():
        scope = node.scopeName() or root
        node_inputs = [names[value.debugName()] for value in node.inputs()]
        attributes = {key: getattr(node, node.kindOf(key))(key) for key in node.attributeNames()}
        # Quotes confuse TensorBoard's attribute display (add_graph drops them too).
        text = str(attributes).replace("'", " ") if attributes else ""
        for value in node.outputs():
            add(value, f"{scope}/{value.debugName()}", node.kind(), node_inputs, text)
    for i, value in enumerate(graph.outputs()):
        nodes.append(NodeDef(name=f"output/output.{i + 1}", op="IO Node",
                             input=[names[value.debugName()]]))
    # The producer version add_graph writes.
    graph_def = GraphDef(node=nodes, versions=VersionDef(producer=22))
    metadata = RunMetadata(step_stats=StepStats(dev_stats=[DeviceStepStats(device="/device:CPU:0")]))
    return graph_def, metadata


# Mask colours for TensorBoard: background black, then well-separated hues
# (matplotlib's tab10), cycled beyond ten classes.
_PALETTE = torch.tensor([
    (0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
    (148, 103, 189), (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207),
], dtype=torch.float32) / 255


def mask_grid(images: torch.Tensor, true: torch.Tensor, predicted: torch.Tensor,
              n_classes: int) -> torch.Tensor:
    """One row per image: the image, its true mask and its predicted mask,
    coloured by class (labels outside ``[0, n_classes)``, such as -100
    brought in by a rotation's fill, show white), as one image for
    ``add_image``."""
    from torchvision.utils import make_grid

    palette = _PALETTE[torch.arange(max(n_classes, 1)) % len(_PALETTE)]
    palette = torch.cat([palette, torch.ones(1, 3)])
    true = torch.where((true >= 0) & (true < n_classes), true, len(palette) - 1)
    pictures = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if pictures.shape[1] == 1:
        pictures = pictures.expand(-1, 3, -1, -1)
    pictures = pictures[:, :3].clamp(0, 1)
    tiles = torch.stack([pictures, palette[true].permute(0, 3, 1, 2),
                         palette[predicted].permute(0, 3, 1, 2)], dim=1)
    return make_grid(tiles.flatten(0, 1), nrow=3, padding=1, pad_value=1.0)
