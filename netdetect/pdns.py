"""Passive DNS: which names recently resolved to an address, learned from observed answers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from netdetect.decoders.events import DnsMessage

__all__ = ["PassiveDns", "answer_addresses"]

_A = 1
_AAAA = 28
_CNAME = 5
_MAX_CHAIN = 16  # CNAME chains longer than this are not followed further


class PassiveDns:
    """Bounded address → names map with per-answer expiry.

    Each A/AAAA answer maps its address to its owner name and every name that reaches that
    owner through the message's CNAME records (back to the question name), so a flow to a
    CDN address still names the pool host the client asked for. Entries are kept per
    address in learn order; the least recently learned address is evicted when full.
    Time is always an argument.
    """

    __slots__ = (
        "_map",
        "evictions",
        "max_entries",
        "max_names_per_ip",
        "max_ttl",
        "min_ttl",
        "name_evictions",
    )

    def __init__(
        self,
        max_entries: int = 100_000,
        max_names_per_ip: int = 8,
        min_ttl: int = 60,
        max_ttl: int = 86400,
    ) -> None:
        if max_entries < 1 or max_names_per_ip < 1:
            raise ValueError("PassiveDns needs room for at least one entry and one name")
        if min_ttl > max_ttl:
            raise ValueError(f"min_ttl {min_ttl} > max_ttl {max_ttl}")
        self.max_entries = max_entries
        self.max_names_per_ip = max_names_per_ip
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.evictions = 0  # addresses dropped because the map was full
        self.name_evictions = 0  # names dropped because an address had too many
        # ip -> {name: expiry}; both levels ordered oldest-learned first.
        self._map: OrderedDict[str, dict[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._map)

    def learn(self, msg: DnsMessage, now: float) -> None:
        """Record the address → name mappings of one DNS response."""
        answers = msg.answers
        if not answers or msg.rcode != 0 or not msg.is_response:
            return
        # CNAME owner for each target: walking it backwards leads to the question name.
        alias_of: dict[str, str] | None = None
        for rr in answers:
            if rr.rtype == _CNAME:
                value = rr.value
                if alias_of is None:
                    alias_of = {}
                if value not in alias_of and value != rr.name:
                    alias_of[value] = rr.name
        lo = self.min_ttl
        hi = self.max_ttl
        for rr in answers:
            rtype = rr.rtype
            if rtype != _A and rtype != _AAAA:  # noqa: PLR1714 - two int compares
                continue
            expiry = now + min(hi, max(lo, rr.ttl))
            name = rr.name
            if alias_of is None:
                self._add_one(rr.value, name, expiry)
                continue
            chain = [name]
            while len(chain) <= _MAX_CHAIN:
                name_or_none = alias_of.get(name)
                if name_or_none is None or name_or_none in chain:
                    break
                name = name_or_none
                chain.append(name)
            # chain runs owner → question name; the question name goes in last, so it is the
            # first one names_for() returns and the last one a full address evicts.
            self._add(rr.value, chain, expiry)

    def _add_one(self, ip: str, name: str, expiry: float) -> None:
        # _add for the common answer without aliases, without building a chain.
        entry = self._map.get(ip)
        if entry is None:
            self._map[ip] = {name: expiry}
            if len(self._map) > self.max_entries:
                self._map.popitem(last=False)
                self.evictions += 1
            return
        self._map.move_to_end(ip)
        entry.pop(name, None)
        entry[name] = expiry
        if len(entry) > self.max_names_per_ip:
            del entry[next(iter(entry))]
            self.name_evictions += 1

    def _add(self, ip: str, names: list[str], expiry: float) -> None:
        entry = self._map.get(ip)
        if entry is None:
            entry = {}
            self._map[ip] = entry
            if len(self._map) > self.max_entries:
                self._map.popitem(last=False)
                self.evictions += 1
        else:
            self._map.move_to_end(ip)
        for name in names:
            # Re-learning a name refreshes it: drop and re-insert to make it the newest.
            entry.pop(name, None)
            entry[name] = expiry
            if len(entry) > self.max_names_per_ip:
                del entry[next(iter(entry))]
                self.name_evictions += 1

    def names_for(self, ip: str, now: float) -> tuple[str, ...]:
        """Names that resolved to `ip` and have not expired, most recently learned first."""
        entry = self._map.get(ip)
        if entry is None:
            return ()
        live = tuple(name for name, expiry in reversed(entry.items()) if expiry > now)
        if len(live) != len(entry):
            for name in [n for n, e in entry.items() if e <= now]:
                del entry[name]
            if not entry:
                del self._map[ip]
        return live

    def expire(self, now: float) -> int:
        """Drop every expired name (and addresses left without names); returns names dropped."""
        dropped = 0
        for ip in list(self._map):
            entry = self._map[ip]
            stale = [n for n, e in entry.items() if e <= now]
            for name in stale:
                del entry[name]
            dropped += len(stale)
            if not entry:
                del self._map[ip]
        return dropped


def answer_addresses(msg: DnsMessage) -> Iterator[tuple[str, str, int]]:
    """(name, address, ttl) for every A/AAAA answer of a successful response, once under the
    record's owner name and once under each name whose CNAME chain in the message leads there
    (so a question for an alias still names the address it resolved to)."""
    if not msg.is_response or msg.rcode != 0:
        return
    alias_of: dict[str, str] = {}
    for rr in msg.answers:
        if rr.rtype == _CNAME and rr.value not in alias_of and rr.value != rr.name:
            alias_of[rr.value] = rr.name
    for rr in msg.answers:
        if rr.rtype != _A and rr.rtype != _AAAA:  # noqa: PLR1714 - two int compares
            continue
        name = rr.name
        seen = [name]
        yield name, rr.value, rr.ttl
        while len(seen) <= _MAX_CHAIN:
            alias = alias_of.get(name)
            if alias is None or alias in seen:
                break
            name = alias
            seen.append(name)
            yield name, rr.value, rr.ttl
