"""Parse one direction of an HTTP/1.x stream into message heads plus their JSON-RPC bodies.

Built for mining over HTTP (getwork, getblocktemplate, eth_getWork POSTs, X-Stratum
redirects): framing follows RFC 9112 (Content-Length, chunked, read-until-close responses,
keep-alive and pipelining); bodies are kept only up to a cap and only to read JSON-RPC from them.
A direction's decoder cannot see the other direction, so a response to HEAD that announces a
Content-Length is read as if it had a body; mining clients do not send HEAD.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from typing import Final

from netdetect.asciinum import is_ascii_digits
from netdetect.decoders.events import Event, HttpMessage, StratumMessage
from netdetect.decoders.jsonrpc import messages_of_body
from netdetect.errors import DecodeError

__all__ = ["HttpDecoder"]

MAX_TEXT: Final = 512
_MAX_CHUNK_LINE: Final = 1024

_REQUEST_LINE = re.compile(rb"([A-Z][A-Z_-]{0,19}) (\S{1,8192}) HTTP/(\d)\.(\d)")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: .*)?")
_METHOD_PREFIX = re.compile(rb"[A-Z][A-Z_-]{0,19}(?: |$)")
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,16})[ \t]*(?:;.*)?")

# States of the per-direction parser.
_HEAD, _BODY_LENGTH, _CHUNK_LINE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS, _UNTIL_CLOSE, _TUNNEL = (
    range(8)
)


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:MAX_TEXT]


def _basic_user(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, _, _ = raw.partition(b":")
    return user.decode("utf-8", "replace")[:MAX_TEXT]


class _Head:
    """The parsed head of the message whose body is being read."""

    __slots__ = ("fields", "is_request", "method", "path", "status")

    def __init__(
        self,
        is_request: bool,
        method: str | None,
        path: str | None,
        status: int | None,
        fields: dict[str, str],
    ) -> None:
        self.is_request = is_request
        self.method = method
        self.path = path
        self.status = status
        self.fields = fields


class HttpDecoder:
    """HTTP/1.0 and 1.1, one instance per direction of a TCP stream.

    `overflow` counts bodies cut at `max_body` (the rest is skipped, framing kept) and heads
    over `max_head` (decoding stops there, without error). `messages` counts emitted messages.
    """

    def __init__(self, *, max_head: int = 16384, max_body: int = 65536) -> None:
        self.max_head = max_head
        self.max_body = max_body
        self.overflow = 0
        self.messages = 0
        self._buf = bytearray()
        self._state = _HEAD
        self._head: _Head | None = None
        self._body = bytearray()
        self._body_cut = False
        self._remaining = 0
        self._failed: DecodeError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held (head in progress plus kept body); capped by max_head + max_body."""
        return len(self._buf) + len(self._body)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Bytes in, completed messages out (empty: need more data)."""
        if self._failed is not None:
            raise DecodeError("decoder already failed") from self._failed
        if self._state == _TUNNEL or not data:
            return []
        self._buf += data
        out: list[Event] = []
        try:
            while self._step(out):
                pass
        except DecodeError as exc:
            self._failed = exc
            self._buf.clear()
            raise
        return out

    def close(self) -> list[Event]:
        """The stream ended: finish a read-until-close response. Never raises."""
        if self._state == _UNTIL_CLOSE and self._head is not None and self._failed is None:
            out: list[Event] = []
            self._finish(out)
            return out
        return []

    # Each step consumes what it can; it returns False when it needs more data.
    def _step(self, out: list[Event]) -> bool:
        state = self._state
        buf = self._buf
        if state == _HEAD:
            return self._read_head(out)
        if state == _BODY_LENGTH:
            take = min(self._remaining, len(buf))
            self._keep(buf, take)
            self._remaining -= take
            if self._remaining:
                return False
            self._finish(out)
            return True
        if state == _UNTIL_CLOSE:
            self._keep(buf, len(buf))
            return False
        if state == _CHUNK_LINE:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > _MAX_CHUNK_LINE:
                    raise DecodeError("chunk-size line too long")
                return False
            line = bytes(buf[:nl]).rstrip(b"\r")
            del buf[: nl + 1]
            m = _CHUNK_SIZE.fullmatch(line)
            if m is None:
                raise DecodeError(f"bad chunk-size line {line[:32]!r}")
            self._remaining = int(m.group(1), 16)
            self._state = _CHUNK_DATA if self._remaining else _TRAILERS
            return True
        if state == _CHUNK_DATA:
            take = min(self._remaining, len(buf))
            self._keep(buf, take)
            self._remaining -= take
            if self._remaining:
                return False
            self._state = _CHUNK_CRLF
            return True
        if state == _CHUNK_CRLF:
            if len(buf) < 2 and bytes(buf) in (b"", b"\r"):
                return False
            if buf.startswith(b"\r\n"):
                del buf[:2]
            elif buf.startswith(b"\n"):
                del buf[:1]
            else:
                raise DecodeError("chunk data not followed by CRLF")
            self._state = _CHUNK_LINE
            return True
        if state == _TRAILERS:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > self.max_head:
                    raise DecodeError("trailer section too long")
                return False
            line = bytes(buf[:nl]).rstrip(b"\r")
            del buf[: nl + 1]
            if not line:
                self._finish(out)
            return True
        return False  # _TUNNEL

    def _keep(self, buf: bytearray, take: int) -> None:
        room = self.max_body - len(self._body)
        if take > room:
            self._body_cut = True
        if room > 0:
            self._body += buf[: min(take, room)]
        del buf[:take]

    def _read_head(self, out: list[Event]) -> bool:
        buf = self._buf
        # RFC 9112 section 2.2: ignore empty lines before a request line.
        skip = len(buf) - len(buf.lstrip(b"\r\n"))
        if skip:
            del buf[:skip]
        if not buf:
            return False
        if not self._plausible_start(buf):
            raise DecodeError(f"not HTTP: {bytes(buf[:32])!r}")
        end = buf.find(b"\r\n\r\n")
        sep = 4
        lf = buf.find(b"\n\n")
        if lf >= 0 and (end < 0 or lf < end):
            end, sep = lf, 2
        if end < 0:
            nl = buf.find(b"\n")
            if nl >= 0:
                self._start_line(bytes(buf[:nl]).rstrip(b"\r"))
            if len(buf) > self.max_head:
                self.overflow += 1
                self._state = _TUNNEL
                buf.clear()
            return False
        if end > self.max_head:
            self.overflow += 1
            self._state = _TUNNEL
            buf.clear()
            return False
        head = bytes(buf[:end])
        del buf[: end + sep]
        self._begin(head, out)
        return True

    @staticmethod
    def _plausible_start(buf: bytearray) -> bool:
        if buf.startswith(b"HTTP/"):
            return True
        if len(buf) < 5 and b"HTTP/".startswith(buf):
            return True
        return _METHOD_PREFIX.match(buf) is not None

    @staticmethod
    def _start_line(line: bytes) -> tuple[bool, str | None, str | None, int | None]:
        m = _STATUS_LINE.fullmatch(line)
        if m is not None:
            return False, None, None, int(m.group(3))
        m = _REQUEST_LINE.fullmatch(line)
        if m is not None:
            return True, m.group(1).decode("ascii"), m.group(2).decode("latin-1"), None
        raise DecodeError(f"bad HTTP start line {line[:64]!r}")

    def _begin(self, head: bytes, out: list[Event]) -> None:
        lines = head.split(b"\n")
        is_request, method, path, status = self._start_line(lines[0].rstrip(b"\r"))
        fields: dict[str, str] = {}
        for raw in lines[1:]:
            line = raw.rstrip(b"\r")
            name, colon, value = line.partition(b":")
            if not colon or not name or name[:1] in b" \t":
                continue  # obs-fold continuation or junk: not worth failing a detector over
            key = name.strip().lower().decode("latin-1")
            text = value.strip().decode("latin-1")
            # Repeated fields: the first is what a lenient server would act on.
            fields.setdefault(key, text)
            if key == "content-length" and fields[key] != text:
                raise DecodeError("conflicting Content-Length fields")
        self._head = _Head(is_request, method, path, status, fields)
        self._body.clear()
        self._body_cut = False

        te = fields.get("transfer-encoding", "").lower()
        if te:
            if te.rsplit(",", 1)[-1].strip() == "chunked":
                self._state = _CHUNK_LINE
                return
            if is_request:
                raise DecodeError(f"request with Transfer-Encoding {te!r} but not chunked")
            self._state = _UNTIL_CLOSE
            return
        cl = fields.get("content-length")
        if cl is not None:
            if not is_ascii_digits(cl) or len(cl) > 15:
                raise DecodeError(f"bad Content-Length {cl[:32]!r}")
            self._remaining = int(cl)
            if self._remaining:
                self._state = _BODY_LENGTH
                return
            self._finish(out)
            return
        if is_request or (status is not None and (status < 200 or status in (204, 304))):
            self._finish(out)
            return
        self._state = _UNTIL_CLOSE

    def _finish(self, out: list[Event]) -> None:
        head = self._head
        if head is None:
            return
        f = head.fields
        if self._body_cut:
            self.overflow += 1
        rpc = () if self._body_cut else self._rpc(f)
        out.append(
            HttpMessage(
                is_request=head.is_request,
                method=head.method,
                path=_clip(head.path),
                status=head.status,
                host=_clip(f.get("host")),
                user_agent=_clip(f.get("user-agent")),
                content_type=_clip(f.get("content-type")),
                x_mining_extensions=_clip(f.get("x-mining-extensions")),
                x_stratum=_clip(f.get("x-stratum")),
                x_long_polling=_clip(f.get("x-long-polling")),
                authorization_user=_basic_user(f.get("authorization")),
                rpc=rpc,
                upgrade=_clip(f.get("upgrade")),
            )
        )
        self.messages += 1
        self._head = None
        self._body.clear()
        self._state = _HEAD
        # After a tunnel opens the bytes are another protocol, not more HTTP.
        upgrading = "upgrade" in f and "upgrade" in f.get("connection", "").lower()
        if head.status == 101 or (head.is_request and (head.method == "CONNECT" or upgrading)):
            self._state = _TUNNEL

    def _rpc(self, fields: dict[str, str]) -> tuple[StratumMessage, ...]:
        body = bytes(self._body)
        coding = fields.get("content-encoding", "").strip().lower()
        if coding in ("gzip", "x-gzip", "deflate"):
            body = self._inflate(body, coding)
        return messages_of_body(body)

    def _inflate(self, body: bytes, coding: str) -> bytes:
        wbits = 31 if "gzip" in coding else 15
        try:
            z = zlib.decompressobj(wbits=wbits)
            out = z.decompress(body, self.max_body + 1)
        except zlib.error:
            if wbits == 15:
                # "deflate" is often sent raw, without the zlib wrapper (RFC 9110 8.4.1.2).
                try:
                    z = zlib.decompressobj(wbits=-15)
                    out = z.decompress(body, self.max_body + 1)
                except zlib.error:
                    return b""
            else:
                return b""
        if len(out) > self.max_body:
            self.overflow += 1
            return b""
        return out
