"""Data-parallel training: ``strategy='ddp'`` with ``devices=N``.

The parent process validates the data and draws the seed as for any fit,
then starts N worker processes with ``torch.multiprocessing``
('forkserver' with sktorch preloaded where there is one, else 'spawn': the
start methods that are safe with CUDA and torch's thread pools). Each
worker joins a ``torch.distributed`` process group (NCCL on CUDA, gloo on
the CPU, rendezvous on a store the parent serves on a loopback port),
builds the net exactly as the parent would (same seed, so the same initial
weights), wraps the module in ``DistributedDataParallel`` and trains on its
rows of every global batch (:class:`sktorch._data._batches.ShardedBatches`). Rank 0
writes its fitted estimator to a temporary file; the parent takes its
fitted state, so the result is an ordinary single-process estimator.

A worker that raises records its traceback, the time and its pid in the
same temporary directory, written atomically: the launcher ends the other
workers as soon as one exits, possibly in the middle of writing. The parent
names the process that failed first from these records, or from the
launcher's own report where the records cannot tell, and removes the error
files the launcher leaves in the system's temporary directory.

torch's own launcher is used, not ``torch.distributed.run`` (which starts a
fresh program and cannot hand an estimator back to a caller's ``fit``) nor
skorch's Accelerate integration (an extra dependency, and it takes over the
training step sktorch customizes): ``start_processes`` propagates a
worker's exception and ends the other workers, so a crash fails ``fit``
rather than leaving it waiting on a collective.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pickle
import re
import tempfile
import time
import traceback
from typing import Any

import torch
from torch.multiprocessing.spawn import ProcessException, ProcessExitedException

from sktorch._utils._atomic import atomic_write
from sktorch._utils._device import resolve_device
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
    validation: tuple[Any, Any] | None = None,
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
        # The rendezvous store is served from this process, on a port the
        # operating system assigns as the store binds it: a port found free
        # beforehand could be taken by another process (another fit under
        # pytest-xdist, any client) before rank 0 binds it.
        store = torch.distributed.TCPStore("127.0.0.1", 0, is_master=True,
                                           wait_for_workers=False, timeout=_TIMEOUT)
        args = (estimator, world, store.port, backend, threads, result, inputs, targets,
                n_outputs, device, seed, initialize, epochs, validation)
        try:
            _run_workers(args, world)
        except ProcessException as exc:
            rank, pid, message = _first_error(tmp, exc)
            raise RuntimeError(
                f"Data-parallel training of {owner} (strategy='ddp', {world} processes) "
                f"failed in process {rank} (pid {pid}); the other processes were ended. "
                f"The error of process {rank}:\n{message}"
            ) from exc
        finally:
            # Closed now: the traceback of a failed fit, which a notebook or
            # a debugger keeps, would keep the store listening otherwise.
            del store
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


def _run_workers(args: tuple, world: int) -> None:
    """Run ``world`` :func:`_worker` processes to their end.

    Raises the launcher's :class:`ProcessException` when one fails (the
    launcher has then ended the others). Whatever the outcome, no worker is
    left running and the error files the launcher creates in the system's
    temporary directory (``pytorch-errorfile-*``, one per failed worker,
    never removed by torch) are removed.
    """
    context = torch.multiprocessing.start_processes(
        _worker, args=args, nprocs=world, join=False, start_method=_start_method())
    try:
        while not context.join():
            pass
    except ProcessException:
        raise
    except (EOFError, pickle.UnpicklingError) as exc:
        # The launcher ended every worker, then could not read the failed
        # one's report (a process killed while writing it leaves it cut
        # short): name the process from its exit code instead.
        raise _unreported_failure(context.processes) from exc
    except BaseException:
        # Interrupted (Ctrl-C, an exception from a signal handler) while the
        # workers run: end them, so that none trains on unattended or writes
        # into the temporary directory the caller is removing.
        _end(context.processes)
        raise
    finally:
        for path in context.error_files:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _unreported_failure(processes: list) -> ProcessExitedException:
    """The launcher's report for a failed worker whose own report could not
    be read: the first process (by rank) that exited with an error."""
    index, process = next(((i, p) for i, p in enumerate(processes) if p.exitcode),
                          (-1, None))
    code = process.exitcode if process is not None else None
    return ProcessExitedException(
        f"process {index} exited with code {code}; its error report could not be read",
        error_index=index, error_pid=process.pid if process is not None else None,
        exit_code=code)


def _end(processes: list, grace: float = 10.0) -> None:
    """End ``processes``: SIGTERM, then SIGKILL for any still alive after
    ``grace`` seconds (a process blocked in native code, or one that
    handles SIGTERM, may outlive the first)."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _write_error(directory: str, rank: int, text: str) -> None:
    """Record the traceback ``text`` of the worker of rank ``rank`` in
    ``directory``, with the time (to tell the first failure from those it
    brought about) and the pid.

    The record is written atomically: the launcher may end this process at
    any moment once another worker has exited, and the parent must find
    either the whole record or none.
    """
    record = json.dumps({"time": time.time(), "pid": os.getpid(), "traceback": text})
    atomic_write(os.path.join(directory, f"error-{rank}.json"),
                 lambda file: file.write(record.encode()))


def _read_error(path: str) -> tuple[float, int, str] | None:
    """The time, pid and traceback of the record at ``path``; None if it
    cannot be read or is not a whole record."""
    try:
        with open(path) as file:
            record = json.load(file)
        return float(record["time"]), int(record["pid"]), str(record["traceback"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _first_error(tmp: str, exc: ProcessException) -> tuple[int, int, str]:
    """The rank, pid and error of the worker that failed first.

    When one process fails, the others then fail too (their peer is gone),
    and the launcher reports whichever *exited* first, not necessarily the
    cause: the earliest record in ``tmp`` names it. When the process the
    launcher reports left no readable record, it ended without raising in
    :func:`_worker` (killed by a signal, ``os._exit``, an error before the
    process group was joined), so the launcher's report, which names it and
    holds its traceback where it has one, is the first failure known.
    """
    records = {}
    for name in os.listdir(tmp):
        match = re.fullmatch(r"error-(\d+)\.json", name)
        record = _read_error(os.path.join(tmp, name)) if match else None
        if record:
            records[int(match[1])] = record
    if exc.error_index not in records:
        return exc.error_index, exc.error_pid, exc.msg.strip()
    rank = min(records, key=lambda rank: records[rank][0])
    _, pid, text = records[rank]
    return rank, pid, text


def _worker(rank, estimator, world, port, backend, threads, result, inputs, targets,
            n_outputs, device, seed, initialize, epochs, validation) -> None:
    import torch.distributed as dist

    if threads is not None:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=_TIMEOUT)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world,
                            timeout=_TIMEOUT)
    try:
        if rank > 0:
            # One progress table, printed by rank 0.
            estimator.verbose = 0
        estimator._train(
            inputs, targets, n_outputs, device, seed, initialize=initialize, epochs=epochs,
            validation=validation, wrap=lambda net: _data_parallel(net, rank, world, device))
        if rank == 0:
            atomic_write(result, lambda file: pickle.dump(estimator, file))
    except BaseException:
        # Not writing the record must not hide the error: the parent then
        # falls back to the launcher's report.
        with contextlib.suppress(OSError):
            _write_error(os.path.dirname(result), rank, traceback.format_exc())
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
