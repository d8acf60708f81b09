"""``tools/precompress.py``: ``.br``/``.gz`` siblings that decode to their file, where they pay."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import pytest
from support import import_file

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    pytest.skip("a build tool: runs on the host", allow_module_level=True)
brotli = pytest.importorskip("brotli")

ROOT = Path(__file__).resolve().parents[1]
TEXT = b"".join(b"export const line%d = 'a line of a module';\n" % i for i in range(300))

precompress = import_file(ROOT / "tools" / "precompress.py", "precompress")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "pyodide").mkdir(parents=True)
    (site / "app.mjs").write_bytes(TEXT)
    (site / "pyodide" / "runtime.wasm").write_bytes(TEXT * 3)
    (site / "pyodide" / "wheel.whl").write_bytes(os.urandom(20_000))  # compressed already
    (site / "tiny.json").write_bytes(b'{"rpc": null, "pad": "%s"}' % (b"x" * 900))  # one packet
    return site


def test_siblings_decode_to_their_file(site: Path) -> None:
    report = precompress.precompress(site, quality=5)
    for name in ("app.mjs", "pyodide/runtime.wasm"):
        file = site / name
        br, gz = Path(f"{file}.br"), Path(f"{file}.gz")
        assert brotli.decompress(br.read_bytes()) == file.read_bytes()
        assert gzip.decompress(gz.read_bytes()) == file.read_bytes()
        assert br.stat().st_size < gz.stat().st_size < file.stat().st_size
    assert (report.files, report.raw) == (2, len(TEXT) * 4)
    assert 0 < report.br < report.gz < report.raw


def test_no_sibling_where_it_does_not_pay(site: Path) -> None:
    precompress.precompress(site, quality=5)
    for name in ("pyodide/wheel.whl", "tiny.json"):
        assert not Path(f"{site / name}.br").exists()
        assert not Path(f"{site / name}.gz").exists()


def test_a_rerun_compresses_files_not_siblings(site: Path) -> None:
    precompress.precompress(site, quality=5)
    before = sorted(p.name for p in site.rglob("*"))
    gz = (site / "app.mjs.gz").read_bytes()
    precompress.precompress(site, quality=5)
    assert sorted(p.name for p in site.rglob("*")) == before
    assert (site / "app.mjs.gz").read_bytes() == gz  # no timestamp inside: the same bytes


def test_the_cache_spares_recompression(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    precompress.precompress(site, quality=5, cache=cache)
    first = (site / "app.mjs.br").read_bytes()
    assert len(list(cache.iterdir())) == 6  # 3 files of MIN_SIZE or more x (br, gz), kept or not

    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("compressed again")

    monkeypatch.setattr(precompress.brotli, "compress", refuse)
    monkeypatch.setattr(precompress.gzip, "compress", refuse)
    (site / "app.mjs.br").unlink()
    precompress.precompress(site, quality=5, cache=cache)
    assert (site / "app.mjs.br").read_bytes() == first
    with pytest.raises(AssertionError, match="compressed again"):
        precompress.precompress(site, quality=6, cache=cache)  # another quality: another entry


def test_a_changed_file_gets_new_siblings(site: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    precompress.precompress(site, quality=5, cache=cache)
    (site / "app.mjs").write_bytes(TEXT.upper())
    precompress.precompress(site, quality=5, cache=cache)
    assert brotli.decompress((site / "app.mjs.br").read_bytes()) == TEXT.upper()


@pytest.mark.parametrize("quality", [-1, 12])
def test_bad_quality_is_refused(site: Path, quality: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.11"):
        precompress.precompress(site, quality=quality)
    assert not (site / "app.mjs.br").exists()


def test_cli(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert precompress.main([str(site), "--brotli-quality", "4"]) == 0
    assert "2 files precompressed" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        precompress.main([str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        precompress.main([str(site), "--brotli-quality", "12"])
    assert "0..11" in capsys.readouterr().err
