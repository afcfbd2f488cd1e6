"""Optional C prefilter for capture files: hand the engine only the packets detection uses.

Built on pcapy-ng's in-C classifier (`loop_filtered`, flow heads) and libpcap BPF. The file is
read twice by libpcap, in C, as two disjoint streams that are merged back by timestamp:

- the *bulk* stream: plain IPv4 (untagged or one 802.1Q tag) TCP/UDP that is not DNS, not a
  TCP control segment, not a fragment, not a mirror tunnel, and not a TCP segment carrying
  1..`small` bytes of payload. Of it only the first `head_packets` packets of each direction
  of each flow reach Python; the rest is dropped in C without becoming a Python object;
- the *pass* stream: everything else (IPv6, tunnels, non-IP, DNS, SYN/FIN/RST, fragments and
  every small TCP segment), passed through whole.

What a prefiltered run can miss, by construction (the unfiltered run does not):

- evidence in a packet of the bulk stream past a flow's head: a TCP segment larger than
  `small` bytes (a mining job push above that size, an HTTP body split over full-size
  segments) and every UDP datagram past the head (e.g. a UDP-based pool protocol);
- stream reassembly sees gaps where bulk segments were dropped, so decoders resynchronise
  mid-stream instead of decoding the first 64 KiB contiguously (TLS certificates spanning
  more than the head window are not read);
- byte counts: dropped segments are not counted, so per-flow byte totals (and the decisions
  based on them: "bulk transfer", "over 512 KiB, stop watching") come later or not at all;
- the flow-head table of the classifier is reset every `chunk` packets and keyed by the
  directional 5-tuple without expiry, so a long-lived flow gets a fresh head window per
  chunk (never fewer packets than the unfiltered run, only more).

Link types other than Ethernet are passed through unfiltered (the classifier needs the IPv4
header offset, and BPF's `vlan` keyword only applies to Ethernet).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from netdetect.errors import CaptureError

__all__ = ["HEAD_PACKETS", "SMALL_PAYLOAD", "PrefilterStats", "PrefilteredFile", "available"]

HEAD_PACKETS: Final = 8  # per direction: SYN, handshake, first requests and replies
SMALL_PAYLOAD: Final = 1400  # the engine's sample limit: JSON-RPC lines fit below it
_CHUNK: Final = 1 << 16  # bulk-stream packets per loop_filtered call
_BATCH: Final = 4096  # pass-stream packets per next_batch call
_FLOW_HEAD: Final = 1  # loop_filtered class of a flow's first packets
_DLT_EN10MB: Final = 1

_TUNNELS: Final = (
    "ip proto 47 or ip proto 4 or ip proto 41 or udp dst port 4789 or udp dst port 6081"
)
_CONTROL: Final = "tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0"
_DNS: Final = "port 53 or port 5353 or port 5355"
_FRAGMENT: Final = "ip[6:2] & 0x3fff != 0"
_TCP_PAYLOAD: Final = "(ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2))"


def _bulk_expr(small: int) -> str:
    core = (
        f"ip and (tcp or udp) and not ({_TUNNELS}) and not ({_FRAGMENT}) and not ({_DNS})"
        f" and not (tcp and ({_CONTROL}))"
        f" and not (tcp and {_TCP_PAYLOAD} > 0 and {_TCP_PAYLOAD} <= {small})"
    )
    # `vlan` shifts every later offset by one tag, so the tagged half repeats the test.
    return f"({core}) or (vlan and {core})"


def available() -> bool:
    """Whether pcapy-ng (with the in-C classifier, not the old pcapy) is importable."""
    try:
        import pcapy  # optional dependency: only the prefilter needs it
    except ImportError:
        return False
    return hasattr(pcapy, "PACKET_FANOUT_HASH")


@dataclass(slots=True)
class PrefilterStats:
    """What the prefilter did to one file."""

    heads: int = 0  # bulk-stream packets admitted as flow heads
    dropped: int = 0  # bulk-stream packets dropped in C
    passed: int = 0  # pass-stream packets handed on whole

    @property
    def seen(self) -> int:
        return self.heads + self.dropped + self.passed


class PrefilteredFile:
    """A capture file as a PacketSource, with the bulk past each flow's head dropped in C."""

    def __init__(
        self,
        path: str,
        *,
        head_packets: int = HEAD_PACKETS,
        small: int = SMALL_PAYLOAD,
        chunk: int = _CHUNK,
    ) -> None:
        if head_packets < 1 or small < 0 or chunk < 1:
            raise ValueError("head_packets and chunk must be >= 1, small >= 0")
        self.path = path
        self.name = path
        self.head_packets = head_packets
        self.small = small
        self.chunk = chunk
        self.stats = PrefilterStats()

    def frames(self) -> Iterator[tuple[float, int, bytes]]:
        pcapy = _pcapy(self.path)
        bulk_expr = _bulk_expr(self.small)
        bulk = _open(pcapy, self.path)
        linktype = bulk.datalink()
        if linktype != _DLT_EN10MB:
            # Nothing to classify: every packet goes through.
            bulk.close()
            yield from self._passthrough(pcapy, None, linktype)
            return
        try:
            bulk.setfilter(bulk_expr)
        except pcapy.PcapError as exc:
            raise CaptureError(self.path, 0, f"prefilter BPF: {exc}") from exc
        yield from _merge(
            self._heads(pcapy, bulk), self._passthrough(pcapy, f"not ({bulk_expr})", linktype)
        )

    def _heads(self, pcapy: Any, cap: Any) -> Iterator[tuple[float, int, bytes]]:
        stats = self.stats
        out: list[tuple[float, int, bytes]] = []
        append = out.append

        def keep(hdr: Any, data: bytes, _cls: int) -> None:
            sec, usec = hdr.getts()
            append((sec + usec / 1e6, _DLT_EN10MB, data))

        try:
            while True:
                try:
                    res = cap.loop_filtered(
                        self.chunk, keep, 1 << _FLOW_HEAD, b"", self.head_packets
                    )
                except pcapy.PcapError as exc:
                    raise CaptureError(self.path, 0, f"prefilter read error: {exc}") from exc
                admitted, dropped = res[0], res[1]
                stats.heads += admitted
                stats.dropped += dropped
                yield from out
                out.clear()
                if admitted + dropped < self.chunk:
                    return
        finally:
            cap.close()

    def _passthrough(
        self, pcapy: Any, expr: str | None, linktype: int
    ) -> Iterator[tuple[float, int, bytes]]:
        cap = _open(pcapy, self.path)
        stats = self.stats
        try:
            if expr is not None:
                try:
                    cap.setfilter(expr)
                except pcapy.PcapError as exc:
                    raise CaptureError(self.path, 0, f"prefilter BPF: {exc}") from exc
            while True:
                try:
                    data, meta = cap.next_batch(_BATCH)
                except pcapy.PcapError as exc:
                    raise CaptureError(self.path, 0, f"prefilter read error: {exc}") from exc
                if not meta:
                    return
                view = memoryview(meta).cast("I")
                stats.passed += len(view) // 4
                for i in range(0, len(view), 4):
                    off = view[i + 2]
                    yield view[i] + view[i + 1] / 1e6, linktype, data[off : off + view[i + 3]]
        finally:
            cap.close()


def _merge(
    a: Iterator[tuple[float, int, bytes]], b: Iterator[tuple[float, int, bytes]]
) -> Iterator[tuple[float, int, bytes]]:
    """Two capture-ordered streams as one, by timestamp; on a tie `a` goes first."""
    x = next(a, None)
    y = next(b, None)
    while x is not None and y is not None:
        if y[0] < x[0]:
            yield y
            y = next(b, None)
        else:
            yield x
            x = next(a, None)
    if x is not None:
        yield x
        yield from a
    if y is not None:
        yield y
        yield from b


def _pcapy(path: str) -> Any:
    try:
        import pcapy  # optional dependency: only the prefilter needs it
    except ImportError as exc:
        raise CaptureError(
            path, 0, "the prefilter needs pcapy-ng (pip install 'netdetect[live]')"
        ) from exc
    return pcapy


def _open(pcapy: Any, path: str) -> Any:
    try:
        return pcapy.open_offline(path)
    except pcapy.PcapError as exc:
        raise CaptureError(path, 0, f"prefilter cannot open: {exc}") from exc
