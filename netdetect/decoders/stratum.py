"""Split one direction of a newline-delimited JSON-RPC stream (every Stratum dialect) into messages.

EthereumStratum/2.0.0 compression (EIP-1571, "Session Handling - Hello"): once the pool answers
``mining.hello`` with ``"encoding": "gzip"``, both parties "MUST gzip compress all next
messages". The draft does not say how compressed messages are framed, and its line rule (LF
ends a message and appears nowhere else) cannot hold for deflate output, which may contain
0x0a. Our reading: every message is one self-delimiting gzip member (RFC 1952: the deflate
stream ends itself and an 8-byte trailer follows), optionally followed by an LF kept from the
line framing; a member inflates to one or more JSON lines. So after the switch the decoder
looks for the gzip magic 1f 8b 08 at each message boundary, inflates with an output cap, and
still accepts a plain JSON line there (an implementation that never compressed).
"""

from __future__ import annotations

import zlib
from typing import Final

from netdetect.decoders.events import Event, StratumMessage
from netdetect.decoders.jsonrpc import parse_json_messages
from netdetect.errors import DecodeError

__all__ = ["LineDecoder"]

_GZIP_MAGIC: Final = b"\x1f\x8b\x08"
_WS: Final = b" \t\r\n"
MAX_BAD_LINES: Final = 8
"""Consecutive undecodable lines after which the stream is no longer JSON lines."""


class LineDecoder:
    """Newline-delimited JSON-RPC, one instance per direction of a TCP stream.

    `overflow` counts lines (or compressed members) dropped for exceeding the caps,
    `messages` the JSON-RPC messages emitted, `errors` the lines that were not valid JSON-RPC
    after the stream had proven itself.
    """

    def __init__(
        self, *, midstream: bool = False, max_line: int = 65536, max_buffer: int = 262144
    ) -> None:
        if max_line <= 0 or max_buffer < max_line:
            raise ValueError("need 0 < max_line <= max_buffer")
        self.max_line = max_line
        self.max_buffer = max_buffer
        self.overflow = 0
        self.messages = 0
        self.errors = 0
        self.encoding = "plain"
        self._buf = bytearray()
        self._syncing = midstream  # drop bytes up to the first LF: we joined mid-line
        self._skipping = False  # inside an over-long line, dropping up to its LF
        self._proven = False  # a complete line has parsed as JSON
        self._bad_run = 0
        self._failed: DecodeError | None = None
        self._hello_sent = False  # this direction sent an ES/2.0.0 mining.hello
        self._z: zlib._Decompress | None = None
        self._zout = bytearray()
        self._zin = 0
        self._zskip = False  # dropping the rest of an over-cap gzip member

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message (always <= max_buffer)."""
        return len(self._buf) + len(self._zout)

    def switch_encoding(self, encoding: str) -> None:
        """Decode the messages that follow as `encoding` ("gzip" or "plain").

        Call it on both directions once a pool's ES/2.0.0 hello result announces gzip; the
        direction that carried that result switches itself as soon as it decodes it.
        """
        if encoding not in ("gzip", "plain"):
            raise ValueError(f"unknown encoding {encoding!r}")
        self.encoding = encoding

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Bytes in, completed messages out (empty: need more data)."""
        if self._failed is not None:
            raise DecodeError("decoder already failed") from self._failed
        try:
            return self._feed(data)
        except DecodeError as exc:
            self._failed = exc
            self._buf.clear()
            raise

    def close(self) -> list[Event]:
        """The stream ended: a last line without its LF still counts. Never raises."""
        out: list[Event] = []
        if self._failed is None and self._buf and not (self._syncing or self._skipping):
            line = bytes(self._buf)
            self._buf.clear()
            try:
                self._line(line, out)
            except DecodeError as exc:
                self._failed = exc
        return out

    def _feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if not data:
            return []
        self._buf += data
        if self._syncing or self._skipping:
            nl = self._buf.find(b"\n")
            if nl < 0:
                self._buf.clear()
                return []
            self._syncing = self._skipping = False
            del self._buf[: nl + 1]
        out: list[Event] = []
        if self.encoding == "gzip":
            self._drain_gzip(out)
        else:
            self._drain_lines(out)
        return out

    def _drain_lines(self, out: list[Event]) -> None:
        buf = self._buf
        start = 0
        while True:
            if self.encoding == "gzip":
                # A hello result switched this direction mid-buffer.
                del buf[:start]
                self._drain_gzip(out)
                return
            if self._hello_sent and buf.startswith(_GZIP_MAGIC, start):
                self.encoding = "gzip"
                continue
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._line(bytes(buf[start:nl]), out)
            start = nl + 1
        del buf[:start]
        if len(buf) > self.max_line:
            self.overflow += 1
            buf.clear()
            self._skipping = True

    def _line(self, line: bytes, out: list[Event]) -> None:
        line = line.strip(_WS)
        if not line:
            return
        if len(line) > self.max_line:
            self.overflow += 1
            return
        if line[0] not in b"{[":
            self._bad(line, None)
            return
        try:
            msgs = parse_json_messages(line)
        except DecodeError as exc:
            self._bad(line, exc)
            return
        self._proven = True
        self._bad_run = 0
        self._emit(msgs, out)

    def _emit(self, msgs: list[StratumMessage], out: list[Event]) -> None:
        self.messages += len(msgs)
        for msg in msgs:
            if msg.method == "mining.hello" and msg.client_side:
                self._hello_sent = True
            elif msg.encoding == "gzip" and msg.dialect == "ethereumstratum-2":
                self.encoding = "gzip"
        out.extend(msgs)

    def _bad(self, line: bytes, cause: DecodeError | None) -> None:
        if not self._proven:
            err = DecodeError(f"not JSON lines: {line[:32]!r}")
            raise err from cause
        self.errors += 1
        self._bad_run += 1
        if self._bad_run >= MAX_BAD_LINES:
            raise DecodeError(f"{self._bad_run} undecodable lines in a row") from cause

    def _drain_gzip(self, out: list[Event]) -> None:
        buf = self._buf
        while True:
            if self._z is None:
                if self._zskip:
                    self._resync(buf, at=0)
                    if not buf.startswith(_GZIP_MAGIC):
                        return
                    self._zskip = False
                skip = len(buf) - len(buf.lstrip(_WS))
                del buf[:skip]
                if not buf:
                    return
                if buf[0] in b"{[":
                    nl = buf.find(b"\n")
                    if nl < 0:
                        if len(buf) > self.max_line:
                            self.overflow += 1
                            self._resync(buf)
                        return
                    self._line(bytes(buf[:nl]), out)
                    del buf[: nl + 1]
                    continue
                if len(buf) < len(_GZIP_MAGIC) and _GZIP_MAGIC.startswith(buf):
                    return
                if not buf.startswith(_GZIP_MAGIC):
                    self._bad(bytes(buf[:32]), None)
                    self._resync(buf)
                    continue
                self._z = zlib.decompressobj(wbits=31)
                self._zout.clear()
                self._zin = 0
            if not buf:
                return
            z = self._z
            room = self.max_line + 1 - len(self._zout)
            try:
                chunk = z.decompress(bytes(buf), room)
            except zlib.error as exc:
                self._z = None
                self._bad(bytes(buf[:32]), DecodeError(f"bad gzip member: {exc}"))
                self._resync(buf)
                continue
            self._zout += chunk
            if len(self._zout) > self.max_line:
                self.overflow += 1
                self._z = None
                self._zout.clear()
                self._resync(buf)
                self._zskip = not buf.startswith(_GZIP_MAGIC)
                continue
            if z.eof:
                rest = z.unused_data
                del buf[: len(buf) - len(rest)]
                self._z = None
                text = bytes(self._zout)
                self._zout.clear()
                for piece in text.split(b"\n"):
                    self._line(piece, out)
                if self.encoding != "gzip":
                    self._drain_lines(out)
                    return
                continue
            self._zin += len(buf)
            buf.clear()
            if self._zin > self.max_buffer:
                self.overflow += 1
                self._z = None
                self._zout.clear()
                self._zskip = True
            return

    def _resync(self, buf: bytearray, at: int = 1) -> None:
        """Drop bytes up to the next gzip member at or after `at` (or everything)."""
        nxt = buf.find(_GZIP_MAGIC, at)
        if nxt < 0:
            # Keep a possible magic prefix that the next segment completes.
            keep = 2 if buf.endswith(_GZIP_MAGIC[:2]) else 1 if buf.endswith(_GZIP_MAGIC[:1]) else 0
            del buf[: len(buf) - keep]
        else:
            del buf[:nxt]
