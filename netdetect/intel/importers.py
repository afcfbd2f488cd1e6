"""Converts public mining-pool and browser-miner lists into the project's signature files."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from netdetect.asciinum import is_ascii_digits, parse_uint
from netdetect.intel.formats import FORMATS
from netdetect.intel.mmdb import Network
from netdetect.intel.store import (
    ALLOW_DOMAINS,
    ALLOW_IPS,
    CATEGORIES,
    IMPORTED,
    IMPORTED_KINDS,
    POOL_DOMAINS,
    POOL_IPS,
    SignatureLoadError,
    check_domain,
    compile_signatures,
)

# fmt -> (what it holds, default category or "allow")

SMASHED_COLUMNS = ("pool_name", "pool_url", "server_fqdn", "port", "coin", "resolved_ipv4_2018")

# Names every hosts file carries for the machine itself; not indicators.
_HOSTS_BOILERPLATE = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)
_K = TypeVar("_K", str, Network)
_NAME_SAFE = re.compile(r"[^a-z0-9_-]+")
_ADBLOCK_HOST = re.compile(r"\|\|([^/^$|]+)(?:\^\|?)?(?:\$(.*))?\Z")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A source line that produced no entry, and why."""

    line: int
    reason: str  # short and fixed per kind, e.g. "URL pattern", "not a public address"
    text: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import read and wrote.

    Every accepted indicator (`entries`) is new (counted in `domains` / `networks`), an exact
    `duplicate` of an earlier one, or `merged` into an earlier one (same name or address,
    a port not seen before): entries == domains + networks + duplicates + merged.
    """

    fmt: str
    source: Path
    name: str
    outputs: tuple[Path, ...]
    lines: int  # lines (CSV: rows, header included) in the source
    records: int  # lines / rows that yielded at least one indicator
    entries: int
    domains: int  # distinct names written
    networks: int  # distinct addresses / networks written
    duplicates: int
    merged: int
    ignored: int  # comments, blank lines, hosts-file boilerplate
    skipped: tuple[Skipped, ...]
    mmdb: Path | None  # the recompiled pool address DB

    @property
    def added(self) -> int:
        return self.domains + self.networks

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))

    def summary(self) -> str:
        parts = [
            f"{self.source.name} ({self.fmt}): {self.domains} domains, {self.networks} networks",
            f"{self.duplicates} duplicates, {self.merged} merged",
            f"{len(self.skipped)} skipped",
        ]
        reasons = self.skipped_by_reason()
        if reasons:
            parts[-1] += " (" + ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) + ")"
        return "; ".join(parts)


@dataclass(slots=True)
class _Acc:
    line: int
    ports: set[int] = field(default_factory=set)
    any_port: bool = False
    notes: list[str] = field(default_factory=list)


class _Collector:
    """Accumulates indicators from one source, deduplicating and recording skips."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.domains: dict[str, _Acc] = {}
        self.networks: dict[Network, _Acc] = {}
        self.skipped: list[Skipped] = []
        self.entries = 0
        self.duplicates = 0
        self.merged = 0
        self.ignored = 0
        self.records = 0
        self.lines = 0

    def skip(self, line: int, reason: str, text: str) -> None:
        self.skipped.append(Skipped(line, reason, text[:200]))

    def _take(
        self, table: dict[_K, _Acc], key: _K, line: int, ports: frozenset[int], note: str
    ) -> None:
        self.entries += 1
        acc = table.get(key)
        if acc is None:
            acc = _Acc(line=line, any_port=not ports)
            acc.ports.update(ports)
            if note:
                acc.notes.append(note)
            table[key] = acc
            return
        new_ports = (ports - acc.ports) if not acc.any_port else frozenset()
        new_note = bool(note) and note not in acc.notes and len(acc.notes) < 3
        if new_note:
            acc.notes.append(note)
        if not ports and not acc.any_port:
            acc.any_port = True
            self.merged += 1
        elif new_ports:
            acc.ports.update(new_ports)
            self.merged += 1
        else:
            self.duplicates += 1

    def domain(self, text: str, line: int, ports: frozenset[int] = frozenset(),
               note: str = "") -> bool:
        name = text.strip().lower()
        name = name.removeprefix("*.")
        name = name.strip(".")
        if not name.isascii():
            try:
                name = name.encode("idna").decode("ascii")
            except UnicodeError:
                self.skip(line, "invalid domain", text)
                return False
        problem = check_domain(name)
        if problem is not None:
            reason = "single-label name" if "single label" in problem else "invalid domain"
            if "is an address" in problem:
                return self.address(name, line, ports, note)
            self.skip(line, reason, text)
            return False
        self._take(self.domains, name, line, ports, note)
        return True

    def address(self, text: str, line: int, ports: frozenset[int] = frozenset(),
                note: str = "") -> bool:
        raw = text.strip()
        if raw.startswith("[") and raw.endswith("]"):
            raw = raw[1:-1]
        try:
            network = ipaddress.ip_network(raw, strict=True)
        except ValueError as exc:
            reason = "host bits set" if "host bits" in str(exc) else "invalid address"
            self.skip(line, reason, text)
            return False
        if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == 128:
            mapped = network.network_address.ipv4_mapped
            if mapped is not None:
                network = ipaddress.IPv4Network(mapped)
        if not network.is_global or network.prefixlen < (8 if network.version == 4 else 16):
            # Private, loopback, reserved and huge ranges would flag internal traffic.
            self.skip(line, "not a public address", text)
            return False
        if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(
            ipaddress.IPv6Network("::/96")
        ):
            self.skip(line, "invalid address", text)
            return False
        self._take(self.networks, network, line, ports, note)
        return True

    def indicator(self, text: str, line: int, ports: frozenset[int] = frozenset(),
                  note: str = "") -> bool:
        """A domain or an address, whichever `text` is."""
        raw = text.strip()
        probe = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        try:
            ipaddress.ip_network(probe, strict=False)
        except ValueError:
            return self.domain(raw, line, ports, note)
        return self.address(raw, line, ports, note)


def _port(text: str) -> int | None:
    port = parse_uint(text)
    return port if port is not None and 0 < port < 65536 else None


def _strip_comment(line: str) -> str:
    # Inline comments need whitespace before '#': '#' is never part of a name or address.
    cut = line.find("#")
    return line if cut < 0 else line[:cut]


def _decoded_lines(data: bytes, col: _Collector) -> Iterator[tuple[int, str]]:
    """(number, text) of each line; undecodable lines are skipped and reported."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.splitlines(), 1):
        col.lines += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            col.skip(number, "not UTF-8", raw.decode("utf-8", "replace"))
            continue
        yield number, text


# --- one parser per format -----------------------------------------------------------------


def _split_host_port(text: str) -> tuple[str, int | None] | None:
    """'host', 'host:port', '[v6]:port' or a bare IPv6 address; None if the port is bad."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return text, None
        rest = text[end + 1 :]
        if not rest:
            return text[: end + 1], None
        if rest.startswith(":") and (port := _port(rest[1:])) is not None:
            return text[: end + 1], port
        return None
    if text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text)
        return (host, port) if port is not None else None
    return text, None


def _parse_maltrail(data: bytes, col: _Collector) -> None:
    for number, line in _decoded_lines(data, col):
        text = _strip_comment(line).strip()
        if not text:
            col.ignored += 1
            continue
        if "://" in text:
            parts = urlsplit(text)
            if parts.path not in {"", "/"} or parts.query:
                col.skip(number, "URL with path", line)
                continue
            text = parts.netloc
        if "/" in text and not _is_network(text):
            col.skip(number, "URL with path", line)
            continue
        split = _split_host_port(text)
        if split is None:
            col.skip(number, "bad port", line)
            continue
        host, port = split
        ports = frozenset({port}) if port is not None else frozenset()
        if col.indicator(host, number, ports, f"{col.source_name}:{number}"):
            col.records += 1


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _parse_single_column(
    data: bytes, col: _Collector, what: str, add: Callable[..., bool]
) -> None:
    """One entry per line (`#` comments allowed); `add` is col.domain or col.address."""
    for number, line in _decoded_lines(data, col):
        text = _strip_comment(line).strip()
        if not text:
            col.ignored += 1
            continue
        if len(text.split()) != 1:
            col.skip(number, f"not one {what} per line", line)
            continue
        if add(text, number, note=f"{col.source_name}:{number}"):
            col.records += 1


def _parse_domain_list(data: bytes, col: _Collector) -> None:
    _parse_single_column(data, col, "name", col.domain)


def _parse_ip_list(data: bytes, col: _Collector) -> None:
    _parse_single_column(data, col, "address", col.address)


def _parse_hosts(data: bytes, col: _Collector) -> None:
    for number, line in _decoded_lines(data, col):
        tokens = _strip_comment(line).split()
        if not tokens:
            col.ignored += 1
            continue
        if len(tokens) == 1:
            names = tokens  # some "hosts" lists drop the address column
        elif _is_network(tokens[0]):
            names = tokens[1:]
        else:
            col.skip(number, "not a hosts line", line)
            continue
        took = False
        for name in names:
            if name.lower() in _HOSTS_BOILERPLATE:
                col.ignored += 1
                continue
            took = col.domain(name, number, note=f"{col.source_name}:{number}") or took
        if took:
            col.records += 1


def _parse_ndpi(data: bytes, col: _Collector) -> None:
    for number, line in _decoded_lines(data, col):
        tokens = _strip_comment(line).split()
        if not tokens:
            col.ignored += 1
            continue
        if len(tokens) > 2 or (len(tokens) == 2 and not is_ascii_digits(tokens[1])):
            col.skip(number, "not 'name<TAB>category'", line)
            continue
        if col.indicator(tokens[0], number, note=f"{col.source_name}:{number}"):
            col.records += 1


def _parse_adblock(data: bytes, col: _Collector) -> None:
    for number, line in _decoded_lines(data, col):
        text = line.strip()
        if not text or text.startswith(("!", "[")):
            col.ignored += 1
            continue
        if text.startswith("@@"):
            col.skip(number, "exception rule", line)
            continue
        if "##" in text or "#@#" in text or "#?#" in text or "#$#" in text:
            col.skip(number, "cosmetic rule", line)
            continue
        m = _ADBLOCK_HOST.match(text)
        if m is None:
            # Path and query patterns name script files, not hosts a sensor could match.
            col.skip(number, "URL pattern", line)
            continue
        host = m.group(1)
        if "*" in host:
            col.skip(number, "wildcard host", line)
            continue
        if col.indicator(host, number, note=f"{col.source_name}:{number}"):
            col.records += 1


def _parse_smashed(data: bytes, col: _Collector) -> None:
    text = data.decode("utf-8", "replace").lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    col.lines += 1
    if header is None or tuple(h.strip() for h in header) != SMASHED_COLUMNS:
        raise SignatureLoadError(
            [f"{col.source_name}:1: not a sMaSheD CSV: header must be {','.join(SMASHED_COLUMNS)}"]
        )
    col.ignored += 1
    for row in reader:
        col.lines += 1
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            col.ignored += 1
            continue
        if len(row) != len(SMASHED_COLUMNS):
            col.skip(number, "wrong number of columns", ",".join(row))
            continue
        pool, _url, fqdn, port_text, coin, addresses = (c.strip() for c in row)
        port = _port(port_text)
        if port is None:
            col.skip(number, "bad port", ",".join(row))
            continue
        ports = frozenset({port})
        note = " ".join(p for p in (pool, coin) if p)
        took = col.domain(fqdn, number, ports, note) if fqdn else False
        for address in filter(None, (a.strip() for a in addresses.split(";"))):
            took = col.address(address, number, ports, f"{note} {fqdn}".strip()) or took
        if took:
            col.records += 1


_PARSERS: dict[str, Callable[[bytes, _Collector], None]] = {
    "maltrail": _parse_maltrail,
    "coinblocker-domains": _parse_domain_list,
    "coinblocker-ips": _parse_ip_list,
    "hosts": _parse_hosts,
    "adblock": _parse_adblock,
    "ndpi": _parse_ndpi,
    "smashed-csv": _parse_smashed,
    "ip-list": _parse_ip_list,
    "allow-domains": _parse_domain_list,
    "allow-ips": _parse_ip_list,
}


# --- writing -------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def _header(kind_file: str, fmt: str, src: Path, digest: str, lines: int, day: dt.date) -> str:
    formats = {
        POOL_DOMAINS: "domain<TAB>category<TAB>note",
        POOL_IPS: "network<TAB>category<TAB>ports<TAB>note",
        ALLOW_DOMAINS: "domain<TAB>scope<TAB>reason",
        ALLOW_IPS: "network<TAB>reason",
    }
    return (
        f"# netdetect imported list, in the format of {kind_file}: {formats[kind_file]}\n"
        f"# Imported from: {src.name} (format {fmt}: {FORMATS[fmt][0]})\n"
        f"# Source sha256: {digest}, {lines} lines\n"
        f"# Imported on: {day.isoformat()}\n"
        "# Generated file: change the source and import it again rather than editing this.\n"
        "# Notes name the source line each entry came from.\n"
    )


def _ports_text(acc: _Acc) -> str:
    return "-" if acc.any_port or not acc.ports else ",".join(map(str, sorted(acc.ports)))


def _note(acc: _Acc, *, with_ports: bool) -> str:
    note = "; ".join(acc.notes)
    if with_ports and acc.ports and not acc.any_port:
        note = f"{note}; ports {_ports_text(acc)}" if note else f"ports {_ports_text(acc)}"
    return _clean(note)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _network_key(network: Network) -> tuple[int, int, int]:
    return (network.version, int(network.network_address), network.prefixlen)


def import_list(
    fmt: str,
    src: Path,
    dest_dir: Path,
    *,
    name: str | None = None,
    category: str | None = None,
    today: dt.date | None = None,
) -> ImportResult:
    """Convert the public list `src` (format `fmt`, see FORMATS) into
    DEST_DIR/imported/NAME.{domains,ips,allow_domains,allow_ips}.txt and recompile
    DEST_DIR/pool_ips.mmdb.

    NAME defaults to the source file's stem. Importing the same NAME again replaces its
    files. Malformed lines are skipped and reported in the result, never fatal; a source
    that cannot be read, or a CSV without the expected header, raises SignatureError.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown list format {fmt!r} (want one of {', '.join(FORMATS)})")
    default_category = FORMATS[fmt][1]
    allow = default_category == "allow"
    if category is not None and (allow or category not in CATEGORIES):
        raise ValueError(f"category {category!r} does not apply to format {fmt!r}")
    category = category or default_category
    src = Path(src)
    dest_dir = Path(dest_dir)
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise SignatureLoadError([f"{src}:0: cannot read: {exc.strerror or exc}"]) from exc
    stem = _NAME_SAFE.sub("_", (name or src.stem).lower()).strip("_")
    if not stem:
        raise ValueError(f"cannot make a list name from {name or src.stem!r}")

    col = _Collector(src.name)
    _PARSERS[fmt](data, col)

    folder = dest_dir / IMPORTED
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    day = today or dt.datetime.now(dt.UTC).date()
    outputs: list[Path] = []

    if col.domains:
        kind_file = ALLOW_DOMAINS if allow else POOL_DOMAINS
        suffix = ".allow_domains.txt" if allow else ".domains.txt"
        rows = []
        for domain in sorted(col.domains):
            acc = col.domains[domain]
            middle = "suffix" if allow else category
            rows.append(f"{domain}\t{middle}\t{_note(acc, with_ports=True)}\n")
        path = folder / f"{stem}{suffix}"
        _write(path, _header(kind_file, fmt, src, digest, col.lines, day) + "".join(rows))
        outputs.append(path)

    if col.networks:
        kind_file = ALLOW_IPS if allow else POOL_IPS
        suffix = ".allow_ips.txt" if allow else ".ips.txt"
        rows = []
        for network in sorted(col.networks, key=_network_key):
            acc = col.networks[network]
            # A single address reads better without its /32 or /128.
            text = (
                str(network.network_address)
                if network.prefixlen == network.max_prefixlen
                else str(network)
            )
            if allow:
                rows.append(f"{text}\t{_note(acc, with_ports=False)}\n")
            else:
                rows.append(
                    f"{text}\t{category}\t{_ports_text(acc)}\t{_note(acc, with_ports=False)}\n"
                )
        path = folder / f"{stem}{suffix}"
        _write(path, _header(kind_file, fmt, src, digest, col.lines, day) + "".join(rows))
        outputs.append(path)

    # A re-import that no longer yields, say, addresses must not leave the old ones behind.
    for suffix in IMPORTED_KINDS:
        stale = folder / f"{stem}{suffix}"
        if stale not in outputs and stale.is_file():
            stale.unlink()

    mmdb = compile_signatures(dest_dir)
    return ImportResult(
        fmt=fmt,
        source=src,
        name=stem,
        outputs=tuple(outputs),
        lines=col.lines,
        records=col.records,
        entries=col.entries,
        domains=len(col.domains),
        networks=len(col.networks),
        duplicates=col.duplicates,
        merged=col.merged,
        ignored=col.ignored,
        skipped=tuple(col.skipped),
        mmdb=mmdb,
    )
