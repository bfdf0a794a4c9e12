"""A small HTTP/1.1 client on asyncio streams for the Wix API (order search and get).

Why not httpx: importing it costs about 8 MiB of resident memory, on a box whose whole
budget is 45 MiB, for two JSON endpoints. The response parser is httptools (llhttp), which
uvicorn has already loaded into the service process, so parsing costs nothing extra.

What it does:
- http and https; TLS verifies the certificate and the host name against the system CA
  store (`ssl.create_default_context()`, Debian's ca-certificates on the box) unless a
  context is injected (the tests trust a CA of their own);
- one keep-alive connection per origin, reused across requests, because the service polls
  every 5 s and a TLS handshake each time costs a Pi real CPU. A reused connection that the
  server turns out to have closed before any byte of the answer is retried once on a fresh
  connection; once answer bytes have arrived nothing is retried here. The one retry
  re-sends the request, which is safe for what this client is used for (a search and a
  get, both reads);
- one total timeout per request (connect, TLS handshake, send and the whole answer);
- caps on the size of the answer's head and body, so a misbehaving peer (a captive portal,
  a proxy) cannot make the box swap.

What it deliberately does not do:
- proxies: HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY are ignored (the httpx client
  used before honoured them); the box must reach Wix directly;
- redirects: a 3xx is returned as it is;
- compression: no Accept-Encoding is sent, and a body is returned as received;
- HEAD and CONNECT requests, cookies, authentication schemes, HTTP/2, request streaming.

Every failure to get a complete answer is a `TransportError` (subclasses name the kind),
so a caller that retries transient trouble catches one class.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httptools
import msgspec

from wix_printer._version import __version__

USER_AGENT: Final = f"wix-printer/{__version__}"
DEFAULT_MAX_HEADER_BYTES: Final = 64 * 1024
# A search page of 100 full orders is well under 2 MiB; anything far beyond is not Wix.
DEFAULT_MAX_BODY_BYTES: Final = 16 * 1024 * 1024
# Longer than the service's 5 s poll so its connection is reused, shorter than the minutes
# after which home routers forget a quiet connection without telling either end (a
# request on such a connection would only fail by running into the timeout).
DEFAULT_KEEPALIVE_EXPIRY: Final = 60.0
_READ_CHUNK = 64 * 1024
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_CHARS = re.compile(r"[\r\n\x00]")
# Set here from the request itself; a caller's copy could contradict what is sent.
_RESERVED_HEADERS: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Already-encoded URLs must pass unchanged; anything else (space, CR/LF, non-ASCII) is
# percent-encoded so it cannot break the request line.
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


class TransportError(Exception):
    """No complete answer was received; trying again later may succeed."""


class ConnectError(TransportError):
    """DNS, TCP connect or the TLS handshake (including certificate verification) failed."""


class RequestTimeout(TransportError):
    """The request did not complete within its total time budget."""


class RemoteProtocolError(TransportError):
    """The peer closed the connection early or sent something that is not HTTP/1.x."""


class ResponseTooLarge(RemoteProtocolError):
    """The answer's head or body is larger than the client's cap."""


class InvalidRequest(TransportError):
    """Our side is wrong: a URL that is not http(s), CR/LF in a header, and the like.

    A TransportError, as httpx's UnsupportedProtocol and LocalProtocolError were, so a
    misconfigured base_url is reported as Wix being unreachable (with this message as the
    reason) rather than ending the caller's task.
    """


class Headers(Mapping[str, str]):
    """Case-insensitive header names; a repeated header reads as its values joined by ", "."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: list[tuple[str, str]] = []
        self._joined: dict[str, str] = {}
        for name, value in pairs:
            self._items.append((name, value))
            key = name.lower()
            self._joined[key] = f"{self._joined[key]}, {value}" if key in self._joined else value

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._joined)

    def __len__(self) -> int:
        return len(self._joined)

    def get_list(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(frozen=True)
class Response:
    status_code: int
    headers: Headers = field(default_factory=Headers)
    content: bytes = b""
    reason_phrase: str = ""
    http_version: str = "1.1"

    @property
    def text(self) -> str:
        charset = "utf-8"
        for param in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON raises ValueError (msgspec.DecodeError)."""
        return msgspec.json.decode(self.content)


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    target: str  # the request-target: path and query
    host_header: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def origin_text(self) -> str:
        return f"{self.scheme}://{self.host_header}"


def _parse_url(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidRequest(f"not a valid URL: {url!r} ({e})") from e
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"only http:// and https:// URLs are supported, not {url!r}")
    host = parts.hostname
    if not host:
        raise InvalidRequest(f"URL has no host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("credentials in the URL are not supported; send them as a header")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise InvalidRequest(f"host name cannot be encoded: {host!r}") from e
    if _BAD_VALUE_CHARS.search(host) or " " in host:
        raise InvalidRequest(f"invalid host name: {host!r}")
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    target = quote(parts.path or "/", safe=_SAFE_PATH)
    if parts.query:
        target += "?" + quote(parts.query, safe=_SAFE_QUERY)
    return _Target(scheme, host, port, target, host_header)


def _encode_head(method: str, target: _Target, headers: Mapping[str, str] | None, content: bytes | None) -> bytes:
    if not _TOKEN.fullmatch(method):
        raise InvalidRequest(f"invalid HTTP method: {method!r}")
    if method in ("HEAD", "CONNECT"):
        # httptools cannot be told that an answer to HEAD carries no body.
        raise InvalidRequest(f"{method} is not supported by this client")
    merged: dict[str, tuple[str, str]] = {
        "accept": ("Accept", "*/*"),
        "user-agent": ("User-Agent", USER_AGENT),
    }
    for name, value in (headers or {}).items():
        if not _TOKEN.fullmatch(name):
            raise InvalidRequest(f"invalid header name: {name!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidRequest(f"header {name} is set by the client, not by the caller")
        if _BAD_VALUE_CHARS.search(value):
            raise InvalidRequest(f"header {name} contains CR, LF or NUL")
        if not value.isascii():
            raise InvalidRequest(f"header {name} is not ASCII")
        merged[name.lower()] = (name, value)
    lines = [f"{method} {target.target} HTTP/1.1", f"Host: {target.host_header}"]
    lines += [f"{name}: {value}" for name, value in merged.values()]
    if content is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(content or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class _ResponseParser:
    """Collects one response from httptools callbacks and enforces the size caps."""

    def __init__(self, max_header_bytes: int, max_body_bytes: int) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._max_header_bytes = max_header_bytes
        self._max_body_bytes = max_body_bytes
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.head_bytes = 0  # of the current head, counted from what the parser handed over
        self.fed_in_head = 0  # bytes fed while the head was incomplete (incl. an unfinished line)
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        # Bytes after the answer (an unasked-for second response, garbage): the connection
        # is out of step with us and must not be reused.
        self.trailing = False
        self.too_large: str | None = None
        self.content_length: int | None = None
        self.chunked = False

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            self.trailing = True

    def on_status(self, status: bytes) -> None:
        if not self.done:
            self.reason += status
            self.head_bytes += len(status) + 16

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.done:
            return
        self.headers.append((name, value))
        self.head_bytes += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        if self.done:
            return
        self.headers_done = True
        if self.head_bytes > self._max_header_bytes:
            self.too_large = f"response head is larger than {self._max_header_bytes} bytes"
            return
        for name, value in self.headers:
            key = name.lower()
            if key == b"transfer-encoding":
                self.chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
            elif key == b"content-length" and value.strip().isdigit():
                self.content_length = int(value)
        if self.content_length is not None and self.content_length > self._max_body_bytes:
            self.too_large = (
                f"response body of {self.content_length} bytes is larger than the cap of {self._max_body_bytes}"
            )

    def on_body(self, body: bytes) -> None:
        if self.done or self.too_large:
            return
        self.body_bytes += len(body)
        if self.body_bytes > self._max_body_bytes:
            self.too_large = f"response body is larger than the cap of {self._max_body_bytes} bytes"
            self.body.clear()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.done:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self.reason = b""
            self.headers = []
            self.head_bytes = 0
            self.fed_in_head = 0
            self.headers_done = False
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.done = True

    # -- driving ------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not self.headers_done:
            self.fed_in_head += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            if not self.done:
                raise RemoteProtocolError("the server switched protocols; HTTP/1.1 only") from e
            self.trailing = True
        except httptools.HttpParserError as e:
            if not self.done:
                raise RemoteProtocolError(f"malformed HTTP response: {e}") from e
            self.trailing = True
        if self.too_large:
            raise ResponseTooLarge(self.too_large)
        if not self.headers_done and self.fed_in_head > self._max_header_bytes:
            raise ResponseTooLarge(f"response head is larger than {self._max_header_bytes} bytes")

    def feed_eof(self) -> None:
        """The peer closed the connection: the end of the body, or an answer cut short."""
        if self.done:
            return
        if not self.headers_done:
            raise RemoteProtocolError("connection closed before the response head was complete")
        if self.chunked:
            raise RemoteProtocolError(f"connection closed inside a chunked body after {self.body_bytes} bytes")
        if self.content_length is not None:
            raise RemoteProtocolError(
                f"connection closed after {self.body_bytes} of {self.content_length} body bytes"
            )
        # Neither length nor chunks: the body is delimited by the close (RFC 9112 6.3).
        self.status = self._parser.get_status_code()
        self.keep_alive = False
        self.done = True

    def response(self) -> Response:
        return Response(
            status_code=self.status,
            headers=Headers((n.decode("latin-1"), v.decode("latin-1")) for n, v in self.headers),
            content=b"".join(self.body),
            reason_phrase=self.reason.decode("latin-1"),
            http_version=self._parser.get_http_version(),
        )


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def usable(self, expiry: float) -> bool:
        # The StreamReader has no public "bytes waiting" check; bytes that arrived while
        # idle (a server's parting 408, say) would otherwise be read as our next answer.
        pending = len(getattr(self.reader, "_buffer", b""))
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and pending == 0
            and time.monotonic() - self.idle_since <= expiry
        )

    def close(self) -> None:
        self.writer.close()

    async def aclose(self) -> None:
        self.writer.close()
        try:
            # A TLS peer that never answers close_notify must not hold up shutdown.
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
        except (OSError, TimeoutError):
            pass


class _Stale(Exception):
    """The connection was closed before any byte of the answer arrived."""


class HttpClient:
    """HTTP/1.1 client with one kept-alive connection per origin; see the module docstring."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.timeout = timeout
        self._ssl_context = ssl_context
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[str, str, int], _Connection] = {}
        # Connections opened so far; lets tests (and /status, if ever wanted) see reuse.
        self.connections_opened = 0

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle = list(self._idle.values())
        self._idle.clear()
        for conn in idle:
            await conn.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send one request and read the whole answer, within `timeout` (default: the client's)."""
        target = _parse_url(url)
        head = _encode_head(method, target, headers, content)
        payload = head + content if content else head
        budget = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(budget):
                return await self._send(target, payload)
        except TimeoutError as e:
            raise RequestTimeout(f"no complete answer from {target.origin_text} within {budget:g} s") from e

    async def _send(self, target: _Target, payload: bytes) -> Response:
        conn = self._idle.pop(target.origin, None)
        if conn is not None:
            if conn.usable(self.keepalive_expiry):
                try:
                    return await self._exchange(conn, target, payload)
                except _Stale:
                    pass  # the server had closed it while idle; once more on a fresh one
            else:
                conn.close()
        conn = await self._connect(target)
        try:
            return await self._exchange(conn, target, payload)
        except _Stale as e:
            raise RemoteProtocolError(f"{target.origin_text} closed the connection without answering") from e

    async def _connect(self, target: _Target) -> _Connection:
        tls: ssl.SSLContext | None = None
        if target.scheme == "https":
            if self._ssl_context is None:
                # Made on first use: loading the CA store is not free, and plain-http use
                # (tests, the local fake Wix) never needs it.
                self._ssl_context = ssl.create_default_context()
            tls = self._ssl_context
        try:
            reader, writer = await asyncio.open_connection(
                target.host, target.port, ssl=tls, server_hostname=target.host if tls else None,
            )
        except ssl.SSLCertVerificationError as e:
            raise ConnectError(
                f"TLS certificate of {target.origin_text} not trusted: {e.verify_message or e}"
            ) from e
        except OSError as e:  # DNS (gaierror), refused, unreachable, TLS handshake errors
            raise ConnectError(f"cannot connect to {target.origin_text}: {e or type(e).__name__}") from e
        self.connections_opened += 1
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, target: _Target, payload: bytes) -> Response:
        parser = _ResponseParser(self.max_header_bytes, self.max_body_bytes)
        received = 0
        try:
            try:
                conn.writer.write(payload)
                await conn.writer.drain()
            except OSError as e:
                raise _Stale() from e
            while not parser.done:
                try:
                    data = await conn.reader.read(_READ_CHUNK)
                except OSError as e:
                    if received == 0:
                        raise _Stale() from e
                    raise RemoteProtocolError(f"connection to {target.origin_text} lost mid-answer: {e}") from e
                if not data:
                    if received == 0:
                        raise _Stale()
                    parser.feed_eof()
                    break
                received += len(data)
                parser.feed(data)
        except BaseException:
            # Half an exchange (or a cancelled one) leaves the connection out of step.
            conn.close()
            raise
        if parser.keep_alive and not parser.trailing:
            conn.idle_since = time.monotonic()
            previous = self._idle.pop(target.origin, None)
            if previous is not None:
                previous.close()  # a concurrent request's connection; keep one per origin
            self._idle[target.origin] = conn
        else:
            conn.close()
        return parser.response()
