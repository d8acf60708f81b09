"""Session files: the session's JSON lines, gzip-compressed (``.jsonl.gz``) or plain (``.jsonl``).

The inspector page reads the same files (in the static site, with no server), and am-dbg reads
them back with ``--import``. Reading checks every line before anything is added.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ._messages import MessageError

GZIP_MAGIC = b"\x1f\x8b"


def encode(lines: Iterable[str], compress: bool = True) -> bytes:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    return gzip.compress(data, compresslevel=3, mtime=0) if compress else data


def decode(data: bytes, source: str = "session file") -> list[str]:
    """The lines of a session file's bytes, gzip or plain."""
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise MessageError(f"{source}: broken gzip data ({err})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MessageError(f"{source}: not UTF-8 text (byte {err.start})") from None
    return text.splitlines()


def read(path: str | os.PathLike[str]) -> list[str]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MessageError(f"cannot read {path}: {err.strerror}") from None
    return decode(data, str(path))


def write(path: str | os.PathLike[str], lines: Iterable[str]) -> int:
    """Write a session file atomically (gzip unless the name ends in ``.jsonl``); returns bytes."""
    path = Path(path)
    data = encode(lines, compress=not path.name.endswith(".jsonl"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(data)
