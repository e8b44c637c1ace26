"""One way to write a file so that readers never see half of it: a temporary file beside it, then a rename."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], *, sync: bool = False) -> Path:
    """Runs ``write(binary_file)`` on a temporary file beside ``path``, then renames it to ``path`` (atomic on one
    file system: a reader, or a run killed meanwhile, sees the old file or the new one, never a part). ``sync``
    flushes the data to the disk before the rename, for files whose loss after a power cut would matter (the name of
    a run's latest checkpoint). The parent directory is created; the temporary file is removed on any failure.

    Example:
        >>> import tempfile, pathlib
        >>> from naivega_jax._files import write_atomic
        >>> p = write_atomic(pathlib.Path(tempfile.mkdtemp()) / "a" / "x.txt", lambda f: f.write(b"hello"))
        >>> p.read_text(), [q.name for q in p.parent.iterdir()]
        ('hello', ['x.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with mode 0o666 lets the umask decide the permissions (mkstemp would force 0o600).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str, *, sync: bool = False) -> Path:
    """``write_atomic`` of ``text`` in UTF-8."""
    return write_atomic(path, lambda f: f.write(text.encode()), sync=sync)
