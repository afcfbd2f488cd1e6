"""An in-memory PacketSource: the fake that tests and demos feed frames through."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from netdetect.errors import NetdetectError


class MemorySource:
    """Replays a fixed list of (ts, link type, frame) tuples; iterable any number of times.

    `error`, when given, is raised after the last frame, the way a damaged capture file ends,
    so that callers' error paths can be tested without writing a broken file.
    """

    def __init__(
        self,
        frames: Iterable[tuple[float, int, bytes]],
        name: str = "memory",
        error: NetdetectError | None = None,
    ) -> None:
        self.name = name
        self._frames = list(frames)
        self._error = error

    def __len__(self) -> int:
        return len(self._frames)

    def frames(self) -> Iterator[tuple[float, int, bytes]]:
        yield from self._frames
        if self._error is not None:
            raise self._error
