"""Files the commands write that hold patient data (reject files, PDF reports): created 0600,
whole or not at all, and never through a link someone left at the path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def private_output(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """Write `path` through a fresh 0600 file in the same folder, moved over `path` once written
    (os.replace): a symbolic link at `path` is replaced, not followed, an existing file's looser
    mode is not kept, and an error leaves the old file (or nothing) rather than half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # O_EXCL, mode 0600
    try:
        handle = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
