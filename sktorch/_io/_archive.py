"""The sktorch file as a zip archive: its members, written atomically, read with bounded memory.

A file is a zip archive of a JSON document (``sktorch.json``), the module's
weights (``model.safetensors``) and, when there are any, the other tensors
the document refers to (``state.safetensors``). Reading trusts nothing in
it: members are read only up to their declared sizes, declared sizes may not
exceed a fixed ratio of the compressed sizes (a zip bomb is refused before
it is inflated), and the actual stream is checked against the declared size.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from sktorch._utils._atomic import atomic_write
from sktorch.exceptions import InvalidFileError, UnsupportedFormatError

FORMAT_NAME = "sktorch.estimator"
# 2: the training state (include_optimizer=True) is sktorch._engine._state's,
# with the random state and the callbacks' state; version 1 files still load.
# 3: the fitted attribute ``_loss_plan`` replaces ``_sigmoid_output`` and
# ``_probability_output``; older files still load.
FORMAT_VERSION = 3

DOCUMENT = "sktorch.json"
WEIGHTS = "model.safetensors"
STATE = "state.safetensors"
MEMBERS = (DOCUMENT, WEIGHTS, STATE)

# A member may inflate to at most this many times its compressed size, or
# to _SMALL bytes, whichever is larger. sktorch's JSON compresses about 5 to
# 15 times and its tensors are stored uncompressed; a zip bomb inflates a
# thousand times or more.
MAX_INFLATION = 100
_SMALL = 1 << 20


def write_archive(
    path: Path,
    document: dict[str, Any],
    weights: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
) -> None:
    """Write the archive atomically: readers see the old file or the whole new one."""
    text = json.dumps(document, indent=1, allow_nan=True)
    metadata = {"format": "pt"}

    def write(stream: Any) -> None:
        with zipfile.ZipFile(stream, "w") as archive:
            archive.writestr(DOCUMENT, text, compress_type=zipfile.ZIP_DEFLATED)
            # Weights barely compress; stored as they are, they read fast.
            archive.writestr(WEIGHTS, safetensors.torch.save(weights, metadata=metadata),
                             compress_type=zipfile.ZIP_STORED)
            if state:
                archive.writestr(STATE, safetensors.torch.save(state, metadata=metadata),
                                 compress_type=zipfile.ZIP_STORED)

    atomic_write(path, write)


def read_archive(
    path: Path,
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The document, the weights and the other tensors of a file."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            unexpected = sorted(set(names) - set(MEMBERS))
            if unexpected or DOCUMENT not in names or len(names) != len(set(names)):
                raise InvalidFileError(
                    f"{where!r} is not a file written by sktorch.save: it holds "
                    f"{sorted(names)}, where sktorch.save writes {list(MEMBERS)}. It was "
                    "not loaded (nothing in it was executed)."
                )
            members = {info.filename: info for info in infos}
            compressed = sum(info.compress_size for info in infos)
            if compressed > path.stat().st_size:
                raise InvalidFileError(
                    f"The members of {where!r} declare {compressed} compressed bytes, more "
                    f"than the file's {path.stat().st_size}; the file is corrupted or crafted."
                )
            for info in infos:
                _check_declared_size(info, where)
            document = json.loads(_read_member(archive, members[DOCUMENT], where).decode("utf-8"))
            check_format(document, where)
            if WEIGHTS not in members:
                raise InvalidFileError(f"{where!r} has no {WEIGHTS} member; it is incomplete.")
            weights = _read_tensors(archive, members[WEIGHTS], where)
            state = _read_tensors(archive, members[STATE], where) if STATE in members else {}
    except InvalidFileError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError, RecursionError, UnicodeError) as exc:
        raise InvalidFileError(
            f"{where!r} is not a readable sktorch file (truncated or corrupted?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return document, weights, state


def _check_declared_size(info: zipfile.ZipInfo, where: str) -> None:
    limit = max(_SMALL, MAX_INFLATION * info.compress_size)
    if info.file_size > limit:
        raise InvalidFileError(
            f"The {info.filename!r} member of {where!r} declares {info.file_size} bytes from "
            f"{info.compress_size} compressed bytes, more than {MAX_INFLATION} times as many: "
            "sktorch.save never writes that (a zip bomb?). It was not inflated."
        )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """The member's bytes, read up to one byte past its declared size: a
    stream longer or shorter than declared is refused."""
    with archive.open(info) as stream:
        data = stream.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise InvalidFileError(
            f"The {info.filename!r} member of {where!r} declares {info.file_size} bytes but "
            f"holds {'more' if len(data) > info.file_size else len(data)}; the file is "
            "corrupted or crafted."
        )
    return data


def _read_tensors(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str
) -> dict[str, torch.Tensor]:
    data = _read_member(archive, info, where)
    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # safetensors parses only; nothing runs
        raise InvalidFileError(
            f"The {info.filename} member of {where!r} is not valid safetensors data "
            f"(truncated, corrupted, or not written by sktorch.save): {exc}"
        ) from exc


def check_format(document: Any, where: str) -> None:
    """Refuse a document that is not sktorch's, or is of a newer format."""
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise InvalidFileError(f"{where!r} is not a file written by sktorch.save.")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidFileError(
            f"{where!r} has an invalid format version {version!r}; it is corrupted."
        )
    if version > FORMAT_VERSION:
        versions = document.get("versions")
        written_by = (versions if isinstance(versions, dict) else {}).get(
            "sktorch", "a newer version")
        raise UnsupportedFormatError(
            f"{where!r} was written by sktorch {written_by} in file format version "
            f"{version}; this sktorch reads format versions up to {FORMAT_VERSION}. "
            "Upgrade sktorch to load it."
        )
