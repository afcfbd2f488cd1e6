"""Internal IP → host identity: the inventory file plus what the sensor learns from DHCP/DNS.

Precedence, most trusted first: an exact inventory address, then a fresh learned mapping (DHCP
and DNS are more current than a range in a file), then the longest inventory prefix.

What is learned never overrides what the inventory declares: a lease or answer that puts an
address the inventory assigns to one host on another, or a host the inventory gives addresses
at an address outside them, is a conflict (counted, and named on the alerts for that address)
and is not learned. DHCP is learned only from the configured DHCP servers, when there are any.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netdetect.config import TomlDoc
from netdetect.model import HostLease

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from netdetect.config import SensorConfig

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# A DNS answer's TTL says how long a resolver may cache it, not how long the host keeps the
# address; a name resolved once should still identify its host for the flows that follow.
DNS_MIN_HOLD = 3600.0
# Host names as the DNS decoder presents them: lower case, no trailing dot (RFC 1035 labels,
# plus "_" which internal zones use).
_NAME_RE = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)"
                      r"(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*")


def normal_name(name: str) -> str | None:
    """`name` as DNS answers carry it (lower case, no trailing dot), or None if not a name."""
    text = name.strip().lower().removesuffix(".")
    return text if _NAME_RE.fullmatch(text) else None


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """Who an internal address belongs to, and whether an agent there can be asked."""

    host_id: str
    owner: str | None = None
    tags: tuple[str, ...] = ()
    managed: bool = True  # an agent runs there and may be queried
    source: str = "inventory"  # "inventory" | "dhcp" | "dns" | ...
    via: str | None = None  # for a learned mapping: who said so ("DHCP server 10.0.0.1")
    conflict: str | None = None  # another source disagreed about this address lately


def describe_source(ident: HostIdentity, ip: str) -> str:
    """One sentence for an alert: which source mapped `ip` to the host."""
    what = {"inventory": "the inventory", "dhcp": "a DHCP lease",
            "dns": "a DNS answer"}.get(ident.source, ident.source)
    via = f" ({ident.via})" if ident.via else ""
    return f"{ip} mapped to host {ident.host_id} by {what}{via}"


class Inventory:
    """Lookup of internal addresses; `learn` is the hook DHCP/DNS observers call."""

    def __init__(
        self,
        hosts: tuple[tuple[HostIdentity, tuple[str, ...]], ...] = (),
        *,
        learned_ttl: float = 86_400.0,
        max_learned: int = 65_536,
        dhcp_servers: Iterable[str] = (),
    ) -> None:
        self._by_id: dict[str, HostIdentity] = {}
        self._exact: dict[Address, HostIdentity] = {}
        # One dict per (version, prefix length): a lookup masks the address once per length
        # in use, which stays a handful of dict probes however many ranges there are.
        self._nets: dict[tuple[int, int], dict[int, HostIdentity]] = {}
        # address -> (host id, expiry, source, who vouched for it)
        self._learned: OrderedDict[Address, tuple[str, float, str, str | None]] = OrderedDict()
        self._conflicts: OrderedDict[Address, tuple[str, float]] = OrderedDict()
        # Host ids the inventory gives addresses: found at those only, whatever is learned.
        self._pinned: dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}
        self.dhcp_servers = frozenset(ipaddress.ip_address(a) for a in dhcp_servers)
        self.counters: Counter[str] = Counter()
        self._by_name: dict[str, str] = {}  # declared DNS name -> host id
        # DHCP host names arrive lower-cased; an inventory id spelt "Web-07" is still theirs.
        self._by_lower: dict[str, str] = {}
        self.learned_ttl = learned_ttl
        self.max_learned = max_learned
        self.evicted = 0
        for ident, addrs in hosts:
            self.add(ident, addrs)

    def add(self, ident: HostIdentity, addresses: tuple[str, ...], *,
            names: tuple[str, ...] = ()) -> None:
        """Add a host; raise ValueError on a bad address or name, or a duplicate id, address
        or name. A host without addresses is found only through what the sensor learns: a
        DHCP lease naming its id, or a DNS answer for one of its `names`."""
        if ident.host_id in self._by_id:
            raise ValueError(f"duplicate host id {ident.host_id!r}")
        nets = [ipaddress.ip_network(a, strict=True) for a in addresses]
        wanted: list[str] = []
        for raw in names:
            name = normal_name(raw)
            if name is None:
                raise ValueError(f"{raw!r} is not a DNS name")
            owner = self._by_name.get(name)
            if owner is not None or name in wanted:
                raise ValueError(f"name {name} already belongs to {owner or ident.host_id}")
            wanted.append(name)
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
        if nets:
            self._pinned[ident.host_id] = nets
        self._by_lower.setdefault(ident.host_id.lower(), ident.host_id)
        for name in wanted:
            self._by_name[name] = ident.host_id
        # Longest prefix first, so lookup can stop at the first hit.
        self._nets = dict(sorted(self._nets.items(), key=lambda kv: -kv[0][1]))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, host_id: str) -> HostIdentity | None:
        return self._by_id.get(host_id)

    def carry_learned(self, old: Inventory) -> None:
        """Keep what `old` learned from the traffic (a reloaded inventory file must not make
        the sensor forget every lease it has seen)."""
        for addr, entry in old._learned.items():
            if self._declared_conflict(addr, entry[0]) is None:
                self._learned.setdefault(addr, entry)
        for addr, note in old._conflicts.items():
            self._conflicts.setdefault(addr, note)
        self.counters.update(old.counters)
        while len(self._learned) > self.max_learned:
            self._learned.popitem(last=False)
            self.evicted += 1

    def host_for_name(self, name: str) -> str | None:
        """The host id that declared DNS `name` (lower case, no trailing dot), if any."""
        return self._by_name.get(name)

    def names(self) -> dict[str, str]:
        """Every declared DNS name and its host id (a copy: capture workers filter by it)."""
        return dict(self._by_name)

    def learn_leases(self, leases: Iterable[HostLease]) -> int:
        """Learn what the traffic taught (Engine.take_leases); returns how many were learned.

        DHCP leases hold for their lease time; DNS answers for at least DNS_MIN_HOLD.
        """
        n = 0
        for lease in leases:
            via: str | None = None
            if lease.source == "dhcp":
                if self.dhcp_servers and not self._trusted_server(lease.server):
                    # Any host on the segment can send an ACK from port 67.
                    self.counters["dhcp-untrusted-server"] += 1
                    continue
                via = f"DHCP server {lease.server}" if lease.server else None
            ttl = lease.ttl
            if lease.source == "dns":
                ttl = max(ttl or 0.0, DNS_MIN_HOLD)
            host = self._by_lower.get(lease.host, lease.host)
            if self.learn(lease.ip, host, lease.ts, source=lease.source, ttl=ttl, via=via):
                n += 1
        return n

    def _trusted_server(self, server: str | None) -> bool:
        try:
            return server is not None and ipaddress.ip_address(server) in self.dhcp_servers
        except ValueError:
            return False

    def _declared(self, addr: Address) -> HostIdentity | None:
        ident = self._exact.get(addr)
        return ident if ident is not None else self._prefix(addr)

    def _declared_conflict(self, addr: Address, host_id: str) -> str | None:
        """Why the inventory forbids learning that `addr` is `host_id`, if it does."""
        declared = self._declared(addr)
        if declared is not None and declared.host_id != host_id:
            return f"the inventory assigns it to {declared.host_id}"
        nets = self._pinned.get(host_id)
        if nets is not None and not any(addr in net for net in nets):
            return f"the inventory gives {host_id} other addresses"
        return None

    def _conflict(self, addr: Address, note: str, now: float) -> None:
        self.counters["conflicts"] += 1
        self._conflicts.pop(addr, None)
        self._conflicts[addr] = (note, now + self.learned_ttl)
        while len(self._conflicts) > self.max_learned:
            self._conflicts.popitem(last=False)

    def learn(self, ip: str, host_id: str, now: float, *, source: str = "dhcp",
              ttl: float | None = None, via: str | None = None) -> bool:
        """Record that `ip` belongs to `host_id` (from a DHCP lease, a DNS answer, ...);
        False when it was not learned (bad address, or a conflict).

        The mapping expires after `ttl` (default: the inventory's learned_ttl, e.g. a lease
        time). The table is bounded; the oldest mapping is evicted and counted. A mapping the
        inventory contradicts, or one from another source while a fresh one says otherwise,
        is a conflict: counted, remembered for the address's alerts, not learned.
        """
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        why = self._declared_conflict(addr, host_id)
        if why is None:
            old = self._learned.get(addr)
            if old is not None and now < old[1] and old[0] != host_id and old[2] != source:
                why = f"{old[2]} said {old[0]}"
        if why is not None:
            self._conflict(addr, f"{source} said {addr} is {host_id}, but {why}", now)
            return False
        self._learned.pop(addr, None)
        self._learned[addr] = (host_id, now + (self.learned_ttl if ttl is None else ttl), source,
                               via)
        while len(self._learned) > self.max_learned:
            self._learned.popitem(last=False)
            self.evicted += 1
        return True

    def lookup(self, ip: str, now: float) -> HostIdentity | None:
        """The identity behind `ip` at time `now`, or None for an unknown address."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        ident = self._find(addr, now)
        note = self._conflicts.get(addr)
        if note is not None:
            if now >= note[1]:
                del self._conflicts[addr]
            elif ident is not None:
                return dataclasses.replace(ident, conflict=note[0])
        return ident

    def _find(self, addr: Address, now: float) -> HostIdentity | None:
        ident = self._exact.get(addr)
        if ident is not None:
            return ident
        learned = self._learned.get(addr)
        if learned is not None:
            host_id, expires, source, via = learned
            if now < expires:
                known = self._by_id.get(host_id)
                if known is not None:
                    return HostIdentity(known.host_id, known.owner, known.tags, known.managed,
                                        source, via)
                # A name the inventory does not know: identified, but no agent to ask.
                return HostIdentity(host_id, managed=False, source=source, via=via)
            del self._learned[addr]
        return self._prefix(addr)

    def _prefix(self, addr: Address) -> HostIdentity | None:
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
    def for_config(cls, config: SensorConfig) -> Inventory:
        """The sensor's inventory: its file (if any) and its learning policy."""
        inv = cls.load(config.inventory) if config.inventory else cls()
        inv.dhcp_servers = frozenset(ipaddress.ip_address(a) for a in config.dhcp_servers)
        return inv

    @classmethod
    def load(cls, path: Path) -> Inventory:
        """Load inventory.toml (``[[host]]`` tables); ConfigError lists every error with path:line.

        ``[[host]] id = "web-01", addresses = ["10.0.0.5", "10.0.1.0/24"], owner = "...",
        tags = ["web"], agent = true, names = ["web-01.corp.example"]`` — `agent = false`
        marks a known host without an agent; `names` are DNS names whose A/AAAA answers teach
        the sensor the host's current address. `addresses` may be left out for a host whose
        address comes from DHCP (by its id as hostname) or from `names`.
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
            sec.str_list("names")  # reports items that are not strings
            raw_names = sec.table.get("names")
            sec.done()
            if not isinstance(host_id, str):
                continue
            good: list[str] = []
            # Walk the list as written, so an error names the item's own index.
            for i, raw in enumerate(raw_names if isinstance(raw_names, list) else ()):
                if not isinstance(raw, str):
                    continue
                name = normal_name(raw)
                if name is None:
                    doc.error((*sec.keypath, "names", i), f"{raw!r} is not a DNS name")
                elif name in good or inv.host_for_name(name) is not None:
                    owner_id = inv.host_for_name(name) or host_id
                    doc.error((*sec.keypath, "names", i),
                              f"name {name} already belongs to {owner_id}")
                else:
                    good.append(name)
            try:
                inv.add(HostIdentity(host_id, owner, tags, managed), addresses,
                        names=tuple(good))
            except ValueError as exc:
                doc.error((*sec.keypath, "addresses"), str(exc))
        root.done()
        doc.check()
        return inv


def dns_learner(names: dict[str, str],
                add: Callable[[HostLease], None]) -> Callable[[str, str, int, float], None]:
    """An Engine.on_dns_answer hook: an answer for a name an inventory host declared
    (`names`: name -> host id) becomes a lease (source "dns") handed to `add`
    (Engine.add_lease, so it leaves with the DHCP leases)."""

    def on_answer(name: str, address: str, ttl: int, ts: float) -> None:
        host = names.get(name)
        if host is not None:
            add(HostLease(address, host, float(ttl), ts, source="dns"))

    return on_answer


def empty_inventory() -> Inventory:
    """An inventory that knows nothing: every host is unmanaged until learned or configured."""
    return Inventory()

