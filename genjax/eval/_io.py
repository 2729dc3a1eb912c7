"""Atomic file writing for pictures (private)."""

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path, write: Callable[[BinaryIO], None]) -> Path:
    """Writes a file through ``write(handle)`` into a temporary sibling, then renames it.

    The parent folder is created if needed. A reader never sees a half-written file: the
    temporary file lives in the same folder (same file system) and ``os.replace`` is atomic.
    On any error the temporary file is removed and the exception propagates.

    Args:
      path: destination file.
      write: callable that writes the whole content to the binary handle it is given.

    Returns:
      The destination as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name opened exclusively ("xb"); unlike mkstemp it gets the usual umask mode.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
