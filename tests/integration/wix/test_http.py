"""The Wix HTTP client against real local servers (asyncio.start_server on loopback, no mocks).

Each server is a script: it reads real requests off the socket and answers with the bytes
the test names, so framing, keep-alive and failure timing are exactly what the client sees
from a real peer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wix_printer import __version__
from wix_printer.wix.http import (
    ConnectError,
    Headers,
    HttpClient,
    InvalidRequest,
    RemoteProtocolError,
    RequestTimeout,
    ResponseTooLarge,
    TransportError,
)


@dataclass
class Req:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    conn: int  # which accepted connection (1-based) carried it


async def read_request(reader: asyncio.StreamReader, conn: int) -> Req | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *rest = head.decode("latin-1").split("\r\n")
    method, target, _ = line.split(" ")
    headers: dict[str, str] = {}
    for h in rest:
        if h:
            name, _, value = h.partition(":")
            assert name.lower() not in headers, f"header {name} sent twice"
            headers[name.lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Req(method, target, headers, body, conn)


# Given the connection's number and the request, do whatever the peer should do.
Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class Server:
    handler: Handler
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[Req] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _server: asyncio.Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self.handler(self, reader, writer, self.connections)
        except (ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            # Teardown of a handler that was still waiting. Ending normally, because on
            # 3.11 the streams machinery logs an error for a cancelled handler task.
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def next_request(self, reader: asyncio.StreamReader, conn: int) -> Req | None:
        req = await read_request(reader, conn)
        if req is not None:
            self.requests.append(req)
        return req


def answering(*responses: bytes) -> Handler:
    """Keep-alive peer: the n-th request on a connection gets responses[n] (the last repeats)."""

    async def handler(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        n = 0
        while await srv.next_request(reader, conn) is not None:
            writer.write(responses[min(n, len(responses) - 1)])
            await writer.drain()
            n += 1

    return handler


def ok(body: bytes = b"ok", extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient(timeout=3.0) as c:
        yield c


async def test_content_length_body_and_what_is_sent(client: HttpClient) -> None:
    resp_bytes = (b"HTTP/1.1 201 Created Fine\r\nContent-Length: 12\r\n"
                  b"Content-Type: text/plain; charset=iso-8859-1\r\nX-Multi: a\r\nx-multi: b\r\n\r\n"
                  b"caf\xe9 au lait")
    async with Server(answering(resp_bytes)) as srv:
        resp = await client.request(
            "POST", srv.url + "/ecom/v1/orders/search?x=1", content=b'{"a": 1}',
            headers={"Authorization": "key", "Accept": "application/json"},
        )
    assert resp.status_code == 201
    assert resp.reason_phrase == "Created Fine"
    assert resp.content == b"caf\xe9 au lait"
    assert resp.text == "café au lait"  # the charset named by the server, not UTF-8
    assert resp.headers["content-type"] == resp.headers["CONTENT-TYPE"] == "text/plain; charset=iso-8859-1"
    assert resp.headers["X-MULTI"] == "a, b"
    assert resp.headers.get_list("x-multi") == ["a", "b"]
    assert "Content-Length" in resp.headers
    [req] = srv.requests
    assert (req.method, req.target, req.body) == ("POST", "/ecom/v1/orders/search?x=1", b'{"a": 1}')
    assert req.headers == {
        "host": f"127.0.0.1:{srv.port}",
        "accept": "application/json",  # the caller's wins over the default
        "user-agent": f"wix-printer/{__version__}",
        "authorization": "key",
        "content-length": "8",
    }


async def test_get_sends_no_content_length_and_default_accept(client: HttpClient) -> None:
    async with Server(answering(ok(b"{}"))) as srv:
        resp = await client.request("GET", srv.url)
    [req] = srv.requests
    assert req.target == "/"
    assert "content-length" not in req.headers
    assert req.headers["accept"] == "*/*"
    assert resp.json() == {}


async def test_chunked_body_arriving_in_pieces(client: HttpClient) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        while await srv.next_request(reader, conn) is not None:
            pieces = [b"HTTP/1.1 200 OK\r\nTransfer-", b"Encoding: chunked\r\n\r\n", b"9\r\n{\"ord", b"ers\"",
                      b"\r\n", b"6;ext=1\r\n: [1,2\r\n", b"1\r\n]\r\n1\r\n}\r\n0\r\n\r\n"]
            for p in pieces:
                writer.write(p)
                await writer.drain()
                await asyncio.sleep(0.01)

    async with Server(handler) as srv:
        first = await client.request("GET", srv.url + "/a")
        second = await client.request("GET", srv.url + "/b")
    assert first.json() == second.json() == {"orders": [1, 2]}
    assert first.headers["transfer-encoding"] == "chunked"
    assert srv.connections == 1  # a chunked answer ends cleanly: the connection is reused
    assert [r.target for r in srv.requests] == ["/a", "/b"]


async def test_body_delimited_by_close(client: HttpClient) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await srv.next_request(reader, conn)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"part\": ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"\"two\"}")
        await writer.drain()
        writer.close()

    async with Server(handler) as srv:
        first = await client.request("GET", srv.url)
        second = await client.request("GET", srv.url)
    assert first.json() == second.json() == {"part": "two"}
    assert srv.connections == 2  # the close ended the body, so nothing was left to reuse
    assert client.connections_opened == 2


async def test_keep_alive_one_connection_for_several_requests(client: HttpClient) -> None:
    async with Server(answering(ok(b"1"), ok(b"2"), ok(b"3"))) as srv:
        bodies = [(await client.request("POST", srv.url + "/s", content=b"{}")).content for _ in range(3)]
        got = await client.request("GET", srv.url + "/g")
    assert bodies == [b"1", b"2", b"3"]
    assert got.content == b"3"
    assert srv.connections == 1
    assert client.connections_opened == 1
    assert [r.conn for r in srv.requests] == [1, 1, 1, 1]


async def test_connection_close_header_is_honoured(client: HttpClient) -> None:
    async with Server(answering(ok(extra="Connection: close\r\n"))) as srv:
        await client.request("GET", srv.url)
        await client.request("GET", srv.url)
    assert srv.connections == 2


async def test_idle_connection_closed_by_server_next_request_succeeds(client: HttpClient) -> None:
    closed = asyncio.Event()

    async def handler(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await srv.next_request(reader, conn)
        writer.write(ok(f"conn {conn}".encode()))
        await writer.drain()
        await asyncio.sleep(0.05)  # the server's keep-alive timeout, shortened
        writer.close()
        closed.set()

    async with Server(handler) as srv:
        assert (await client.request("GET", srv.url)).content == b"conn 1"
        await asyncio.wait_for(closed.wait(), 2)
        await asyncio.sleep(0.05)
        assert (await client.request("GET", srv.url)).content == b"conn 2"
    assert srv.connections == 2


async def test_reused_connection_closed_before_answering_is_retried_once(client: HttpClient) -> None:
    # The race the idle check cannot see: the server closes just as the request goes out.
    async def handler(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await srv.next_request(reader, conn)
        writer.write(ok(f"conn {conn}".encode()))
        await writer.drain()
        if conn == 1:
            await srv.next_request(reader, conn)  # read it, answer nothing, close

    async with Server(handler) as srv:
        assert (await client.request("GET", srv.url + "/1")).content == b"conn 1"
        assert (await client.request("GET", srv.url + "/2")).content == b"conn 2"
    assert [(r.target, r.conn) for r in srv.requests] == [("/1", 1), ("/2", 1), ("/2", 2)]


async def test_fresh_connection_closed_without_answer_is_not_retried(client: HttpClient) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await srv.next_request(reader, conn)

    async with Server(handler) as srv:
        with pytest.raises(RemoteProtocolError, match="closed the connection without answering"):
            await client.request("GET", srv.url)
    assert srv.connections == 1
    assert len(srv.requests) == 1


async def test_no_retry_once_answer_bytes_arrived(client: HttpClient) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await srv.next_request(reader, conn)
        writer.write(ok())
        await srv.next_request(reader, conn)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()

    async with Server(handler) as srv:
        await client.request("GET", srv.url)
        with pytest.raises(RemoteProtocolError, match="closed after 3 of 10 body bytes"):
            await client.request("GET", srv.url)
    assert srv.connections == 1
    assert len(srv.requests) == 2


async def test_cut_off_chunked_body_and_head_are_errors(client: HttpClient) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await srv.next_request(reader, conn)
        if conn == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        await writer.drain()

    async with Server(handler) as srv:
        with pytest.raises(RemoteProtocolError, match="inside a chunked body"):
            await client.request("GET", srv.url)
        with pytest.raises(RemoteProtocolError, match="before the response head was complete"):
            await client.request("GET", srv.url)


async def test_garbage_is_a_protocol_error(client: HttpClient) -> None:
    async with Server(answering(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")) as srv:
        with pytest.raises(RemoteProtocolError, match="malformed HTTP response"):
            await client.request("GET", srv.url)


async def test_interim_answer_is_skipped(client: HttpClient) -> None:
    async with Server(answering(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + ok(b"final"))) as srv:
        resp = await client.request("GET", srv.url)
    assert (resp.status_code, resp.content) == (200, b"final")
    assert "link" not in resp.headers


async def test_bytes_beyond_the_answer_retire_the_connection(client: HttpClient) -> None:
    async with Server(answering(ok(b"one") + ok(b"unasked"))) as srv:
        assert (await client.request("GET", srv.url)).content == b"one"
        assert (await client.request("GET", srv.url)).content == b"one"
    assert srv.connections == 2


async def test_server_that_hangs_times_out_within_the_budget() -> None:
    async def silent(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await srv.next_request(reader, conn)
        await asyncio.sleep(3600)

    async with Server(silent) as srv, HttpClient(timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeout, match=r"within 0\.3 s"):
            # The outer guard turns a client that waits for ever into a quick failure.
            await asyncio.wait_for(client.request("GET", srv.url), 5)
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.0


async def test_timeout_is_total_not_per_read() -> None:
    # One byte every 50 ms never trips a per-read timeout; the total budget must still hold.
    async def trickle(srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await srv.next_request(reader, conn)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while True:
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    async with Server(trickle) as srv, HttpClient(timeout=5.0) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            await asyncio.wait_for(client.request("GET", srv.url, timeout=0.4), 5)  # per-request override
        elapsed = time.monotonic() - started
        assert 0.35 <= elapsed < 1.5
        # The timed-out connection was in an unknown state and must not be reused.
        assert client._idle == {}


async def test_oversized_head_is_refused() -> None:
    huge = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 0\r\n\r\n"
    # A header line that never ends, from a peer that then stays silent: refused at the cap,
    # not after the timeout, and without buffering the stream.
    endless = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000
    many = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 30) for i in range(60)) + ok()[17:]
    async with Server(answering(huge)) as big, Server(answering(endless)) as unended, \
            HttpClient(timeout=3.0, max_header_bytes=64 * 1024) as client:
        with pytest.raises(ResponseTooLarge, match="response head is larger than 65536 bytes"):
            await client.request("GET", big.url)
        started = time.monotonic()
        with pytest.raises(ResponseTooLarge, match="response head is larger than 65536 bytes"):
            await client.request("GET", unended.url)
        assert time.monotonic() - started < 2.0
    # Many small headers that arrive in one read, all parsed before the head's end.
    async with Server(answering(many)) as srv, HttpClient(timeout=3.0, max_header_bytes=1024) as client:
        with pytest.raises(ResponseTooLarge, match="response head is larger than 1024 bytes"):
            await client.request("GET", srv.url)
    async with Server(answering(many)) as srv, HttpClient(timeout=3.0, max_header_bytes=4096) as client:
        assert (await client.request("GET", srv.url)).headers["x-h59"] == "v" * 30


async def test_oversized_body_is_refused() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"z" * 1024 + b"\r\n0\r\n\r\n"
    async with Server(answering(ok(b"y" * 2000))) as declared, Server(answering(chunked)) as undeclared, \
            HttpClient(max_body_bytes=1000) as client:
        # A declared length over the cap is refused before the body is read.
        with pytest.raises(ResponseTooLarge, match="body of 2000 bytes is larger than the cap of 1000"):
            await client.request("GET", declared.url)
        with pytest.raises(ResponseTooLarge, match="body is larger than the cap of 1000 bytes"):
            await client.request("GET", undeclared.url)
    async with Server(answering(chunked)) as srv, HttpClient(max_body_bytes=1024) as client:
        assert len((await client.request("GET", srv.url)).content) == 1024


@pytest.mark.parametrize(
    ("url", "headers", "message"),
    [
        ("ftp://127.0.0.1/x", {}, "only http:// and https://"),
        ("127.0.0.1:8080/x", {}, "only http:// and https://"),
        ("http:///x", {}, "no host"),
        ("http://127.0.0.1:99999/", {}, "not a valid URL"),
        ("http://127.0.0.1/", {"Authorization": "key\r\nX-Evil: 1"}, "contains CR, LF or NUL"),
        ("http://127.0.0.1/", {"X-A": "line\nbreak"}, "contains CR, LF or NUL"),
        ("http://127.0.0.1/", {"Bad Name": "v"}, "invalid header name"),
        ("http://127.0.0.1/", {"Host": "elsewhere"}, "set by the client"),
        ("http://127.0.0.1/", {"X-A": "naïve"}, "not ASCII"),
    ],
)
async def test_invalid_requests_are_refused_before_connecting(
    client: HttpClient, url: str, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message) as err:
        await client.request("GET", url, headers=headers)
    assert isinstance(err.value, TransportError)
    assert client.connections_opened == 0


async def test_path_cannot_break_the_request_line(client: HttpClient) -> None:
    async with Server(answering(ok())) as srv:
        await client.request("GET", srv.url + "/ecom/v1/orders/a b\r\nX-Evil: 1")
    [req] = srv.requests
    assert req.target == "/ecom/v1/orders/a%20bX-Evil:%201"  # urlsplit drops CR/LF, quote the rest
    assert "x-evil" not in req.headers


async def test_connection_refused_is_a_connect_error(client: HttpClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError, match=f"cannot connect to http://127.0.0.1:{port}"):
        await client.request("GET", f"http://127.0.0.1:{port}/")


# -- TLS ------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_pem: Path
    server_ctx: ssl.SSLContext

    def client_ctx(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))


def make_pki(tmp: Path, *, dns: str | None = None, ip: str | None = "127.0.0.1") -> Pki:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wix-printer test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    if dns:
        names.append(x509.DNSName(dns))
    if ip:
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns or ip or "server")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = tmp / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = tmp / "server.pem"
    chain.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain)
    return Pki(ca_pem, server_ctx)


async def test_tls_with_a_trusted_ca_succeeds_and_keeps_the_connection(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with Server(answering(ok(b"secure")), tls=pki.server_ctx) as srv, \
            HttpClient(timeout=3.0, ssl_context=pki.client_ctx()) as client:
        assert srv.url.startswith("https://")
        first = await client.request("GET", srv.url + "/a")
        second = await client.request("POST", srv.url + "/b", content=b"{}")
    assert first.content == second.content == b"secure"
    assert srv.connections == 1  # one handshake for both
    assert [(r.method, r.target, r.body) for r in srv.requests] == [("GET", "/a", b""), ("POST", "/b", b"{}")]


async def test_tls_from_an_unknown_ca_is_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    # The default context: the system CA store, which does not know the test CA.
    async with Server(answering(ok()), tls=pki.server_ctx) as srv, HttpClient(timeout=3.0) as client:
        with pytest.raises(ConnectError, match=r"TLS certificate of .* not trusted: .*certificate") as err:
            await client.request("GET", srv.url)
    assert isinstance(err.value.__cause__, ssl.SSLCertVerificationError)
    assert srv.requests == []


async def test_tls_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, dns="www.wixapis.com", ip=None)
    async with Server(answering(ok()), tls=pki.server_ctx) as srv, \
            HttpClient(timeout=3.0, ssl_context=pki.client_ctx()) as client:
        with pytest.raises(ConnectError, match=r"not trusted: .*(mismatch|match)"):
            await client.request("GET", srv.url)
    assert srv.requests == []


async def test_plain_http_to_a_tls_server_is_an_error_not_a_hang(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with Server(answering(ok()), tls=pki.server_ctx) as srv, HttpClient(timeout=2.0) as client:
        with pytest.raises(TransportError):
            await client.request("GET", srv.url.replace("https://", "http://"))


def test_headers_mapping() -> None:
    h = Headers([("Retry-After", "5"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    assert h["retry-after"] == h.get("RETRY-AFTER") == "5"
    assert h.get("missing") is None
    assert h["SET-COOKIE"] == "a=1, b=2"
    assert len(h) == 2
    assert sorted(h) == ["retry-after", "set-cookie"]
