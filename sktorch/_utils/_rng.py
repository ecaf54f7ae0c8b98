"""One fit at a time on torch's global random state, in every thread.

torch has one global random generator per process (and one per CUDA
device): weight initialization, ``nn.Dropout``, torchvision's random
transforms and sktorch's own shuffling and noise all draw from it, and
``torch.random.fork_rng`` saves and restores it for the whole process, not
for the calling thread. Two fits in two threads of one process (joblib's
``'threading'`` backend, a Dask worker with several threads) would draw from
each other's stream and restore each other's state, so the same
``random_state`` would give results that depend on timing.

:func:`fit_random_state` is the one guard: a process-wide lock held while a
fit (or anything else of sktorch's that seeds: ``lr_find``, rebuilding a
saved net) runs with the global state forked; :func:`drawing_from_global_rng`
takes the same lock to draw from the caller's stream (predicting with
random test-time transforms). Fits in threads thus train one at a time, each on
its own stream, and give the results they give one after the other; their
data preparation, prediction and scoring still run in parallel. The lock is
reentrant, so a fit started from a callback of a fit in the same thread
(``lr_find`` on a clone, say) does not deadlock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch

_GLOBAL_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def fit_random_state(devices: Sequence[int] = ()) -> Iterator[None]:
    """Hold torch's global random state for this thread.

    Inside, the caller may seed and draw freely: no other thread's sktorch
    fit runs meanwhile, and the global state (CPU, and the CUDA devices
    ``devices``) is restored on exit, as ``torch.random.fork_rng`` does.

    Parameters
    ----------
    devices : sequence of int
        CUDA device indices whose random state is forked too.
    """
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=list(devices)):
        yield


@contextlib.contextmanager
def drawing_from_global_rng() -> Iterator[None]:
    """Draw from torch's global random state (the caller's own stream, not
    forked) while no sktorch fit trains in another thread: a draw there
    would change that fit's stream."""
    with _GLOBAL_RNG_LOCK:
        yield


def rng_state(device: torch.device) -> dict[str, Any]:
    """The global torch random state now, as estimators record it: the CPU
    generator's, and on a CUDA ``device`` that device's generator's."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        index = device.index or 0
        state["cuda"] = torch.cuda.get_rng_state(index)
        state["cuda_index"] = index
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Set the global torch random state to ``state`` (of :func:`rng_state`);
    its CUDA part goes to ``device`` when that is a CUDA device."""
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu(), device.index or 0)
