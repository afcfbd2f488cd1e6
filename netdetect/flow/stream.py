"""One direction of a TCP stream: in-order delivery of its first bytes, up to a cap."""

from __future__ import annotations

_MOD = 1 << 32
_HALF = 1 << 31


def seq_diff(a: int, b: int) -> int:
    """a - b in TCP sequence space (wraps at 2**32), as a signed number."""
    d = (a - b) % _MOD
    return d - _MOD if d >= _HALF else d


class StreamReassembler:
    """Reassembles one direction of a TCP stream by sequence number.

    Delivers contiguous bytes in order; buffers out-of-order segments (capped); trims
    retransmissions and overlaps (first copy wins, as most stacks do); reports a gap when
    a hole cannot be filled within the buffer cap, then skips ahead. Stops delivering once
    `max_bytes` have been delivered (the decoders only need the start of a stream).
    """

    __slots__ = (
        "delivered",
        "gaps",
        "max_bytes",
        "max_pending",
        "next_seq",
        "overflow",
        "pending",
        "pending_bytes",
        "retransmitted",
    )

    def __init__(self, max_bytes: int = 131072, max_pending: int = 65536) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0
        self.delivered = 0
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self.gaps = 0
        self.retransmitted = 0
        self.overflow = 0

    @property
    def done(self) -> bool:
        return self.delivered >= self.max_bytes

    def start(self, isn: int) -> None:
        """The SYN's sequence number is known: data starts at isn + 1."""
        if self.next_seq is None:
            self.next_seq = (isn + 1) % _MOD

    def feed(self, seq: int, data: bytes) -> tuple[list[bytes], bool]:
        """Add a segment. Returns (chunks now deliverable in order, gap_happened_before_them)."""
        if not data or self.done:
            return [], False
        if self.next_seq is None:
            # First seen mid-stream: take this segment as the start.
            self.next_seq = seq
        out: list[bytes] = []
        gap = False
        off = seq_diff(seq, self.next_seq)
        if off < 0:
            if -off >= len(data):
                self.retransmitted += 1
                return [], False
            data = data[-off:]
            off = 0
            self.retransmitted += 1
        if off > 0:
            if seq in self.pending or self.pending_bytes + len(data) > self.max_pending:
                if seq not in self.pending:
                    # Hole never filled (lost on the mirror port): skip ahead to the
                    # earliest buffered data or this segment, and say so.
                    gap = True
                    self.gaps += 1
                    self._skip_to_earliest(seq)
                    off = seq_diff(seq, self.next_seq)
                    if off > 0:
                        self._buffer(seq, data)
                        data = b""
                    elif off < 0:
                        data = data[-off:] if -off < len(data) else b""
                else:
                    self.retransmitted += 1
                    return [], False
            else:
                self._buffer(seq, data)
                return [], False
        if data:
            out.append(self._take(data))
        out.extend(self._drain())
        return [c for c in out if c], gap

    def _buffer(self, seq: int, data: bytes) -> None:
        prev = self.pending.get(seq)
        if prev is None or len(prev) < len(data):
            self.pending_bytes += len(data) - (len(prev) if prev else 0)
            self.pending[seq] = data

    def _skip_to_earliest(self, seq: int) -> None:
        assert self.next_seq is not None
        target = seq
        for s in self.pending:
            if seq_diff(s, target) < 0:
                target = s
        self.next_seq = target

    def _take(self, data: bytes) -> bytes:
        room = self.max_bytes - self.delivered
        if len(data) > room:
            self.overflow += len(data) - room
            data = data[:room]
        self.delivered += len(data)
        assert self.next_seq is not None
        self.next_seq = (self.next_seq + len(data)) % _MOD
        return data

    def _drain(self) -> list[bytes]:
        out: list[bytes] = []
        while self.pending and not self.done:
            assert self.next_seq is not None
            progressed = False
            for s in list(self.pending):
                off = seq_diff(s, self.next_seq)
                if off > 0:
                    continue
                chunk = self.pending.pop(s)
                self.pending_bytes -= len(chunk)
                if -off < len(chunk):
                    out.append(self._take(chunk[-off:] if off else chunk))
                    progressed = True
                else:
                    self.retransmitted += 1
            if not progressed:
                break
        if self.done and self.pending:
            self.pending.clear()
            self.pending_bytes = 0
        return out
