"""The PacketSource protocol every frame producer (file, live socket, memory) satisfies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class PacketSource(Protocol):
    """Produces captured frames as (epoch seconds, link type, frame bytes), in capture order.

    `name` identifies the source in logs and alerts (a file path, an interface name). A source
    that cannot go on raises CaptureError after yielding every good frame it had.
    """

    name: str

    def frames(self) -> Iterator[tuple[float, int, bytes]]: ...
