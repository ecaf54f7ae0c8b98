"""Importable helpers for tests that run code in a fresh Python process."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import torch
from torch import nn

TESTS_DIR = Path(__file__).resolve().parent


class TwoLayerNet(nn.Module):
    """A user-defined module, importable from a fresh process."""

    def __init__(self, in_features, out_features, width=12):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, width), nn.Tanh(), nn.Linear(width, out_features))

    def forward(self, x):
        return self.body(x)



class SoftmaxNet(nn.Module):
    """A linear layer ending in a softmax: it outputs probabilities, as a
    skorch-style classifier module does (trained with criterion='nll')."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return torch.softmax(self.linear(x), dim=1)


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that can import these helpers."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed:\n{result.stdout}\n{result.stderr}")
    return result


def rewrite(path, document=None, members=None):
    """Rewrite a saved file with an edited document and/or other members."""
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    if document is not None:
        contents["sktorch.json"] = json.dumps(document).encode()
    contents.update(members or {})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def read_document(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("sktorch.json"))
