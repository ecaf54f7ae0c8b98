"""Atomic file writes: readers see the old file or the whole new one, never part.

Every file sktorch writes for a user (``sktorch.save``, ``export_onnx``,
training checkpoints) goes through :func:`atomic_write`. The data is written
to a temporary file beside the target, synced, then renamed over it with
``os.replace`` (atomic on POSIX and Windows within one directory).

The temporary name carries the host and the process id, so a later write of
the same target can remove what a killed process (``kill -9``, power loss)
left behind, and only that: a temporary file of a live process, or of
another host on a shared file system, is never touched. The file is created
with mode ``0o666`` less the umask, as ``open`` would create it, not with
``mkstemp``'s private ``0o600``.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]

_SUFFIX = ".tmp"


def _host() -> str:
    # Dots and separators would make the name ambiguous to parse back.
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _temporary_name(path: Path) -> Path:
    return path.with_name(
        f".{path.name}.{_host()}-{os.getpid()}.{secrets.token_hex(4)}{_SUFFIX}"
    )


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writes of ``path`` by dead processes
    of this host left behind; return the removed paths."""
    path = Path(path)
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.{re.escape(_host())}-(\d+)\.[0-9a-f]{{8}}{re.escape(_SUFFIX)}$"
    )
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or _is_alive(int(match.group(1))):
            continue
        try:
            entry.unlink()
        except FileNotFoundError:  # another writer removed it first
            continue
        removed.append(entry)
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write a file atomically.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace; its directory must exist.
    write : callable
        Called with a binary file object open for writing; it writes the
        whole content. If it raises (or the process is interrupted by an
        exception), the temporary file is removed, ``path`` is left as it
        was, and the exception propagates.
    """
    path = Path(os.fspath(path))
    remove_stale_temporaries(path)
    tmp = _temporary_name(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    handle = os.open(tmp, flags, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
