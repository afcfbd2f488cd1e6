"""Packet sources: capture files, memory, and the protocol they share."""

from netdetect.capture.base import PacketSource
from netdetect.capture.files import (
    FileSource,
    FrameReader,
    capture_size,
    expand_paths,
    is_capture,
    read_frames,
)
from netdetect.capture.memory import MemorySource

__all__ = [
    "FileSource",
    "FrameReader",
    "MemorySource",
    "PacketSource",
    "capture_size",
    "expand_paths",
    "is_capture",
    "read_frames",
]
