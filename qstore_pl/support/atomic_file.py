"""Files written whole or not at all, and on stable storage once written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from qstore_pl.support.stable_storage import fsync_path


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path``.

    An error (or a crash) inside the block leaves ``path`` as it was, and removes the
    temporary file, so a failed command never truncates an existing output. The file
    is fsynced before the rename and its directory after it: once the block has
    returned, the new file survives an operating-system crash.

    Parameters
    ----------
    path : str or PathLike
        The file to write.
    mode : {"w", "wb"}
        Text or binary.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, mode) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        fsync_path(path.parent)  # the rename itself
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
