"""Internal IP → host identity: the inventory file plus what the sensor learns from DHCP/DNS.

Precedence, most trusted first: an exact inventory address, then a fresh learned mapping (DHCP
and DNS are more current than a range in a file), then the longest inventory prefix.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netdetect.config import TomlDoc

if TYPE_CHECKING:
    from pathlib import Path

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """Who an internal address belongs to, and whether an agent there can be asked."""

    host_id: str
    owner: str | None = None
    tags: tuple[str, ...] = ()
    managed: bool = True  # an agent runs there and may be queried
    source: str = "inventory"  # "inventory" | "dhcp" | "dns" | ...


class Inventory:
    """Lookup of internal addresses; `learn` is the hook DHCP/DNS observers call."""

    def __init__(
        self,
        hosts: tuple[tuple[HostIdentity, tuple[str, ...]], ...] = (),
        *,
        learned_ttl: float = 86_400.0,
        max_learned: int = 65_536,
    ) -> None:
        self._by_id: dict[str, HostIdentity] = {}
        self._exact: dict[Address, HostIdentity] = {}
        # One dict per (version, prefix length): a lookup masks the address once per length
        # in use, which stays a handful of dict probes however many ranges there are.
        self._nets: dict[tuple[int, int], dict[int, HostIdentity]] = {}
        self._learned: OrderedDict[Address, tuple[str, float, str]] = OrderedDict()
        self.learned_ttl = learned_ttl
        self.max_learned = max_learned
        self.evicted = 0
        for ident, addrs in hosts:
            self.add(ident, addrs)

    def add(self, ident: HostIdentity, addresses: tuple[str, ...]) -> None:
        """Add a host; raise ValueError on a bad address or a duplicate id or address."""
        if ident.host_id in self._by_id:
            raise ValueError(f"duplicate host id {ident.host_id!r}")
        nets = [ipaddress.ip_network(a, strict=True) for a in addresses]
        for net in nets:
            if net.num_addresses == 1:
                addr = net.network_address
                if addr in self._exact:
                    raise ValueError(f"{addr} already belongs to {self._exact[addr].host_id}")
                self._exact[addr] = ident
            else:
                table = self._nets.setdefault((net.version, net.prefixlen), {})
                key = int(net.network_address)
                if key in table:
                    raise ValueError(f"{net} already belongs to {table[key].host_id}")
                table[key] = ident
        self._by_id[ident.host_id] = ident
        # Longest prefix first, so lookup can stop at the first hit.
        self._nets = dict(sorted(self._nets.items(), key=lambda kv: -kv[0][1]))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, host_id: str) -> HostIdentity | None:
        return self._by_id.get(host_id)

    def learn(self, ip: str, host_id: str, now: float, *, source: str = "dhcp",
              ttl: float | None = None) -> None:
        """Record that `ip` belongs to `host_id` (from a DHCP lease, a DNS answer, ...).

        The mapping expires after `ttl` (default: the inventory's learned_ttl, e.g. a lease
        time). The table is bounded; the oldest mapping is evicted and counted.
        """
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return
        self._learned.pop(addr, None)
        self._learned[addr] = (host_id, now + (self.learned_ttl if ttl is None else ttl), source)
        while len(self._learned) > self.max_learned:
            self._learned.popitem(last=False)
            self.evicted += 1

    def lookup(self, ip: str, now: float) -> HostIdentity | None:
        """The identity behind `ip` at time `now`, or None for an unknown address."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        ident = self._exact.get(addr)
        if ident is not None:
            return ident
        learned = self._learned.get(addr)
        if learned is not None:
            host_id, expires, source = learned
            if now < expires:
                known = self._by_id.get(host_id)
                if known is not None:
                    return HostIdentity(known.host_id, known.owner, known.tags, known.managed,
                                        source)
                # A name the inventory does not know: identified, but no agent to ask.
                return HostIdentity(host_id, managed=False, source=source)
            del self._learned[addr]
        value = int(addr)
        bits = addr.max_prefixlen
        for (version, plen), table in self._nets.items():
            if version != addr.version:
                continue
            mask = ((1 << plen) - 1) << (bits - plen)
            ident = table.get(value & mask)
            if ident is not None:
                return ident
        return None

    @classmethod
    def load(cls, path: Path) -> Inventory:
        """Load inventory.toml (``[[host]]`` tables); ConfigError lists every error with path:line.

        ``[[host]] id = "web-01", addresses = ["10.0.0.5", "10.0.1.0/24"], owner = "...",
        tags = ["web"], agent = true`` — `agent = false` marks a known host without an agent.
        """
        doc = TomlDoc(path)
        root = doc.root()
        inv = cls()
        for sec in root.sections("host"):
            host_id = sec.text("id", id_like=True)
            addresses = sec.str_list("addresses", ())
            owner = sec.text("owner", None)
            tags = sec.str_list("tags")
            managed = sec.flag("agent", True)
            sec.done()
            if not isinstance(host_id, str):
                continue
            if not addresses:
                doc.error((*sec.keypath, "addresses"), "at least one address or prefix needed")
                continue
            try:
                inv.add(HostIdentity(host_id, owner, tags, managed), addresses)
            except ValueError as exc:
                doc.error((*sec.keypath, "addresses"), str(exc))
        root.done()
        doc.check()
        return inv


def empty_inventory() -> Inventory:
    """An inventory that knows nothing: every host is unmanaged until learned or configured."""
    return Inventory()

