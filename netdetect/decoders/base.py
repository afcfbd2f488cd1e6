"""The one decoder contract (house rule 2): feed bytes, get events; only DecodeError escapes."""

from __future__ import annotations

from typing import Protocol

from netdetect.decoders.events import Event


class StreamDecoder(Protocol):
    """Decodes one direction of a byte stream.

    `feed` returns the events completed by `data` (an empty list means "need more data").
    It raises DecodeError (with the cause chained) once the stream is not, or no longer,
    this protocol; after that the decoder is not fed again. Every internal buffer is capped;
    data beyond a cap is dropped and counted in `overflow`, never fatal.
    """

    overflow: int

    def feed(self, data: bytes) -> list[Event]: ...
