"""The environment the README's commands build: torch and torchvision must
be a matching pair (a mismatched torchvision fails when loading its C++ ops)."""

import torch


def test_torchvision_ops_load_with_this_torch():
    import torchvision.ops

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep = torchvision.ops.nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_skorch_and_sklearn_import():
    import sklearn
    import skorch

    major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
    assert (major, minor) >= (1, 6)
    assert skorch.NeuralNet is not None
