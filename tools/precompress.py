"""Write ``.br`` and ``.gz`` beside every compressible file of a built site.

    python tools/precompress.py build/site [--brotli-quality 11] [--cache build/.precompress]

A static server that negotiates ``Accept-Encoding`` (the demo's ``wasm-demo/server.py``, nginx's
``gzip_static``/``brotli_static``, Caddy's ``precompressed``) then sends the smaller file with a
``Content-Encoding`` instead of compressing on every request. Files under ``MIN_SIZE`` are left
alone, and a sibling is kept only when it saves at least ``MIN_SAVING`` of the file (zip archives
such as wheels and the stdlib gain nothing).
Brotli at quality 11 takes about a minute for the Pyodide runtime, so results are cached by the
content's hash: a rebuild only compresses what changed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import brotli

ENCODINGS = {".br": "br", ".gz": "gzip"}
"""Sibling suffix -> the Content-Encoding it is served with."""
MIN_SIZE = 1024
"""Bytes: a smaller file fits in one network packet compressed or not."""
MIN_SAVING = 0.05
"""Keep a sibling only when it is at least this much smaller than the file."""
GZIP_LEVEL = 9


@dataclass
class Report:
    """What one run wrote: bytes of the compressible files, raw and per encoding."""

    files: int = 0
    raw: int = 0
    br: int = 0
    gz: int = 0


def is_sibling(path: Path) -> bool:
    """A compressed sibling written by this tool (never compressed again)."""
    return path.suffix in ENCODINGS and path.with_suffix("").is_file()


def _compress(data: bytes, suffix: str, quality: int, cache: Path | None) -> bytes:
    key = f"{hashlib.sha256(data).hexdigest()}-{suffix[1:]}{quality if suffix == '.br' else ''}"
    cached = cache / key if cache is not None else None
    if cached is not None and cached.is_file():
        return cached.read_bytes()
    if suffix == ".br":
        out: bytes = brotli.compress(data, quality=quality, lgwin=24)
    else:
        out = gzip.compress(data, GZIP_LEVEL, mtime=0)  # mtime 0: the same bytes every build
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(out)
    return out


def precompress(site: Path, quality: int = 11, cache: Path | None = None) -> Report:
    """Write the siblings of every file under ``site``; remove stale ones that no longer pay."""
    if not 0 <= quality <= 11:
        raise ValueError(f"brotli quality must be 0..11, not {quality}")
    report = Report()
    for file in sorted(p for p in site.rglob("*") if p.is_file() and not is_sibling(p)):
        data = file.read_bytes()
        kept = {}
        for suffix in ENCODINGS:
            out = _compress(data, suffix, quality, cache) if len(data) >= MIN_SIZE else data
            sibling = file.with_name(file.name + suffix)
            if len(out) <= len(data) * (1 - MIN_SAVING):
                sibling.write_bytes(out)
                kept[suffix] = len(out)
            else:
                sibling.unlink(missing_ok=True)
        if kept:
            report.files += 1
            report.raw += len(data)
            report.br += kept.get(".br", len(data))
            report.gz += kept.get(".gz", len(data))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("site", type=Path, help="the built site (make site)")
    parser.add_argument("--brotli-quality", type=int, default=11, help="0..11 (default 11)")
    parser.add_argument("--cache", type=Path, help="a folder of compressed results by hash")
    args = parser.parse_args(argv)
    if not args.site.is_dir():
        parser.error(f"{args.site} is not a folder")
    try:
        r = precompress(args.site, args.brotli_quality, args.cache)
    except ValueError as err:
        parser.error(str(err))
    print(
        f"{args.site}: {r.files} files precompressed, {r.raw:,} B raw -> "
        f"{r.br:,} B br (quality {args.brotli_quality}), {r.gz:,} B gzip"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
