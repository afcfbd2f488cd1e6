"""Compiles pool address sets into a MaxMind DB and looks addresses up in MaxMind DBs.

The pool address DB is read by the compiled core (`_core.MmdbReader`, src/mmdb.rs); the
Python `maxminddb` package is imported only to read the user's GeoLite2 databases, and
`mmdb_writer` only to compile: neither is on the start-up path of a replay or a sensor.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from netdetect import _core
from netdetect.errors import SignatureError

if TYPE_CHECKING:
    import maxminddb
    from maxminddb.types import Record

DB_TYPE = "netdetect-pool-ips"
# The sources digest rides in the description map because MaxMind DB metadata has no slot
# for user data; readers ignore unknown description languages.
DIGEST_KEY = "netdetect-sources-sha256"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class IpEntry(msgspec.Struct, frozen=True):
    """One line of an address list, ready to compile."""

    network: Network
    source: str  # "pool_ips.txt" or "imported/NAME.ips.txt"
    category: str  # pool | browser-miner | proxy; "allow" for allowlist entries
    note: str
    ports: frozenset[int]  # empty: any port

    @property
    def allow(self) -> bool:
        return self.category == "allow"


class IpMatch(msgspec.Struct, frozen=True):
    """A remote address found in the pool address sets."""

    network: str  # the most specific listed network holding the address, e.g. "192.0.2.0/24"
    category: str
    source: str
    note: str
    ports: frozenset[int]  # ports the list named for it; empty when it named none

    def port_listed(self, port: int) -> bool:
        """Whether the list ties this address to `port` (always true when it named no ports)."""
        return not self.ports or port in self.ports


class GeoFacts(msgspec.Struct, frozen=True):
    """Who hosts an address, from the user's GeoLite2 / GeoIP2 ASN and City databases."""

    asn: int | None
    as_org: str | None
    country: str | None  # ISO 3166-1 alpha-2


def _sort_key(entry: tuple[Network, bool]) -> tuple[bool, int]:
    network, allow = entry
    # IPv4 sits at ::/96 in the tree, so its depth is prefixlen + 96.
    depth = network.prefixlen + (96 if network.version == 4 else 0)
    return (allow, depth)


def compile_ip_sets(entries: Iterable[IpEntry], dest: str | Path, *, digest: str = "") -> int:
    """Write `entries` as one IPv6 MaxMind DB (IPv4 mapped at ::/96) at `dest`; return the
    number of distinct networks written.

    Entries for the same network merge (ports united, sources and notes joined); a port-less
    entry means "any port" and wins over port lists. The most specific network decides a
    lookup, except that allowlist networks beat every pool network they cover.
    """
    merged: dict[tuple[Network, bool], dict[str, Any]] = {}
    for entry in entries:
        key = (entry.network, entry.allow)
        rec = merged.get(key)
        if rec is None:
            merged[key] = {
                "category": entry.category,
                "sources": [entry.source],
                "notes": [entry.note] if entry.note else [],
                "ports": set(entry.ports),
                "any_port": not entry.ports,
            }
            continue
        if entry.source not in rec["sources"]:
            rec["sources"].append(entry.source)
        if entry.note and entry.note not in rec["notes"] and len(rec["notes"]) < 4:
            rec["notes"].append(entry.note)
        rec["ports"].update(entry.ports)
        rec["any_port"] = rec["any_port"] or not entry.ports

    # The writer and its netaddr dependency are only needed to compile: keep them off the
    # start-up of every replay.
    from mmdb_writer import MMDBWriter
    from netaddr import IPNetwork, IPSet

    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=DB_TYPE,
        languages=["en"],
        description={"en": "netdetect pool address sets", DIGEST_KEY: digest},
    )
    # Pools first and shallow before deep: mmdb_writer splits a shallower leaf when a deeper
    # network lands inside it, but a shallower network written later would erase the deeper
    # ones. Allow networks come last so that they erase every pool network they cover.
    for network, allow in sorted(merged, key=_sort_key):
        rec = merged[(network, allow)]
        ports = [] if rec["any_port"] else sorted(rec["ports"])
        content: dict[str, Any] = {
            # Stored, not derived from the lookup's prefix length: the tree splits a network
            # around any more specific one inside it.
            "network": str(network),
            "category": rec["category"],
            "source": ", ".join(rec["sources"]),
            "note": "; ".join(rec["notes"]),
            "ports": ports,
        }
        writer.insert_network(IPSet([IPNetwork(str(network))]), content)

    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        writer.to_db_file(tmp)
        # Readers that have the old file mapped keep their copy; a rename never shows them
        # a half-written database.
        Path(tmp).replace(dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(merged)


def _open(path: Path) -> maxminddb.Reader:
    # Imported here: only GeoLite2 databases are read through it, and its package import
    # costs a good part of a replay's start-up (importlib.metadata, email, zipfile ...).
    import maxminddb

    try:
        return maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise SignatureError(f"{path}:0: not a readable MaxMind DB: {exc}") from exc


def _open_core(path: Path) -> _core.MmdbReader:
    try:
        return _core.MmdbReader.open(str(path))
    except (OSError, ValueError) as exc:
        raise SignatureError(f"{path}:0: not a readable MaxMind DB: {exc}") from exc


def _normalise(ip: str) -> str:
    # Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; the tree holds them at ::/96.
    if ":" in ip and "ffff" in ip.lower():
        try:
            addr = ipaddress.IPv6Address(ip)
        except ValueError:
            return ip
        if addr in _MAPPED and addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
    return ip


def _get(reader: maxminddb.Reader, ip: str) -> tuple[Record | None, int]:
    try:
        return reader.get_with_prefix_len(_normalise(ip))
    except (ValueError, TypeError):
        # Not an address (TypeError: embedded NUL): callers hand over text from the wire.
        return None, 0


class IpSetDb:
    """Lookups in a compiled pool address DB.

    The core reads the address text as the sensor always has (inet_aton forms, numeric
    IPv6 scopes, ::ffff:a.b.c.d folded to IPv4: see src/mmdb.rs); text that is not an
    address finds nothing. The whole file is verified when opened, so a damaged DB is a
    SignatureError at start, not a surprise in the middle of a run.
    """

    __slots__ = ("_reader", "path")

    def __init__(self, reader: _core.MmdbReader, path: Path) -> None:
        self._reader = reader
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> IpSetDb:
        path = Path(path)
        reader = _open_core(path)
        if reader.database_type != DB_TYPE:
            reader.close()
            raise SignatureError(f"{path}:0: not a netdetect pool address DB")
        return cls(reader, path)

    @staticmethod
    def digest_of(path: str | Path) -> str | None:
        """The sources digest recorded in a compiled DB, or None if it has none or is unreadable."""
        try:
            db = IpSetDb.open(path)
        except SignatureError:
            return None
        try:
            return db.digest
        finally:
            db.close()

    @property
    def digest(self) -> str | None:
        """The sources digest this DB was compiled from, if it records one."""
        return self._reader.description.get(DIGEST_KEY)

    def lookup(self, ip: str) -> IpMatch | None:
        try:
            found = self._reader.lookup(ip)
        except ValueError as exc:
            # The file passed verification when opened: only a record beyond the decoder's
            # size limits gets here.
            raise SignatureError(f"{self.path}:0: unreadable record for {ip!r}: {exc}") from exc
        if found is None:
            return None
        category, source, note, network, ports, _prefix_len = found
        if category == "allow":
            return None
        return IpMatch(
            network=network,
            category=category if category is not None else "pool",
            source=source or "",
            note=note or "",
            ports=frozenset(ports) if ports else frozenset(),
        )

    def close(self) -> None:
        self._reader.close()


class GeoDb:
    """ASN / organisation / country of an address from user-supplied GeoLite2 databases."""

    __slots__ = ("_asn", "_city")

    def __init__(self, asn: maxminddb.Reader | None, city: maxminddb.Reader | None) -> None:
        self._asn = asn
        self._city = city

    @classmethod
    def open(cls, asn_path: str | Path | None, city_path: str | Path | None) -> GeoDb:
        asn = _open(Path(asn_path)) if asn_path is not None else None
        try:
            city = _open(Path(city_path)) if city_path is not None else None
        except SignatureError:
            if asn is not None:
                asn.close()
            raise
        return cls(asn, city)

    def enrich(self, ip: str) -> GeoFacts | None:
        asn: int | None = None
        org: str | None = None
        country: str | None = None
        if self._asn is not None:
            rec, _ = _get(self._asn, ip)
            if isinstance(rec, dict):
                number = rec.get("autonomous_system_number")
                name = rec.get("autonomous_system_organization")
                asn = number if isinstance(number, int) else None
                org = name if isinstance(name, str) else None
        if self._city is not None:
            rec, _ = _get(self._city, ip)
            if isinstance(rec, dict):
                country = _country(rec)
        if asn is None and org is None and country is None:
            return None
        return GeoFacts(asn=asn, as_org=org, country=country)

    def close(self) -> None:
        for reader in (self._asn, self._city):
            if reader is not None:
                reader.close()


def _country(rec: dict[str, Any]) -> str | None:
    # City and Country databases both carry "country"; anycast and satellite ranges only
    # carry "registered_country".
    for key in ("country", "registered_country"):
        part = rec.get(key)
        if isinstance(part, dict):
            code = part.get("iso_code")
            if isinstance(code, str):
                return code
    return None
