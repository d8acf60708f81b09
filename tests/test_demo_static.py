"""The demo server's static files: precompressed siblings by ``Accept-Encoding``, ETags, caching.

A real server on 127.0.0.1 (``StaticSite`` as the ``process_request`` hook of a websockets server,
as in ``wasm-demo/server.py``), a site precompressed by ``tools/precompress.py``, and plain HTTP
requests from ``http.client``.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from support import import_file

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    pytest.skip("the server needs a listening socket", allow_module_level=True)
pytest.importorskip("websockets")
brotli = pytest.importorskip("brotli")

from websockets.asyncio.server import ServerConnection, serve  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
demo_server = import_file(ROOT / "wasm-demo" / "server.py", "demo_server")
precompress = import_file(ROOT / "tools" / "precompress.py", "precompress")

MODULE = b"".join(b"export const line%d = 'a line of a module';\n" % i for i in range(300))
BROWSER = "gzip, deflate, br, zstd"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def decoded(self) -> bytes:
        coding = self.headers.get("content-encoding")
        if coding == "br":
            return bytes(brotli.decompress(self.body))
        if coding == "gzip":
            return gzip.decompress(self.body)
        assert coding is None, coding
        return self.body


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    async def get(self, path: str, **headers: str) -> Reply:
        def get() -> Reply:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            fields = {name.replace("_", "-"): value for name, value in headers.items()}
            try:
                conn.request("GET", path, headers=fields)
                r = conn.getresponse()
                return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
            finally:
                conn.close()

        return await asyncio.to_thread(get)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "pyodide").mkdir(parents=True)
    (site / "index.html").write_bytes(b"<!doctype html><title>demo</title>")
    (site / "demo.mjs").write_bytes(MODULE)
    (site / "pyodide" / "pyodide.asm.wasm").write_bytes(MODULE * 2)
    (site / "pyodide" / "asyncmachine-0.1.0-py3-none-any.whl").write_bytes(MODULE)
    (tmp_path / "secret.txt").write_bytes(b"outside the site")
    precompress.precompress(site, quality=4)
    (site / "pyodide" / "snapshot.bin.gz").write_bytes(gzip.compress(MODULE))
    return site


@pytest_asyncio.fixture
async def client(site: Path) -> AsyncIterator[Client]:
    static = demo_server.StaticSite(site, {"/demo-server.json": b'{"rpc": "/rpc"}'})

    async def handler(conn: ServerConnection) -> None:
        await conn.close()

    async with serve(handler, "127.0.0.1", 0, process_request=static) as server:
        yield Client(server.sockets[0].getsockname()[1])


@pytest.mark.parametrize(
    ("accept", "coding"),
    [(BROWSER, "br"), ("gzip", "gzip"), ("", None), ("identity", None), ("br;q=0, gzip", "gzip")],
)
async def test_the_best_accepted_sibling_is_sent(
    client: Client, accept: str, coding: str | None
) -> None:
    reply = await client.get("/demo.mjs", Accept_Encoding=accept)
    assert reply.status == 200
    assert reply.headers.get("content-encoding") == coding
    assert reply.headers["content-type"] == "text/javascript; charset=utf-8"
    assert reply.headers["vary"] == "Accept-Encoding"
    assert int(reply.headers["content-length"]) == len(reply.body)
    assert reply.decoded() == MODULE


@pytest.mark.parametrize(("accept", "coding"), [(BROWSER, "gzip"), ("br", None)])
async def test_gzip_data_is_announced_when_gzip_is_accepted(
    client: Client, accept: str, coding: str | None
) -> None:
    reply = await client.get("/pyodide/snapshot.bin.gz", Accept_Encoding=accept)
    assert (reply.status, reply.headers.get("content-encoding")) == (200, coding)
    assert reply.headers["content-type"] == "application/octet-stream"
    assert gzip.decompress(reply.body) == MODULE  # the file's bytes either way
    if coding:
        assert reply.decoded() == MODULE


async def test_a_file_without_siblings_is_sent_as_it_is(client: Client) -> None:
    reply = await client.get("/", Accept_Encoding=BROWSER)
    assert reply.status == 200 and "content-encoding" not in reply.headers
    assert reply.body == b"<!doctype html><title>demo</title>"
    assert reply.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("accept", "available", "chosen"),
    [
        ("gzip, deflate, br, zstd", ["br", "gzip"], "br"),
        ("gzip;q=1.0, br;q=0.5", ["br", "gzip"], "gzip"),
        ("br;q=0", ["br", "gzip"], None),
        ("*", ["br", "gzip"], "br"),
        ("*;q=0, gzip", ["br", "gzip"], "gzip"),
        ("BR", ["br"], "br"),
        ("br;q=nonsense, gzip", ["br", "gzip"], "gzip"),
        ("gzip", ["br"], None),
        ("", ["br", "gzip"], None),
    ],
)
def test_choose_coding(accept: str, available: list[str], chosen: str | None) -> None:
    assert demo_server.choose_coding(accept, available) == chosen


async def test_an_unchanged_file_answers_304(client: Client) -> None:
    first = await client.get("/demo.mjs", Accept_Encoding=BROWSER)
    etag = first.headers["etag"]
    again = await client.get("/demo.mjs", Accept_Encoding=BROWSER, If_None_Match=etag)
    assert (again.status, again.body, again.headers["etag"]) == (304, b"", etag)
    assert "content-encoding" not in again.headers
    weak = await client.get("/demo.mjs", Accept_Encoding=BROWSER, If_None_Match=f'"x", W/{etag}')
    assert weak.status == 304
    # each encoding is its own entity: the brotli ETag does not match the plain file
    plain = await client.get("/demo.mjs", If_None_Match=etag)
    assert plain.status == 200 and plain.body == MODULE and plain.headers["etag"] != etag


async def test_a_changed_file_gets_a_new_etag(client: Client, site: Path) -> None:
    first = await client.get("/index.html")
    (site / "index.html").write_bytes(b"<!doctype html><title>changed</title>")
    again = await client.get("/index.html", If_None_Match=first.headers["etag"])
    assert again.status == 200 and again.body.endswith(b"changed</title>")


@pytest.mark.parametrize(
    ("path", "cache"),
    [
        ("/pyodide/pyodide.asm.wasm", "public, max-age=604800"),
        ("/pyodide/asyncmachine-0.1.0-py3-none-any.whl", "no-cache"),
        ("/demo.mjs", "no-cache"),
        ("/", "no-cache"),
        ("/demo-server.json", "no-cache"),
    ],
)
async def test_cache_control(client: Client, path: str, cache: str) -> None:
    reply = await client.get(path, Accept_Encoding=BROWSER)
    assert (reply.status, reply.headers["cache-control"]) == (200, cache)


async def test_generated_paths_are_typed_by_suffix(client: Client) -> None:
    reply = await client.get("/demo-server.json", Accept_Encoding=BROWSER)
    assert (reply.headers["content-type"], reply.body) == ("application/json", b'{"rpc": "/rpc"}')


@pytest.mark.parametrize("path", ["/missing.js", "/../secret.txt", "/%2e%2e/secret.txt", "/x%00"])
async def test_nothing_else_is_served(client: Client, path: str) -> None:
    reply = await client.get(path, Accept_Encoding=BROWSER)
    assert reply.status == 404 and b"outside" not in reply.body
