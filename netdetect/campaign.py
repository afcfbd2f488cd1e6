"""Groups alerts into campaigns (incidents) by what ties them, across hosts and time.

An alert is read as an `Observation` (from an `Alert` through its EVE form, or straight from an
EVE record, so a report of old EVE files groups exactly as the sensor did). Each observation
yields ties; a *strong* tie merges the alerts that share it, a *weak* one is only shown:

strong, merge on their own
    ``wallet``       the login with worker / difficulty suffixes stripped, when it is shaped
                     like a coin address (globally unique)
    ``account``      a pool account name (``broatcast``), scoped to its pool
    ``exe``          the sha256 of the executable that owns the flow (host report)
    ``persistence``  the text of a cron / systemd / rc entry that relaunches it
    ``url``          a download URL in that entry or in the command line
    ``proxy``        an internal stratum endpoint: its clients, and its own upstream session
    ``session``      one host talking to one pool, by name or address (reconnects, its
                     other ports, failover A records)
    ``host-miner``   one host running one miner agent, TLS client fingerprint or account
    ``pool-set``     the same set of three to sixteen pools used by several hosts (more
                     pools than that is a prober, whose pool set ties nothing)

weak, never merge (shown as links between campaigns)
    ``pool``, ``agent``, ``tls``, ``host``: a popular public pool, a stock miner version, a
    library's TLS fingerprint or a NAT'd / recycled address are shared by unrelated miners.

``exe``, ``host-miner`` and ``pool-set`` are *guarded*: they do not join two campaigns that
each pay known wallets and share none of them (a stock xmrig release binary mines for many
unrelated wallets). Wallets, persistence lines, URLs, proxies and sessions always merge.

A campaign's id is derived from its first alert's strongest tie, so the same input gives the
same ids. When two campaigns merge, the one seen first keeps its id; the other id becomes an
alias (`merged`), which the live sensor publishes so a SIEM can follow it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from netdetect.detect import DEFAULT_HOME_NET, HomeNet

if TYPE_CHECKING:
    from netdetect.model import Alert

STRONG = ("wallet", "account", "exe", "persistence", "url", "proxy", "session", "host-miner",
          "pool-set")
WEAK = ("pool", "agent", "tls", "host")
GUARDED = frozenset({"exe", "host-miner", "pool-set"})
# Order of preference for the tie a campaign id is derived from.
_ID_ORDER = {k: i for i, k in enumerate(("wallet", "account", "persistence", "url", "exe",
                                         "proxy", "host-miner", "session", "pool-set"))}
POOL_SET_MIN = 3
POOL_SET_MAX = 16

# Logins that name nobody: pool defaults and placeholders.
GENERIC_LOGINS = frozenset({
    "x", "xx", "worker", "user", "username", "test", "admin", "anonymous", "default", "miner",
    "guest", "root", "login", "emailaddress", "email", "wallet", "your_wallet", "yourwallet",
    "donate", "pass", "password", "none", "null",
})
_ADDRESS = re.compile(r"(?:0x[0-9a-fA-F]{40}|[A-Za-z0-9]{26,120})")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[A-Za-z]{2,}")
_SUFFIX_SPLIT = re.compile(r"[./+:,;@\s]")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s'\"|;<>`)]+", re.IGNORECASE)


def strip_login(login: str) -> tuple[str, bool] | None:
    """(payee, is_address) of a pool login, or None when it names nobody.

    ``WALLET.worker``, ``WALLET+diff``, ``WALLET/worker/mail``, ``WALLET.paymentid.worker`` all
    give ``WALLET``; an e-mail login (MinerGate style) is kept whole, lower-cased.
    """
    text = login.strip()
    if not text:
        return None
    if _EMAIL.fullmatch(text):
        return text.lower(), False
    head = _SUFFIX_SPLIT.split(text, maxsplit=1)[0]
    if _ADDRESS.fullmatch(head):
        return (head.lower() if head.startswith("0x") else head), True
    if len(head) < 3 or head.lower() in GENERIC_LOGINS:
        return None
    return head, False


class Tie(msgspec.Struct, frozen=True):
    kind: str
    value: str

    @property
    def strong(self) -> bool:
        return self.kind in STRONG

    def label(self) -> str:
        return f"{self.kind}={self.value}"


class Persistence(msgspec.Struct, frozen=True):
    kind: str
    path: str
    line: int
    text: str
    technique: str | None
    download_exec: bool


class Observation(msgspec.Struct, frozen=True):
    """One alert as the grouping and the report see it."""

    ref: str  # unique within a run: flow id and time
    ts: float
    host: str  # host id when known, else the miner's address
    host_ip: str
    host_port: int
    pool_ip: str
    pool_port: int
    pool_name: str | None
    pool_listed: bool  # the pool matched an intel list (a public pool)
    pool_internal: bool  # the "pool" is inside the home net: a proxy or private pool
    dialect: str
    verdict: str
    severity: int
    score: int
    login: str | None
    worker: str | None
    agent: str | None
    ja3: str | None
    ja4: str | None
    techniques: tuple[str, ...]
    process: Mapping[str, Any] | None
    persistence: tuple[Persistence, ...]
    urls: tuple[str, ...]
    evidence: tuple[Mapping[str, Any], ...]
    reasons: tuple[str, ...]
    pcap: str | None
    record: Mapping[str, Any]  # the EVE record it was read from

    @property
    def pool(self) -> str:
        """The pool as a responder names it: its host name, else address:port."""
        return self.pool_name or f"{self.pool_ip}:{self.pool_port}"

    @property
    def wallet(self) -> str | None:
        stripped = strip_login(self.login) if self.login else None
        return stripped[0] if stripped else None

    @property
    def exe_sha256(self) -> str | None:
        return str(self.process["exe_sha256"]) if self.process and self.process.get(
            "exe_sha256") else None

    @classmethod
    def from_eve(cls, record: Mapping[str, Any], home_net: HomeNet | None = None
                 ) -> Observation:
        """An alert record as the EVE sink wrote it (event_type alert or allowed)."""
        nd = _obj(record, "netdetect")
        pool, miner = _obj(nd, "pool"), _obj(nd, "miner")
        tls, alert = _obj(record, "tls"), _obj(record, "alert")
        host = _obj(nd, "host")
        report = _obj(host, "report")
        process = _obj(report, "process") or None
        if process is not None:
            _text(process, "exe_sha256")
            if not all(isinstance(a, str) for a in _list(process, "cmdline")):
                raise TypeError("process.cmdline holds a non-string")
            cpu = process.get("cpu_percent")
            if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int | float)):
                raise TypeError("process.cpu_percent is not a number")
        persistence = tuple(
            Persistence(str(p.get("kind", "")), str(p.get("path", "")), int(p.get("line", 0)),
                        str(p.get("text", "")), _text(p, "technique"),
                        bool(p.get("download_exec")))
            for p in _objs(report, "persistence") if p.get("references_process", True))
        texts = [p.text for p in persistence]
        if process:
            texts.append(" ".join(map(str, process.get("cmdline") or ())))
        urls = tuple(dict.fromkeys(u.rstrip(".,") for t in texts for u in _URL.findall(t)))
        src, dst = str(record.get("src_ip", "")), str(record.get("dest_ip", ""))
        ts = _epoch(str(record.get("timestamp", "")))
        ja3 = _obj(tls, "ja3")
        return cls(
            ref=f"{record.get('flow_id', 0)}@{record.get('timestamp', '')}",
            ts=ts,
            host=_text(host, "id") or src,
            host_ip=src,
            host_port=int(record.get("src_port") or 0),
            pool_ip=dst,
            pool_port=int(record.get("dest_port") or 0),
            pool_name=_text(pool, "host"),
            pool_listed=bool(pool.get("list_match")),
            pool_internal=home_net is not None and dst in home_net,
            dialect=str(nd.get("dialect", "")),
            verdict=str(nd.get("verdict", "")),
            severity=int(alert.get("severity") or 3),
            score=int(nd.get("score") or 0),
            login=_text(miner, "login"),
            worker=_text(miner, "worker"),
            agent=_text(miner, "agent"),
            ja3=_text(ja3, "hash"),
            ja4=_text(tls, "ja4"),
            techniques=tuple(dict.fromkeys([
                *map(str, _list(_obj(alert, "metadata"), "mitre_technique_id") or ("T1496",)),
                *(p.technique for p in persistence if p.technique)])),
            process=process,
            persistence=persistence,
            urls=urls,
            evidence=tuple(_objs(nd, "evidence")),
            reasons=tuple(map(str, _list(nd, "reasons"))),
            pcap=_text(record, "pcap_filename"),
            record=record,
        )

    def ties(self) -> list[Tie]:
        """Every tie this alert offers, strong first (see the module docstring)."""
        out: list[Tie] = []
        if self.login:
            stripped = strip_login(self.login)
            if stripped is not None:
                payee, is_address = stripped
                if is_address:
                    out.append(Tie("wallet", payee))
                else:
                    out.append(Tie("account", f"{self.pool_name or self.pool_ip}|{payee}"))
                    # The same account name on the same host is one miner configuration.
                    out.append(Tie("host-miner", f"{self.host}|login:{payee}"))
        if self.exe_sha256:
            out.append(Tie("exe", self.exe_sha256))
        out += [Tie("persistence", " ".join(p.text.split())) for p in self.persistence
                if p.text.strip()]
        out += [Tie("url", u) for u in self.urls]
        if self.pool_internal:
            out.append(Tie("proxy", self.pool_ip))
        # By address, not port: pools offer one port per difficulty, and TLS on another.
        out.append(Tie("session", f"{self.host}|{self.pool_ip}"))
        if self.pool_name:
            out.append(Tie("session", f"{self.host}|{self.pool_name}"))
        if self.agent:
            out.append(Tie("host-miner", f"{self.host}|{self.agent}"))
        # JA3 and JA4 apart: one client's JA4 differs with the ALPN it offers, its JA3 not.
        out += [Tie("host-miner", f"{self.host}|tls:{fp}") for fp in (self.ja3, self.ja4) if fp]
        out.append(Tie("pool", self.pool))
        if self.agent:
            out.append(Tie("agent", self.agent))
        if self.ja4 or self.ja3:
            out.append(Tie("tls", str(self.ja4 or self.ja3)))
        out.append(Tie("host", self.host))
        return out


def _obj(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested object of an EVE record; absent is empty, anything else is an error."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{key} is not an object")
    return value


def _objs(parent: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = _list(parent, key)
    if not all(isinstance(i, Mapping) for i in items):
        raise TypeError(f"{key} holds a non-object")
    return items


def _list(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{key} is not a list")
    return value


def _text(parent: Mapping[str, Any], key: str) -> str | None:
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{key} is not a string")


def _epoch(text: str) -> float:
    # fromisoformat, not strptime: strptime imports a module on first use, which a sensor
    # that has dropped its privileges may no longer be able to read.
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


# --- the book ------------------------------------------------------------------------------


class Link(msgspec.Struct):
    """Why alerts are in one campaign: one tie and how many alerts / hosts share it."""

    kind: str
    value: str
    alerts: int = 0
    hosts: set[str] = msgspec.field(default_factory=set)


class Campaign(msgspec.Struct):
    """An incident: the alerts that share strong ties, and what they have in common.

    The counters are kept as alerts arrive, so a summary costs what is distinct in it, not
    the number of alerts (a live sensor publishes one per change).
    """

    id: str
    first_seen: float
    last_seen: float
    members: list[Observation] = msgspec.field(default_factory=list)
    merged: list[str] = msgspec.field(default_factory=list)  # ids this campaign absorbed
    links: dict[tuple[str, str], Link] = msgspec.field(default_factory=dict)
    wallet_set: set[str] = msgspec.field(default_factory=set)  # wallet ties, for the guard
    host_counts: Counter[str] = msgspec.field(default_factory=Counter)
    pool_counts: Counter[str] = msgspec.field(default_factory=Counter)
    wallet_counts: Counter[str] = msgspec.field(default_factory=Counter)
    agent_counts: Counter[str] = msgspec.field(default_factory=Counter)
    fp_counts: Counter[str] = msgspec.field(default_factory=Counter)
    exe_counts: Counter[str] = msgspec.field(default_factory=Counter)
    verdict_counts: Counter[str] = msgspec.field(default_factory=Counter)
    technique_set: set[str] = msgspec.field(default_factory=set)
    persistence_seen: dict[tuple[str, str, int, str], tuple[str, Persistence]] = msgspec.field(
        default_factory=dict)
    hub_counts: dict[str, tuple[set[int], Counter[str]]] = msgspec.field(default_factory=dict)
    egress_counts: Counter[tuple[str, str]] = msgspec.field(default_factory=Counter)

    def count(self, o: Observation) -> None:
        self.members.append(o)
        self.first_seen = min(self.first_seen, o.ts)
        self.last_seen = max(self.last_seen, o.ts)
        self.host_counts[o.host] += 1
        self.pool_counts[o.pool] += 1
        if w := o.wallet:
            self.wallet_counts[w] += 1
        if o.agent:
            self.agent_counts[o.agent] += 1
        if o.ja4 or o.ja3:
            self.fp_counts[str(o.ja4 or o.ja3)] += 1
        if e := o.exe_sha256:
            self.exe_counts[e] += 1
        self.verdict_counts[o.verdict] += 1
        self.technique_set.update(o.techniques)
        for p in o.persistence:
            self.persistence_seen.setdefault((o.host, p.path, p.line, p.text), (o.host, p))
        if o.pool_internal:
            ports, members = self.hub_counts.setdefault(o.pool_ip, (set(), Counter()))
            ports.add(o.pool_port)
            members[o.host] += 1
        else:
            self.egress_counts[(o.host_ip, o.pool)] += 1

    def absorb(self, other: Campaign) -> None:
        self.members.extend(other.members)
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.merged += [other.id, *other.merged]
        self.wallet_set |= other.wallet_set
        for mine, theirs in ((self.host_counts, other.host_counts),
                             (self.pool_counts, other.pool_counts),
                             (self.wallet_counts, other.wallet_counts),
                             (self.agent_counts, other.agent_counts),
                             (self.fp_counts, other.fp_counts),
                             (self.exe_counts, other.exe_counts),
                             (self.verdict_counts, other.verdict_counts)):
            mine.update(theirs)
        self.technique_set |= other.technique_set
        for k, v in other.persistence_seen.items():
            self.persistence_seen.setdefault(k, v)
        for ip, (ports, members) in other.hub_counts.items():
            my_ports, my_members = self.hub_counts.setdefault(ip, (set(), Counter()))
            my_ports |= ports
            my_members.update(members)
        self.egress_counts.update(other.egress_counts)
        for key, lk in other.links.items():
            link = self.links.setdefault(key, Link(lk.kind, lk.value))
            link.alerts += lk.alerts
            link.hosts |= lk.hosts

    @property
    def alerts(self) -> int:
        return len(self.members)

    def hosts(self) -> Counter[str]:
        return self.host_counts

    def pools(self) -> Counter[str]:
        return self.pool_counts

    def wallets(self) -> Counter[str]:
        return self.wallet_counts

    def agents(self) -> Counter[str]:
        return self.agent_counts

    def fingerprints(self) -> Counter[str]:
        return self.fp_counts

    def techniques(self) -> list[str]:
        return sorted(self.technique_set)

    def persistence(self) -> list[tuple[str, Persistence]]:
        return list(self.persistence_seen.values())

    def exes(self) -> Counter[str]:
        return self.exe_counts

    def shape(self) -> tuple[int, ...]:
        """What a live update is published for: a change in any of these."""
        return (len(self.host_counts), len(self.pool_counts), len(self.wallet_counts),
                len(self.exe_counts), len(self.persistence_seen), len(self.merged),
                self.severity()[1])

    def proxies(self) -> dict[str, Proxy]:
        """Internal stratum endpoints of this campaign: who uses them, where they go out."""
        out: dict[str, Proxy] = {}
        for ip, (ports, members) in self.hub_counts.items():
            hub = out[ip] = Proxy(ip, set(ports), Counter(members))
            for (src, pool), n in self.egress_counts.items():
                if src == ip:
                    hub.upstream[pool] += n
        return out

    def severity(self) -> tuple[str, int, list[str]]:
        """(level, points, why): one point each for host proof, persistence, spread to a
        second host, to ten hosts, and an internal proxy; critical from three points."""
        why: list[str] = []
        verdicts = set(self.verdict_counts)
        if verdicts & {"confirmed", "confirmed+persistent"}:
            why.append("a host confirmed the miner process")
        if "confirmed+persistent" in verdicts or self.persistence_seen:
            why.append("persistence relaunches it")
        n = len(self.hosts())
        if n >= 2:
            why.append(f"spread to {n} hosts")
        if n >= 10:
            why.append("spread to ten hosts or more")
        if any(p.upstream or len(p.members) > 1 for p in self.proxies().values()):
            why.append("an internal mining proxy relays it")
        points = len(why)
        level = ("low", "medium", "high", "critical")[min(points, 3)]
        return level, points, why

    def summary(self) -> dict[str, Any]:
        """The campaign as one JSON object (live updates, the report's JSON form)."""
        level, points, why = self.severity()
        proxies = self.proxies()
        return {
            "id": self.id,
            "merged": list(self.merged),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "alerts": self.alerts,
            "severity": level,
            "severity_points": points,
            "severity_why": why,
            "hosts": dict(self.hosts().most_common()),
            "pools": dict(self.pools().most_common()),
            "wallets": dict(self.wallets().most_common()),
            "agents": dict(self.agents().most_common()),
            "tls_fingerprints": dict(self.fingerprints().most_common()),
            "exe_sha256": dict(self.exes().most_common()),
            "techniques": self.techniques(),
            "verdicts": dict(self.verdict_counts.most_common()),
            "persistence": [
                {"host": h, "kind": p.kind, "path": p.path, "line": p.line, "text": p.text,
                 "technique": p.technique, "download_exec": p.download_exec}
                for h, p in self.persistence()],
            "proxies": [
                {"hub": hub.ip, "ports": sorted(hub.ports), "members": dict(hub.members),
                 "upstream": dict(hub.upstream)}
                for hub in proxies.values()],
            "ties": [
                {"kind": lk.kind, "value": lk.value, "alerts": lk.alerts,
                 "hosts": sorted(lk.hosts)}
                for lk in sorted(self.links.values(), key=lambda x: (-x.alerts, x.kind, x.value))
                # A pool set ties hosts: on one host alone it explains nothing.
                if lk.alerts > 1 and lk.kind in STRONG
                and (lk.kind != "pool-set" or len(lk.hosts) > 1)],
        }


class Proxy(msgspec.Struct):
    ip: str
    ports: set[int] = msgspec.field(default_factory=set)
    members: Counter[str] = msgspec.field(default_factory=Counter)
    upstream: Counter[str] = msgspec.field(default_factory=Counter)


class Update(msgspec.Struct, frozen=True):
    """What `add` changed: the campaign the alert is now in, and ids it absorbed."""

    campaign: Campaign
    new: bool
    merged: tuple[str, ...]
    ties: tuple[str, ...]  # the strong tie kinds this alert joined by


class CampaignBook:
    """Campaigns kept current as alerts arrive (union-find over strong ties)."""

    def __init__(self, home_net: Iterable[str] = DEFAULT_HOME_NET, *,
                 on_update: Callable[[Update], None] | None = None) -> None:
        self.home_net = HomeNet(home_net)
        self.on_update = on_update
        self._owner: dict[tuple[str, str], str] = {}  # strong tie -> campaign id (maybe stale)
        self._parent: dict[str, str] = {}  # campaign id -> id it merged into
        self._campaigns: dict[str, Campaign] = {}
        self._weak: dict[tuple[str, str], set[str]] = {}
        self._host_pools: dict[str, set[str]] = {}
        self._owner_host: dict[tuple[str, str], str] = {}
        self._sources: dict[str, set[str]] = {}  # miner address -> campaigns it is in

    def __len__(self) -> int:
        return len(self._campaigns)

    def find(self, cid: str) -> str:
        root = cid
        while (p := self._parent.get(root)) is not None:
            root = p
        while (p := self._parent.get(cid)) is not None and p != root:  # path compression
            self._parent[cid] = root
            cid = p
        return root

    def get(self, cid: str) -> Campaign | None:
        return self._campaigns.get(self.find(cid))

    def campaigns(self) -> list[Campaign]:
        """Biggest first, then earliest."""
        return sorted(self._campaigns.values(),
                      key=lambda c: (-len(c.hosts()), -c.alerts, c.first_seen, c.id))

    def tag(self, alert: Alert, record: dict[str, Any] | None = None) -> Alert:
        """`alert` placed in its campaign (an allowlisted match is recorded, not grouped);
        `on_update` hears what changed. `record`, the alert's EVE record as
        `alert_to_eve(alert)` builds it, is read instead of building one, and gains the
        campaign, so that it stays the tagged alert's record, ready for the sinks."""
        if alert.verdict.value == "allowed":
            return alert
        from netdetect.model import CampaignRef
        from netdetect.sinks.eve import alert_to_eve, campaign_field

        if record is None:
            record = alert_to_eve(alert)
        update = self.add(Observation.from_eve(record, self.home_net))
        if self.on_update is not None:
            self.on_update(update)
        ref = CampaignRef(update.campaign.id, update.ties)
        record["netdetect"]["campaign"] = campaign_field(ref)
        return msgspec.structs.replace(alert, campaign=ref)

    def add_record(self, record: Mapping[str, Any]) -> Update:
        return self.add(Observation.from_eve(record, self.home_net))

    def add(self, obs: Observation) -> Update:
        ties = obs.ties()
        strong = [t for t in ties if t.strong]
        wallets = {t.value for t in strong if t.kind == "wallet"}
        joined: list[str] = []
        roots: list[str] = []
        for t in strong:
            owner = self._owner.get((t.kind, t.value))
            if owner is None:
                continue
            root = self.find(owner)
            if root in roots:
                continue
            if t.kind in GUARDED and _conflict(wallets, self._campaigns[root].wallet_set):
                continue
            roots.append(root)
            joined.append(t.kind)
            wallets |= self._campaigns[root].wallet_set
        # A proxy's own upstream session: its miner address is a known internal endpoint.
        hub = self._owner.get(("proxy", obs.host_ip))
        if hub is not None and (root := self.find(hub)) not in roots:
            roots.append(root)
            joined.append("proxy")
        # An internal endpoint seen earlier as a miner (its upstream session came first).
        if obs.pool_internal:
            for cid in self._sources.get(obs.pool_ip, ()):
                if (root := self.find(cid)) not in roots:
                    roots.append(root)
                    joined.append("proxy")
        if roots:
            target = self._campaigns[roots[0]]
        else:
            cid = campaign_id(strong, obs)
            while cid in self._campaigns or cid in self._parent:  # same anchor, other incident
                cid = campaign_id([Tie("ref", cid + obs.ref)], obs)
            target = self._campaigns[cid] = Campaign(cid, obs.ts, obs.ts)
        merged: list[str] = []
        for r in roots[1:]:
            target, gone = self._merge(target, self._campaigns[r])
            merged.append(gone.id)
        self._place(target, obs, ties, strong)
        target = self._pool_set(target, obs, merged, joined)
        return Update(target, not roots, tuple(merged), tuple(dict.fromkeys(joined)))

    def _pool_set(self, c: Campaign, obs: Observation, merged: list[str],
                  joined: list[str]) -> Campaign:
        """Other hosts using the same set of pools as this host does in this campaign.

        Kept per (campaign, host), not per host: an address reused by unrelated miners
        (NAT, DHCP, lab defaults) must not pool their pools. Past POOL_SET_MAX pools a host
        is a prober, and its pool set ties nothing.
        """
        pools = self._host_pools.setdefault(f"{c.id}|{obs.host}", set())
        if len(pools) > POOL_SET_MAX:
            return c
        pools.add(obs.pool_name or obs.pool_ip)
        if not POOL_SET_MIN <= len(pools) <= POOL_SET_MAX:
            return c
        key = ("pool-set", "|".join(sorted(pools)))
        owner = self._owner.get(key)
        if owner is None:
            self._owner[key] = c.id
            self._owner_host[key] = obs.host
        elif ((root := self.find(owner)) != c.id and self._owner_host[key] != obs.host
              and not _conflict(c.wallet_set, self._campaigns[root].wallet_set)):
            c, gone = self._merge(c, self._campaigns[root])
            merged.append(gone.id)
            joined.append("pool-set")
        if owner is None or self.find(owner) == c.id:
            lk = c.links.setdefault(key, Link(*key))
            lk.alerts += 1
            lk.hosts.add(obs.host)
        return c

    def _place(self, c: Campaign, obs: Observation, ties: list[Tie], strong: list[Tie]) -> None:
        c.count(obs)
        for t in strong:
            self._owner.setdefault((t.kind, t.value), c.id)
            if t.kind == "wallet":
                c.wallet_set.add(t.value)
        links = c.links
        for t in [*strong, *(t for t in ties if not t.strong)]:
            key = (t.kind, t.value)
            lk = links.get(key)
            if lk is None:
                lk = links[key] = Link(t.kind, t.value)
            lk.alerts += 1
            lk.hosts.add(obs.host)
        for t in ties:
            if not t.strong:
                _add(self._weak, (t.kind, t.value), c.id)
        _add(self._sources, obs.host_ip, c.id)

    def _merge(self, a: Campaign, b: Campaign) -> tuple[Campaign, Campaign]:
        """The campaign seen first keeps its id (ties: the smaller id). Index entries of the
        other id stay as they are: `find` resolves them."""
        keep, gone = (a, b) if (a.first_seen, a.id) <= (b.first_seen, b.id) else (b, a)
        keep.absorb(gone)
        del self._campaigns[gone.id]
        self._parent[gone.id] = keep.id
        return keep, gone

    def related(self, c: Campaign) -> list[tuple[str, str, str]]:
        """(other campaign id, weak tie kind, value): shown, never merged."""
        out: set[tuple[str, str, str]] = set()
        for (kind, value), lk in c.links.items():
            if kind not in WEAK:
                continue
            for other in self._weak.get((kind, value), ()):
                root = self.find(other)
                if root != c.id:
                    out.add((root, kind, lk.value))
        return sorted(out)


_K = TypeVar("_K")


def _add(index: dict[_K, set[str]], key: _K, cid: str) -> None:
    found = index.get(key)
    if found is None:
        index[key] = {cid}
    else:
        found.add(cid)


def _conflict(a: set[str], b: set[str]) -> bool:
    return bool(a) and bool(b) and not (a & b)


def campaign_id(ties: Sequence[Tie], obs: Observation) -> str:
    """Stable id from the strongest tie of a campaign's first alert."""
    ranked = sorted(ties, key=lambda t: _ID_ORDER.get(t.kind, 99))
    anchor = ranked[0].label() if ranked else obs.ref
    return "ndc-" + hashlib.sha256(anchor.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def group(records: Iterable[Mapping[str, Any]],
          home_net: Iterable[str] = DEFAULT_HOME_NET) -> CampaignBook:
    """Campaigns of EVE alert records (other event types are skipped), in file order."""
    book = CampaignBook(home_net)
    for r in records:
        if r.get("event_type") == "alert":
            book.add_record(r)
    return book


