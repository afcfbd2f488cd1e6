"""Decimal numbers in file and wire text: ASCII digits only.

`str.isdigit()` and `\\d` also accept Unicode digits ('²', Arabic-Indic, fullwidth), some of
which `int()` then refuses with a ValueError: text from a file or the wire goes through these
helpers, so a stray superscript is a parse error with a position, never a traceback.
"""

from __future__ import annotations

_DIGITS = frozenset("0123456789")


def is_ascii_digits(text: str) -> bool:
    """True when `text` is one or more of the ASCII digits 0-9 and nothing else."""
    return bool(text) and all(c in _DIGITS for c in text)


def parse_uint(text: str, *, max_digits: int = 20) -> int | None:
    """`text` as a non-negative decimal integer, or None unless it is 1..max_digits ASCII digits.

    The length cap keeps int() linear and refuses numbers no field here could hold.
    """
    if len(text) > max_digits or not is_ascii_digits(text):
        return None
    return int(text)
