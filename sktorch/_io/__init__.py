"""Persistence without pickle: ``save``, ``load`` and ``trim_for_inference``.

The package is split by job: :mod:`._archive` (the zip file, read with
bounded memory), :mod:`._codec` (values to JSON and back), :mod:`._trust`
(what a file may name and build), :mod:`._rebuild` (the estimator rebuilt as
data) and :mod:`._api` (the public functions).
"""

from sktorch._io._api import load, save, trim_for_inference
from sktorch._io._archive import FORMAT_VERSION
from sktorch._io._onnx import export_onnx

__all__ = ["FORMAT_VERSION", "export_onnx", "load", "save", "trim_for_inference"]
