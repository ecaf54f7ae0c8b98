"""Weight initializations by name, for the ``init`` hyperparameter."""

from __future__ import annotations

from torch import nn

from sktorch._utils._registry import Registry

INITIALIZERS = Registry("initialization")
for _name, _fn in {
    "kaiming_normal": nn.init.kaiming_normal_,
    "kaiming_uniform": nn.init.kaiming_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "orthogonal": nn.init.orthogonal_,
    "trunc_normal": nn.init.trunc_normal_,
    "normal": nn.init.normal_,
    "uniform": nn.init.uniform_,
}.items():
    INITIALIZERS.register(_name, _fn)
