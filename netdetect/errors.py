"""The exception tree: every error netdetect raises on purpose is a NetdetectError."""

from __future__ import annotations


class NetdetectError(Exception):
    """Base of every error netdetect raises on purpose."""


class DecodeError(NetdetectError):
    """Wire data that is not (or no longer) the protocol a decoder expected."""


class CaptureError(NetdetectError):
    """A capture file that cannot be read further; carries the file and byte offset."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"{path}: offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class SignatureError(NetdetectError):
    """A signature file that does not load; the message starts with path:line."""


class ConfigError(NetdetectError):
    """A configuration file that does not load; the message starts with path:line."""


class AgentError(NetdetectError):
    """The host-confirmation loop failed (bad report, broker trouble)."""


class AgentTimeout(AgentError):  # noqa: N818 - the name the design uses
    """A host did not answer a query before its deadline."""
