"""Data-parallel training: ``strategy='ddp'`` with ``devices=N``.

The parent process validates the data and draws the seed as for any fit,
then starts N worker processes with ``torch.multiprocessing``
('forkserver' with sktorch preloaded where there is one, else 'spawn': the
start methods that are safe with CUDA and torch's thread pools). Each
worker joins a ``torch.distributed`` process group (NCCL on CUDA, gloo on
the CPU, rendezvous on a free loopback port), builds the net exactly as the
parent would (same seed, so the same initial weights), wraps the module in
``DistributedDataParallel`` and trains on its rows of every global batch
(:class:`sktorch._net.ShardedBatches`). Rank 0 writes its fitted estimator
to a temporary file; the parent takes its fitted state, so the result is an
ordinary single-process estimator.

torch's own launcher is used, not ``torch.distributed.run`` (which starts a
fresh program and cannot hand an estimator back to a caller's ``fit``) nor
skorch's Accelerate integration (an extra dependency, and it takes over the
training step sktorch customizes): ``start_processes(join=True)`` propagates
a worker's exception and ends the other workers, so a crash fails ``fit``
rather than leaving it waiting on a collective.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
import socket
import tempfile
import time
import traceback
from typing import Any

import torch
from torch.multiprocessing.spawn import ProcessException

from sktorch._device import resolve_device
from sktorch.exceptions import InvalidParameterError

# A worker stuck in a collective (another rank gone without an exception the
# launcher could see) gives up after this long.
_TIMEOUT = datetime.timedelta(minutes=30)


def check_distributed(estimator: Any) -> int:
    """Check ``strategy`` and ``devices`` against the rest of the
    hyperparameters and this machine; return the number of processes."""
    owner = type(estimator).__name__
    strategy, devices = estimator.strategy, estimator.devices
    if strategy is None:
        raise InvalidParameterError(
            f"The 'devices' parameter of {owner} is {devices!r}, but strategy is None: "
            "devices is the number of processes of strategy='ddp'. Set strategy='ddp', "
            "or devices=None to train in this process."
        )
    for param in ("checkpoint_dir", "tensorboard", "resume_from"):
        if getattr(estimator, param) is not None:
            raise InvalidParameterError(
                f"The '{param}' parameter of {owner} is not supported with "
                f"strategy='ddp'. Set {param}=None, or strategy=None."
            )
    device = resolve_device(estimator.device, owner)
    if device.type not in ("cpu", "cuda"):
        raise InvalidParameterError(
            f"strategy='ddp' of {owner} trains on the CPU or on CUDA GPUs; device is "
            f"{estimator.device!r}. Use device='cpu', 'cuda' or 'auto'."
        )
    if device.type == "cuda":
        if device.index not in (None, 0):
            raise InvalidParameterError(
                f"With strategy='ddp', {owner} trains on cuda:0 to cuda:<devices - 1>; "
                f"device={estimator.device!r} names another GPU. Use device='cuda' and "
                "choose the GPUs with CUDA_VISIBLE_DEVICES."
            )
        count = torch.cuda.device_count()
        if devices is None:
            return count
        if devices > count:
            raise InvalidParameterError(
                f"The 'devices' parameter of {owner} is {devices}, but this machine has "
                f"{count} CUDA device(s). Use devices <= {count}, or device='cpu' to "
                "train in CPU processes."
            )
        return devices
    if devices is None:
        raise InvalidParameterError(
            f"strategy='ddp' of {owner} on the CPU needs the number of processes: set "
            "devices (an int >= 1)."
        )
    return devices


def fit_distributed(
    estimator: Any,
    world: int,
    inputs: Any,
    targets: Any,
    n_outputs: int,
    device: torch.device,
    seed: int | None,
    *,
    initialize: bool,
    epochs: int,
) -> Any:
    """Train ``estimator`` in ``world`` processes and install rank 0's
    fitted state in it."""
    owner = type(estimator).__name__
    backend = "nccl" if device.type == "cuda" else "gloo"
    # Each CPU worker gets its share of this process's threads, so that N
    # workers do not oversubscribe the cores.
    threads = max(1, torch.get_num_threads() // world) if device.type == "cpu" else None
    with tempfile.TemporaryDirectory(prefix="sktorch-ddp-") as tmp:
        result = os.path.join(tmp, "rank0.pkl")
        args = (estimator, world, _free_port(), backend, threads, result, inputs, targets,
                n_outputs, device, seed, initialize, epochs)
        try:
            torch.multiprocessing.start_processes(
                _worker, args=args, nprocs=world, join=True, start_method=_start_method())
        except ProcessException as exc:
            rank, message = _first_error(tmp, exc)
            raise RuntimeError(
                f"Data-parallel training of {owner} (strategy='ddp', {world} processes) "
                f"failed in process {rank}; the other processes were ended. The error of "
                f"process {rank}:\n{message}"
            ) from exc
        with open(result, "rb") as file:
            fitted = pickle.load(file)
    named = estimator.get_params(deep=False)
    for key, value in vars(fitted).items():
        if key not in named:
            setattr(estimator, key, value)
    estimator.net_.estimator = estimator
    return estimator


def _start_method() -> str:
    """'forkserver' where there is one (Linux, macOS), else 'spawn'.

    Both start workers that are safe with CUDA and with torch's thread pools
    (unlike 'fork'). A forkserver started with sktorch preloaded imports
    torch and sktorch once per parent process; every worker of every later
    fit is forked from it, ready to train in a fraction of a second, where a
    spawned worker spends seconds importing them again.
    """
    import multiprocessing
    import multiprocessing.forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    server = multiprocessing.forkserver._forkserver
    preload = list(getattr(server, "_preload_modules", ["__main__"]))
    if "sktorch" not in preload:
        # Added to the user's preloads, which only matter before the server
        # starts; a server already running keeps its own.
        multiprocessing.set_forkserver_preload([*preload, "sktorch"])
    return "forkserver"


def _first_error(tmp: str, exc: Exception) -> tuple[int, str]:
    """The rank and traceback of the worker that failed first: when one
    process fails, the others then fail too (their peer is gone), and the
    launcher reports whichever exited first, not necessarily the cause."""
    errors = []
    for name in os.listdir(tmp):
        if name.startswith("error-"):
            with open(os.path.join(tmp, name)) as file:
                when, message = file.read().split("\n", 1)
            errors.append((float(when), int(name.removeprefix("error-")), message))
    if not errors:
        return getattr(exc, "error_index", -1), str(exc)
    _, rank, message = min(errors)
    return rank, message


def _free_port() -> int:
    """A TCP port free on the loopback interface now (the operating system
    picks it, so parallel fits, e.g. under pytest-xdist, get different
    ones)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, estimator, world, port, backend, threads, result, inputs, targets,
            n_outputs, device, seed, initialize, epochs) -> None:
    import torch.distributed as dist

    if threads is not None:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=_TIMEOUT)
    try:
        if rank > 0:
            # One progress table, printed by rank 0.
            estimator.verbose = 0
        estimator._train(
            inputs, targets, n_outputs, device, seed, initialize=initialize, epochs=epochs,
            wrap=lambda net: _data_parallel(net, rank, world, device))
        if rank == 0:
            with open(result, "wb") as file:
                pickle.dump(estimator, file)
    except BaseException:
        # Recorded with the time, so that the parent can tell the cause
        # from the failures it brings about in the other processes.
        with open(os.path.join(os.path.dirname(result), f"error-{rank}"), "w") as file:
            file.write(f"{time.time()!r}\n{traceback.format_exc()}")
        raise
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def _data_parallel(net: Any, rank: int, world: int, device: torch.device):
    """Train ``net`` as rank ``rank`` of ``world``: the module wrapped in
    ``DistributedDataParallel``, the training batches sharded; the plain
    module is put back afterwards."""
    from torch.nn.parallel import DistributedDataParallel

    module, callbacks = net.module_, net.callbacks_
    device_ids = [device.index] if device.type == "cuda" else None
    net.module_ = DistributedDataParallel(module, device_ids=device_ids)
    net._shard = (rank, world)
    if rank > 0:
        # One progress table and bar, rank 0's (a warm fit's net was built
        # with them, whatever the verbosity set in this process).
        net.callbacks_ = [(name, callback) for name, callback in callbacks
                          if name not in ("epoch_table", "progress_bar")]
    try:
        yield
    finally:
        net.callbacks_ = callbacks
        # Early stopping's load_best loads into the wrapper, i.e. into module.
        net.module_ = module
        net._shard = None
        net._global_sizes = []
