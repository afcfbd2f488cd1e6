"""Loads a signatures directory into an Intel object that answers lookups without I/O."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from netdetect.asciinum import is_ascii_digits, parse_uint
from netdetect.errors import SignatureError
from netdetect.intel.mmdb import GeoDb, GeoFacts, IpEntry, IpMatch, IpSetDb, compile_ip_sets

CATEGORIES = frozenset({"pool", "browser-miner", "proxy"})
ALLOW_SCOPES = frozenset({"suffix", "exact"})
TLS_KINDS = frozenset({"ja3", "ja4"})

POOL_DOMAINS = "pool_domains.txt"
ALLOW_DOMAINS = "allow_domains.txt"
POOL_PORTS = "pool_ports.txt"
WEB_PORTS = "web_ports.txt"
MINER_AGENTS = "miner_agents.txt"
TLS_FINGERPRINTS = "tls_fingerprints.txt"
POOL_IPS = "pool_ips.txt"
ALLOW_IPS = "allow_ips.txt"
SANCTIONED = "sanctioned.txt"
POOL_IPS_MMDB = "pool_ips.mmdb"
IMPORTED = "imported"

REQUIRED = (POOL_DOMAINS, ALLOW_DOMAINS, POOL_PORTS, WEB_PORTS, MINER_AGENTS, TLS_FINGERPRINTS)
OPTIONAL = (POOL_IPS, ALLOW_IPS, SANCTIONED)
SANCTIONED_KINDS = frozenset({"pool", "address", "wallet"})

# imported/NAME<suffix>: which top-level file format each imported file follows.
IMPORTED_KINDS = {
    ".allow_domains.txt": ALLOW_DOMAINS,
    ".allow_ips.txt": ALLOW_IPS,
    ".domains.txt": POOL_DOMAINS,
    ".ips.txt": POOL_IPS,
}

# A port range wider than this is a typo, not a fact about pools.
MAX_PORT_RANGE = 1024

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
_JA3 = re.compile(r"[0-9a-f]{32}\Z")
_JA4 = re.compile(r"[tqd](?:1[0-3]|s3|s2|00)[di][0-9]{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}\Z")
_ESCAPE = re.compile(r"\\.")
_UPPER_LITERAL = re.compile(r"[A-Z]")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_IPV4_COMPAT = ipaddress.IPv6Network("::/96")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_BACKREF = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")
_MEMO_DOMAINS = 8192  # distinct names remembered by match_domain
_MEMO_AGENTS = 1024  # distinct agent strings remembered by match_agent ...
_MEMO_AGENT_CHARS = 512  # ... when no longer than this


class DomainMatch(msgspec.Struct, frozen=True):
    """A DNS / SNI / HTTP host name that falls under a listed pool domain."""

    domain: str  # the listed entry that matched, e.g. "supportxmr.com"
    category: str  # pool | browser-miner | proxy
    source: str  # file the entry came from, e.g. "pool_domains.txt"
    note: str = ""


class AgentMatch(msgspec.Struct, frozen=True):
    """Mining software named by a user-agent or stratum agent string."""

    name: str  # normalised, e.g. "xmrig"
    version: str | None


class TlsMatch(msgspec.Struct, frozen=True):
    """A TLS client fingerprint of mining software (weak evidence on its own)."""

    kind: str  # "ja3" | "ja4"
    value: str
    label: str
    weight: int
    note: str = ""


class SanctionedEntry(msgspec.Struct, frozen=True):
    """Mining the organisation runs on purpose (sanctioned.txt): a match makes the verdict
    `allowed` from the network side alone, before and without asking any host."""

    kind: str  # "pool" (host name suffix) | "address" (IP / CIDR) | "wallet"
    value: str
    ports: frozenset[int]  # empty: any port
    source: str  # "sanctioned.txt:12"
    reason: str

    def describe(self) -> str:
        ports = f" port {','.join(map(str, sorted(self.ports)))}" if self.ports else ""
        return f"sanctioned {self.kind} {self.value}{ports} ({self.source}: {self.reason})"


class Sanctioned:
    """Lookups over the sanctioned entries; called once per suspect, never per packet."""

    def __init__(self, entries: tuple[SanctionedEntry, ...] = ()) -> None:
        self.entries = entries
        self._pools: dict[str, list[SanctionedEntry]] = {}
        self._wallets: dict[str, SanctionedEntry] = {}
        self._networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                   SanctionedEntry]] = []
        for e in entries:
            if e.kind == "pool":
                self._pools.setdefault(e.value, []).append(e)
            elif e.kind == "wallet":
                self._wallets.setdefault(e.value, e)
            else:
                self._networks.append((ipaddress.ip_network(e.value), e))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def match(self, ip: str, port: int, host: str | None,
              login: str | None) -> SanctionedEntry | None:
        """The entry sanctioning a flow to `ip`:`port` (pool `host`, miner `login`), if any."""
        if not self.entries:
            return None
        if host:
            norm = normalise_name(host)
            for suffix in _walk_suffixes(norm) if norm else ():
                for e in self._pools.get(suffix, ()):
                    if not e.ports or port in e.ports:
                        return e
        if self._networks:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                addr = None
            if addr is not None:
                for network, e in self._networks:
                    if addr in network and (not e.ports or port in e.ports):
                        return e
        if login and self._wallets:
            if login in self._wallets:
                return self._wallets[login]
            # Miners append a worker or difficulty to the wallet after . + / :
            cut = next((i for i, ch in enumerate(login) if ch in ".+/:" and i > 0), None)
            if cut is not None and login[:cut] in self._wallets:
                return self._wallets[login[:cut]]
        return None


class SignatureLoadError(SignatureError):
    """Every error found while loading a signatures directory, one `path:line: message` each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = tuple(errors)


# Distinct agent strings looked up before the one-scan alternation is compiled.
_AGENT_SCANS_BEFORE_ANY = 32


def _walk_suffixes(name: str) -> Iterator[str]:
    """The name itself, then each parent on a label boundary: a.b.c, b.c, c."""
    yield name
    i = name.find(".")
    while i >= 0:
        yield name[i + 1 :]
        i = name.find(".", i + 1)


def _any_of(agents: tuple[tuple[re.Pattern[str], str], ...], flags: int) -> re.Pattern[str] | None:
    """One alternation of every agent pattern: a single scan that rules out the usual miss.

    None when the patterns cannot be combined as they are (a back-reference would point at
    another branch's group, an inline global flag is only valid at the start)."""
    if not agents:
        return None
    texts = [p.pattern for p, _ in agents]
    if any(_BACKREF.search(t) for t in texts):
        return None
    try:
        return re.compile("|".join(f"(?:{t})" for t in texts), flags)
    except re.error:
        return None


def _search_at_boundary(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if m is None:
            return None
        start = m.start()
        if start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_-"):
            return m
        pos = start + 1


def normalise_name(name: str) -> str | None:
    """Lower-case ASCII form of a host name (IDNA for non-ASCII), trailing dot removed."""
    name = name.removesuffix(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return name.lower()


class Intel:
    """Pool domains, pool addresses, ports, miner agents and TLS fingerprints, in memory.

    Built by `load_intel`; after that every method is a pure lookup (the address sets are a
    memory-mapped MaxMind DB). Safe to share between threads: the only state that changes
    after load is two bounded memos of lookup results, touched by single dict operations, and
    the agent alternation compiled once lookups are many (a race compiles it twice at worst).
    """

    def __init__(
        self,
        *,
        domains: dict[str, DomainMatch],
        allow_suffix: frozenset[str],
        allow_exact: frozenset[str],
        pool_ports: frozenset[int],
        web_ports: frozenset[int],
        agents: tuple[tuple[re.Pattern[str], str], ...],
        tls: dict[tuple[str, str], TlsMatch],
        ip_db: IpSetDb | None,
        geo: GeoDb | None,
        counts: dict[str, int],
        sanctioned: Sanctioned | None = None,
    ) -> None:
        self.sanctioned = sanctioned or Sanctioned()
        self._domains = domains
        self._allow_suffix = allow_suffix
        self._allow_exact = allow_exact
        self._pool_ports = pool_ports
        self._web_ports = web_ports
        self._agents = agents
        # One alternation of every pattern, to rule out a miss in one scan: compiled once
        # misses are common (it costs as much as all the patterns together, a good part
        # of every start, and a replay may never see more than a few miner agents).
        self._agents_any: re.Pattern[str] | None = None
        self._agent_lookups = 0
        # Case-insensitive forms, for non-ASCII agents only: compiled when first needed
        # (compiling 50-odd patterns twice is a good part of every start).
        self._nocase: (
            tuple[tuple[tuple[re.Pattern[str], str], ...], re.Pattern[str] | None] | None
        ) = None
        # Lookup memos: the same few names and user agents recur all day. Bounded by
        # clearing when full (one C call, safe between threads, no eviction order to keep).
        self._domain_memo: dict[str, DomainMatch | None] = {}
        self._agent_memo: dict[str, AgentMatch | None] = {}
        self._tls = tls
        self._ip_db = ip_db
        self._geo = geo
        self._counts = counts

    def prefilter(self) -> tuple[list[str], list[str], list[str], list[str]]:
        """What the compiled core needs to decide what is worth handing up: pool domain
        suffixes, JA3 hashes, JA4 fingerprints and miner agent patterns. A superset test
        only; every match is judged again here."""
        ja3 = [v for (kind, v) in self._tls if kind == "ja3"]
        ja4 = [v for (kind, v) in self._tls if kind == "ja4"]
        return list(self._domains), ja3, ja4, [p.pattern for p, _ in self._agents]

    @classmethod
    def empty(cls) -> Intel:
        """An Intel that matches nothing (for tests and for running without signatures)."""
        return cls(
            domains={},
            allow_suffix=frozenset(),
            allow_exact=frozenset(),
            pool_ports=frozenset(),
            web_ports=frozenset(),
            agents=(),
            tls={},
            ip_db=None,
            geo=None,
            counts={},
        )

    def match_domain(self, name: str) -> DomainMatch | None:
        """The most specific pool entry covering `name`, or None; an allowlist entry covering
        `name` always wins. Case-insensitive, trailing dot ignored, label boundaries only."""
        memo = self._domain_memo
        if name in memo:
            return memo[name]
        found = self._match_domain(name)
        if len(memo) >= _MEMO_DOMAINS:
            memo.clear()
        memo[name] = found
        return found

    def _match_domain(self, name: str) -> DomainMatch | None:
        norm = normalise_name(name)
        if not norm:
            return None
        if norm in self._allow_exact:
            return None
        allow = self._allow_suffix
        domains = self._domains
        found: DomainMatch | None = None
        for suffix in _walk_suffixes(norm):
            if suffix in allow:
                return None
            if found is None:
                found = domains.get(suffix)
        return found

    def match_ip(self, ip: str) -> IpMatch | None:
        """The pool address entry holding `ip` (text form, v4 or v6), or None."""
        if self._ip_db is None:
            return None
        return self._ip_db.lookup(ip)

    def is_pool_port(self, port: int) -> bool:
        return port in self._pool_ports

    def is_web_port(self, port: int) -> bool:
        return port in self._web_ports

    def match_agent(self, text: str) -> AgentMatch | None:
        """The miner named by an agent string; the first matching signature line wins."""
        if not text:
            return None
        memo = self._agent_memo
        if text in memo:
            return memo[text]
        found = self._match_agent(text)
        if len(text) <= _MEMO_AGENT_CHARS:
            if len(memo) >= _MEMO_AGENTS:
                memo.clear()
            memo[text] = found
        return found

    def _match_agent(self, text: str) -> AgentMatch | None:
        if text.isascii():
            # Matching lower-cased text with case-sensitive patterns keeps re's literal-prefix
            # scan, several times faster than IGNORECASE on the browser user agents that
            # make up most misses. ASCII lower() keeps offsets, so spans index `text` too.
            self._agent_lookups += 1
            if self._agent_lookups == _AGENT_SCANS_BEFORE_ANY:
                self._agents_any = _any_of(self._agents, 0)
            subject, agents, any_of = text.lower(), self._agents, self._agents_any
        else:
            if self._nocase is None:
                nocase = tuple((re.compile(p.pattern, re.IGNORECASE), n) for p, n in self._agents)
                self._nocase = (nocase, _any_of(self._agents, re.IGNORECASE))
            subject = text
            agents, any_of = self._nocase
        if any_of is not None and any_of.search(subject) is None:
            # No signature matches anywhere in the text, so none matches at a boundary.
            return None
        for pattern, name in agents:
            m = _search_at_boundary(pattern, subject)
            if m is not None:
                version = text[m.start(1) : m.end(1)] if pattern.groups else None
                return AgentMatch(name=name, version=version or None)
        return None

    def match_tls(self, ja3_hash: str | None, ja4: str | None) -> TlsMatch | None:
        """The listed fingerprint for a ClientHello; JA4 is preferred when both match."""
        if ja4:
            hit = self._tls.get(("ja4", ja4.lower()))
            if hit is not None:
                return hit
        if ja3_hash:
            return self._tls.get(("ja3", ja3_hash.lower()))
        return None

    def enrich(self, ip: str) -> GeoFacts | None:
        """ASN, organisation and country of `ip` from the optional GeoLite2 databases."""
        if self._geo is None:
            return None
        return self._geo.enrich(ip)

    def counts(self) -> dict[str, int]:
        """How many entries of each kind were loaded (for logs and `signatures check`)."""
        return dict(self._counts)

    def close(self) -> None:
        """Release the memory-mapped databases; lookups after this are undefined."""
        if self._ip_db is not None:
            self._ip_db.close()
        if self._geo is not None:
            self._geo.close()


# --- parsing -----------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: Path, line: int, message: str) -> None:
        self.items.append(f"{path}:{line}: {message}")


def _lines(path: Path, errors: _Errors) -> Iterator[tuple[int, str]]:
    """Numbered content lines of a signature file (comments and blanks skipped)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        errors.add(path, 0, f"cannot read: {exc.strerror or exc}")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data.count(b"\n", 0, exc.start) + 1
        errors.add(path, bad_line, f"not UTF-8 text (byte {exc.start})")
        return
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#"):
        errors.add(path, 1, "missing '#' header saying what the file holds and its sources")
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, raw.rstrip("\r\n")


def _columns(
    path: Path, number: int, line: str, least: int, most: int, errors: _Errors
) -> list[str] | None:
    cols = [c.strip() for c in line.split("\t")]
    if not least <= len(cols) <= most:
        want = str(least) if least == most else f"{least} to {most}"
        hint = " (columns are separated by TABs, not spaces)" if len(cols) == 1 else ""
        errors.add(path, number, f"expected {want} TAB-separated columns, got {len(cols)}{hint}")
        return None
    return cols


def check_domain(name: str) -> str | None:
    """Why `name` is not a usable listed domain, or None when it is."""
    if not name:
        return "empty domain"
    if not name.isascii():
        return f"non-ASCII domain {name!r}: write its punycode (xn--) form"
    if name != name.lower():
        return f"domain {name!r} is not lower-case"
    if name.endswith("."):
        return f"domain {name!r} has a trailing dot"
    if len(name) > 253:
        return "domain longer than 253 characters"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return f"{name!r} is an address: list it in {POOL_IPS} or {ALLOW_IPS}"
    labels = name.split(".")
    if len(labels) < 2:
        return f"domain {name!r} has a single label: it would match a whole top-level domain"
    for label in labels:
        if not _LABEL.match(label):
            return f"domain {name!r} has an invalid label {label!r}"
    if is_ascii_digits(labels[-1]):
        return f"domain {name!r} ends in a numeric label"
    return None


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | str:
    """An address or CIDR network, or the reason it is not one."""
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            return f"network {text!r} has host bits set"
        return f"not an address or network: {text!r}"
    if isinstance(network, ipaddress.IPv6Network):
        if network.subnet_of(_IPV4_MAPPED):
            return f"{text!r} is an IPv4-mapped address: write the IPv4 form"
        if network.subnet_of(_IPV4_COMPAT):
            return f"{text!r} lies in ::/96, where IPv4 lives in the compiled DB"
    return network


def _parse_ports(text: str) -> frozenset[int] | str:
    if text in {"-", ""}:
        return frozenset()
    ports: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        port = parse_uint(part)
        if port is None or not 0 < port < 65536:
            return f"bad port {part!r} (want 1..65535, comma-separated, or '-')"
        ports.add(port)
    return frozenset(ports)


class _Loader:
    """Parses one signatures directory, collecting every error instead of stopping."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.errors = _Errors()
        self.domains: dict[str, DomainMatch] = {}
        self.allow_suffix: set[str] = set()
        self.allow_exact: set[str] = set()
        self.pool_ports: set[int] = set()
        self.web_ports: set[int] = set()
        self.agents: list[tuple[re.Pattern[str], str]] = []
        self.tls: dict[tuple[str, str], TlsMatch] = {}
        self.ip_entries: list[IpEntry] = []
        self.ip_sources: list[Path] = []
        self.sanctioned: list[SanctionedEntry] = []

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.dir).as_posix()
        except ValueError:
            return str(path)

    def load_all(self) -> None:
        if not self.dir.is_dir():
            self.errors.add(self.dir, 0, "not a signatures directory")
            return
        known = set(REQUIRED) | set(OPTIONAL)
        for child in sorted(self.dir.iterdir()):
            if child.suffix == ".txt" and child.name not in known:
                self.errors.add(
                    child, 0, f"unknown signature file (expected one of {', '.join(sorted(known))})"
                )
        for name in REQUIRED:
            if not (self.dir / name).is_file():
                self.errors.add(self.dir / name, 0, "missing required signature file")
        self.load_file(self.dir / POOL_DOMAINS, POOL_DOMAINS)
        self.load_file(self.dir / ALLOW_DOMAINS, ALLOW_DOMAINS)
        self.load_file(self.dir / POOL_PORTS, POOL_PORTS)
        self.load_file(self.dir / WEB_PORTS, WEB_PORTS)
        self.load_file(self.dir / MINER_AGENTS, MINER_AGENTS)
        self.load_file(self.dir / TLS_FINGERPRINTS, TLS_FINGERPRINTS)
        self.load_file(self.dir / SANCTIONED, SANCTIONED)
        self.load_ip_files()
        self.load_imported(skip_ips=True)

    def load_ip_files(self) -> None:
        """Only the address lists: what the compiled DB is made of."""
        for name in (POOL_IPS, ALLOW_IPS):
            self.load_file(self.dir / name, name)
        self.load_imported(skip_ips=False, only_ips=True)

    def load_imported(self, *, skip_ips: bool, only_ips: bool = False) -> None:
        folder = self.dir / IMPORTED
        if not folder.is_dir():
            return
        for path in sorted(folder.iterdir()):
            if path.name.endswith(".tmp") or path.name.startswith("."):
                continue
            kind = next((k for s, k in IMPORTED_KINDS.items() if path.name.endswith(s)), None)
            if kind is None:
                if not only_ips:
                    self.errors.add(
                        path,
                        0,
                        "unknown imported file (names end in "
                        + ", ".join(sorted(IMPORTED_KINDS))
                        + ")",
                    )
                continue
            is_ip = kind in {POOL_IPS, ALLOW_IPS}
            if (is_ip and skip_ips) or (only_ips and not is_ip):
                continue
            self.load_file(path, kind)

    def load_file(self, path: Path, kind: str) -> None:
        if kind in OPTIONAL and not path.is_file():
            return
        if not path.is_file():
            return  # reported once as missing by load_all
        parse = {
            POOL_DOMAINS: self.parse_domain_line,
            ALLOW_DOMAINS: self.parse_allow_line,
            POOL_PORTS: self.parse_pool_port_line,
            WEB_PORTS: self.parse_web_port_line,
            MINER_AGENTS: self.parse_agent_line,
            TLS_FINGERPRINTS: self.parse_tls_line,
            POOL_IPS: self.parse_ip_line,
            ALLOW_IPS: self.parse_allow_ip_line,
            SANCTIONED: self.parse_sanctioned_line,
        }[kind]
        if kind in {POOL_IPS, ALLOW_IPS}:
            self.ip_sources.append(path)
        seen: dict[object, int] = {}
        for number, line in _lines(path, self.errors):
            key = parse(path, number, line)
            if key is None:
                continue
            first = seen.setdefault(key, number)
            if first != number:
                self.errors.add(path, number, f"duplicate of line {first}")

    # Each parse_* returns a key identifying the entry (for duplicate checks) or None.

    def parse_domain_line(self, path: Path, number: int, line: str) -> object:
        cols = _columns(path, number, line, 2, 3, self.errors)
        if cols is None:
            return None
        domain, category = cols[0], cols[1]
        note = cols[2] if len(cols) > 2 else ""
        ok = True
        problem = check_domain(domain)
        if problem:
            self.errors.add(path, number, problem)
            ok = False
        if category not in CATEGORIES:
            self.errors.add(
                path,
                number,
                f"unknown category {category!r} (want {' | '.join(sorted(CATEGORIES))})",
            )
            ok = False
        if not ok:
            return None
        # Earlier files win: the curated list loads before imported ones and keeps its notes.
        if domain not in self.domains:
            self.domains[domain] = DomainMatch(domain, category, self.rel(path), note)
        return domain

    def parse_allow_line(self, path: Path, number: int, line: str) -> object:
        cols = _columns(path, number, line, 2, 3, self.errors)
        if cols is None:
            return None
        domain, scope = cols[0], cols[1]
        ok = True
        problem = check_domain(domain)
        if problem:
            self.errors.add(path, number, problem)
            ok = False
        if scope not in ALLOW_SCOPES:
            self.errors.add(path, number, f"unknown scope {scope!r} (want exact | suffix)")
            ok = False
        if not ok:
            return None
        (self.allow_suffix if scope == "suffix" else self.allow_exact).add(domain)
        return domain

    def parse_pool_port_line(self, path: Path, number: int, line: str) -> object:
        return self.parse_port_line(path, number, line, self.pool_ports)

    def parse_web_port_line(self, path: Path, number: int, line: str) -> object:
        return self.parse_port_line(path, number, line, self.web_ports)

    def parse_port_line(self, path: Path, number: int, line: str, into: set[int]) -> object:
        cols = _columns(path, number, line, 1, 2, self.errors)
        if cols is None:
            return None
        text = cols[0]
        first, sep, last = text.partition("-")
        lo = parse_uint(first)
        hi = parse_uint(last) if sep else lo
        if lo is None or hi is None:
            self.errors.add(path, number, f"bad port {text!r} (want PORT or FIRST-LAST)")
            return None
        if not (0 < lo < 65536 and 0 < hi < 65536):
            self.errors.add(path, number, f"port {text!r} out of range 1..65535")
            return None
        if hi < lo:
            self.errors.add(path, number, f"empty port range {text!r}")
            return None
        if hi - lo >= MAX_PORT_RANGE:
            self.errors.add(
                path, number, f"port range {text!r} wider than {MAX_PORT_RANGE} ports"
            )
            return None
        into.update(range(lo, hi + 1))
        return (lo, hi)

    def parse_agent_line(self, path: Path, number: int, line: str) -> object:
        cols = _columns(path, number, line, 2, 2, self.errors)
        if cols is None:
            return None
        # The regex column is not stripped of inner spaces: they may be part of the pattern.
        regex, name = line.split("\t", maxsplit=1)[0], cols[1]
        ok = True
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            self.errors.add(path, number, f"bad regex: {exc}")
            ok = False
        else:
            if pattern.search("") is not None:
                self.errors.add(path, number, f"regex {regex!r} matches the empty string")
                ok = False
            if _UPPER_LITERAL.search(_ESCAPE.sub("", regex)):
                self.errors.add(
                    path, number, f"regex {regex!r} has upper-case letters (text is lower-cased)"
                )
                ok = False
        if not _NAME.match(name):
            self.errors.add(path, number, f"bad miner name {name!r} (lower-case, [a-z0-9._-])")
            ok = False
        if not ok:
            return None
        self.agents.append((pattern, name))
        return regex

    def parse_tls_line(self, path: Path, number: int, line: str) -> object:
        cols = _columns(path, number, line, 4, 5, self.errors)
        if cols is None:
            return None
        fp_kind, value, label, weight_text = cols[:4]
        note = cols[4] if len(cols) > 4 else ""
        ok = True
        if fp_kind not in TLS_KINDS:
            self.errors.add(path, number, f"unknown fingerprint kind {fp_kind!r} (want ja3 | ja4)")
            ok = False
        elif fp_kind == "ja3" and not _JA3.match(value):
            self.errors.add(path, number, f"bad JA3 hash {value!r} (want 32 lower-case hex)")
            ok = False
        elif fp_kind == "ja4" and not _JA4.match(value):
            self.errors.add(path, number, f"bad JA4 fingerprint {value!r}")
            ok = False
        if not label:
            self.errors.add(path, number, "empty label")
            ok = False
        weight = parse_uint(weight_text)
        if weight is None or not 0 <= weight <= 100:
            self.errors.add(path, number, f"bad weight {weight_text!r} (want 0..100)")
            ok = False
        if not ok or weight is None:
            return None
        self.tls[(fp_kind, value)] = TlsMatch(fp_kind, value, label, weight, note)
        return (fp_kind, value)

    def parse_ip_line(self, path: Path, number: int, line: str) -> object:
        cols = _columns(path, number, line, 3, 4, self.errors)
        if cols is None:
            return None
        network = parse_network(cols[0])
        category = cols[1]
        ports = _parse_ports(cols[2])
        note = cols[3] if len(cols) > 3 else ""
        ok = True
        if isinstance(network, str):
            self.errors.add(path, number, network)
            ok = False
        if category not in CATEGORIES:
            self.errors.add(
                path,
                number,
                f"unknown category {category!r} (want {' | '.join(sorted(CATEGORIES))})",
            )
            ok = False
        if isinstance(ports, str):
            self.errors.add(path, number, ports)
            ok = False
        if not ok or isinstance(network, str) or isinstance(ports, str):
            return None
        self.ip_entries.append(IpEntry(network, self.rel(path), category, note, ports))
        return network

    def parse_allow_ip_line(self, path: Path, number: int, line: str) -> object:
        cols = _columns(path, number, line, 1, 2, self.errors)
        if cols is None:
            return None
        network = parse_network(cols[0])
        if isinstance(network, str):
            self.errors.add(path, number, network)
            return None
        note = cols[1] if len(cols) > 1 else ""
        self.ip_entries.append(IpEntry(network, self.rel(path), "allow", note, frozenset()))
        return network

    def parse_sanctioned_line(self, path: Path, number: int, line: str) -> object:
        cols = _columns(path, number, line, 4, 4, self.errors)
        if cols is None:
            return None
        kind, value, port_text, reason = cols
        problem: str | None = None
        if kind not in SANCTIONED_KINDS:
            problem = f"unknown kind {kind!r} (want {' | '.join(sorted(SANCTIONED_KINDS))})"
        elif kind == "pool":
            problem = check_domain(value)
        elif kind == "address":
            network = parse_network(value)
            if isinstance(network, str):
                problem = network
            else:
                value = str(network)
        elif not value or any(c.isspace() for c in value):
            problem = f"bad wallet {value!r}"
        ports = _parse_ports(port_text)
        if problem is None and isinstance(ports, str):
            problem = ports
        elif problem is None and kind == "wallet" and ports:
            problem = "a wallet entry takes no ports ('-')"
        if problem is None and not reason:
            problem = "say why this mining is sanctioned (fourth column)"
        if problem is not None:
            self.errors.add(path, number, problem)
            return None
        assert not isinstance(ports, str)
        self.sanctioned.append(SanctionedEntry(kind, value, ports,
                                               f"{self.rel(path)}:{number}", reason))
        return (kind, value, ports)

    def sources_digest(self) -> str:
        """Identifies the address lists a compiled DB was made from (names and bytes)."""
        h = hashlib.sha256()
        for path in sorted(self.ip_sources, key=self.rel):
            h.update(self.rel(path).encode() + b"\0")
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"\xff")  # unreadable: already reported, never matches a DB
            h.update(b"\0")
        return h.hexdigest()


# --- public entry points -----------------------------------------------------------------


def compile_signatures(directory: str | Path) -> Path:
    """Compile the directory's address lists (pool_ips.txt, allow_ips.txt, imported/*.ips.txt,
    imported/*.allow_ips.txt) into DIRECTORY/pool_ips.mmdb; return its path.

    Raises SignatureLoadError (every error at once) if an address list does not parse.
    """
    loader = _Loader(Path(directory))
    if not loader.dir.is_dir():
        raise SignatureLoadError([f"{loader.dir}:0: not a signatures directory"])
    loader.load_ip_files()
    if loader.errors.items:
        raise SignatureLoadError(loader.errors.items)
    dest = loader.dir / POOL_IPS_MMDB
    compile_ip_sets(loader.ip_entries, dest, digest=loader.sources_digest())
    return dest


def _open_ip_db(loader: _Loader) -> tuple[IpSetDb | None, bool]:
    """The pool address DB: the compiled file when it matches the lists, else a private
    compile. The loader never writes into the signatures directory (it may be read-only)."""
    cached = loader.dir / POOL_IPS_MMDB
    if not loader.ip_sources:
        # A DB shipped without its lists (compiled elsewhere) is used as it is.
        return (IpSetDb.open(cached), True) if cached.is_file() else (None, False)
    digest = loader.sources_digest()
    if cached.is_file() and IpSetDb.digest_of(cached) == digest:
        return IpSetDb.open(cached), True
    user_cache = _cache_dir()
    if user_cache is not None:
        # A per-user cache keyed by the lists' digest: compiled once, not on every start.
        mine = user_cache / f"pool_ips-{digest[:32]}.mmdb"
        try:
            if mine.is_file() and IpSetDb.digest_of(mine) == digest:
                return IpSetDb.open(mine), False
        except (OSError, SignatureError):
            pass  # unreadable (another user's cache, e.g. after a privilege drop): recompile
        try:
            user_cache.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.NamedTemporaryFile(dir=user_cache, suffix=".tmp", delete=False) as f:
                tmp_path = Path(f.name)
            try:
                compile_ip_sets(loader.ip_entries, tmp_path, digest=digest)
                tmp_path.replace(mine)
            finally:
                tmp_path.unlink(missing_ok=True)
            return IpSetDb.open(mine), False
        except OSError:
            pass  # a read-only or full cache: compile privately below
    with tempfile.TemporaryDirectory(prefix="netdetect-intel-") as tmp:
        path = Path(tmp) / POOL_IPS_MMDB
        compile_ip_sets(loader.ip_entries, path, digest=digest)
        # The DB is memory-mapped: the mapping outlives the file's directory entry.
        return IpSetDb.open(path), False


def _cache_dir() -> Path | None:
    """$NETDETECT_CACHE_DIR, else $XDG_CACHE_HOME/netdetect or ~/.cache/netdetect; None
    when there is no such place (a service user without a home) or it is set empty."""
    env = os.environ.get("NETDETECT_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "netdetect"
    home = os.environ.get("HOME")
    return Path(home) / ".cache" / "netdetect" if home else None


def check_signatures(directory: str | Path) -> list[str]:
    """Every error in a signatures directory as `path:line: message`; empty when it loads."""
    loader = _Loader(Path(directory))
    loader.load_all()
    return list(loader.errors.items)


def load_intel(
    directory: str | Path, *, geo_asn: str | None = None, geo_city: str | None = None
) -> Intel:
    """Load a signatures directory (and optional GeoLite2 ASN / City databases) eagerly.

    Raises SignatureLoadError (a SignatureError) listing every error of every file at once.
    """
    loader = _Loader(Path(directory))
    loader.load_all()
    geo: GeoDb | None = None
    if geo_asn is not None or geo_city is not None:
        for label, geo_path in (("GeoLite2-ASN", geo_asn), ("GeoLite2-City", geo_city)):
            if geo_path is not None and not Path(geo_path).is_file():
                loader.errors.add(Path(geo_path), 0, f"{label} database not found")
        if not loader.errors.items:
            try:
                geo = GeoDb.open(geo_asn, geo_city)
            except SignatureError as exc:
                loader.errors.items.append(str(exc))
    if loader.errors.items:
        if geo is not None:
            geo.close()
        raise SignatureLoadError(loader.errors.items)
    try:
        ip_db, cached = _open_ip_db(loader)
    except SignatureError as exc:
        if geo is not None:
            geo.close()
        raise SignatureLoadError([str(exc)]) from exc
    categories = dict.fromkeys(sorted(CATEGORIES), 0)
    for match in loader.domains.values():
        categories[match.category] += 1
    counts = {
        "domains": len(loader.domains),
        **{f"domains_{c.replace('-', '_')}": n for c, n in categories.items()},
        "allow_domains": len(loader.allow_suffix) + len(loader.allow_exact),
        "pool_networks": len({e.network for e in loader.ip_entries if not e.allow}),
        "allow_networks": len({e.network for e in loader.ip_entries if e.allow}),
        "pool_ports": len(loader.pool_ports),
        "web_ports": len(loader.web_ports),
        "miner_agents": len(loader.agents),
        "tls_fingerprints": len(loader.tls),
        "sanctioned": len(loader.sanctioned),
        "pool_ip_db_cached": int(cached),
        "geo": int(geo is not None),
    }
    return Intel(
        domains=loader.domains,
        allow_suffix=frozenset(loader.allow_suffix),
        allow_exact=frozenset(loader.allow_exact),
        pool_ports=frozenset(loader.pool_ports),
        web_ports=frozenset(loader.web_ports),
        agents=tuple(loader.agents),
        tls=loader.tls,
        ip_db=ip_db,
        geo=geo,
        counts=counts,
        sanctioned=Sanctioned(tuple(loader.sanctioned)),
    )
