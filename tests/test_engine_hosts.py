"""Host identity from the traffic: DHCP leases and DNS answers for inventory names, from the
engine through the inventory to the confirmed replay and the live sensor's parent."""

from __future__ import annotations

import asyncio
import math
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.packet import Packet as ScapyPacket
from scapy.utils import mac2str, wrpcap
from test_engine import SUBSCRIBE, Conn, frame

from netdetect import core_engine as engine_mod
from netdetect.core_engine import CoreEngine as Engine
from netdetect.errors import ConfigError
from netdetect.hosts import DNS_MIN_HOLD, HostIdentity, Inventory, dns_learner
from netdetect.intel import Intel
from netdetect.live import Sensor, SniffOptions, _reload_names, _WorkerSpec
from netdetect.model import Alert, HostLease, Suspect
from netdetect.service import network_only, replay_confirmed

CLIENT_MAC = "02:00:00:00:07:07"
SERVER = "10.0.0.1"
LEASED = "10.0.0.7"
XID = 0x3903F326
XID_0 = b"\x01\x01\x06\x00\x00\x00\x00\x00"  # op, htype, hlen, hops, xid 0
DHCP_PENDING = 4096


def dhcp_frame(op: int, options: list[Any], *, src: str = "0.0.0.0", dst: str = "255.255.255.255",
               sport: int = 68, dport: int = 67, xid: int = XID, mac: str = CLIENT_MAC,
               **bootp: Any) -> bytes:
    msg: ScapyPacket = BOOTP(op=op, xid=xid, chaddr=mac2str(mac), **bootp) / DHCP(options=options)
    return frame(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / msg)


def server(options: list[Any], **kw: Any) -> bytes:
    return dhcp_frame(2, options, src=SERVER, sport=67, dport=68, yiaddr=LEASED, **kw)


def exchange(hostname: bytes = b"web-07", lease: int = 3600) -> list[tuple[float, bytes]]:
    """DISCOVER, OFFER, REQUEST, ACK as a Linux client and a typical server send them: the name
    rides in the client's messages only."""
    return [
        (1.0, dhcp_frame(1, [("message-type", "discover"), ("hostname", hostname), "end"])),
        (1.1, server([("message-type", "offer"), ("server_id", SERVER), ("lease_time", lease),
                      "end"])),
        (1.2, dhcp_frame(1, [("message-type", "request"), ("requested_addr", LEASED),
                             ("server_id", SERVER), ("hostname", hostname), "end"])),
        (1.3, server([("message-type", "ack"), ("server_id", SERVER), ("lease_time", lease),
                      "end"])),
    ]


def dns_answer(name: str, address: str, *, alias: str | None = None, ttl: int = 60) -> bytes:
    qname = alias or name
    ans = [DNSRR(rrname=name, type="A", rdata=address, ttl=ttl)]
    if alias is not None:
        ans.insert(0, DNSRR(rrname=alias, type="CNAME", rdata=name, ttl=ttl))
    dns = DNS(id=7, qr=1, ra=1, qd=DNSQR(qname=qname), an=ans)
    return frame(IP(src="10.0.0.53", dst="10.0.0.99") / UDP(sport=53, dport=40000) / dns)


def feed_each(eng: Engine, frames: list[tuple[float, bytes]]) -> None:
    for ts, f in frames:
        eng.feed(ts, 1, f)


def test_exchange_gives_one_lease(intel: Intel) -> None:
    eng = Engine(intel)
    feed_each(eng, exchange())
    assert eng.take_leases() == [HostLease(LEASED, "web-07", 3600.0, 1.3, server=SERVER)]
    assert eng.take_leases() == []
    c = eng.counters()
    assert (c["dhcp_messages"], c["dhcp_leases"], c["dhcp_decode_errors"]) == (4, 1, 0)


def test_batch_path_sends_dhcp_to_the_decoder(intel: Intel) -> None:
    # The REQUEST and ACK reuse the DISCOVER's and OFFER's flows, so they meet the batch fast
    # path's "known flow, quiet UDP" test: DHCP ports must not be quiet.
    eng = Engine(intel)
    eng.feed_frames([(ts, 1, f) for ts, f in exchange()])
    assert eng.take_leases() == [HostLease(LEASED, "web-07", 3600.0, 1.3, server=SERVER)]
    assert eng.counters()["dhcp_messages"] == 4


def test_names_from_ack_fqdn_and_normalisation(intel: Intel) -> None:
    eng = Engine(intel)
    # The server's own name for the client wins over the request's.
    feed_each(eng, [
        (1.0, dhcp_frame(1, [("message-type", "request"), ("hostname", b"old-name"), "end"])),
        (1.1, server([("message-type", "ack"), ("hostname", b"Web-07"), ("lease_time", 60),
                      "end"])),
    ])
    # Only an FQDN (RFC 4702, wire form): its first label, lower-cased.
    fqdn = b"\x05\x00\x00\x06DB-01A\x04corp\x00"
    feed_each(eng, [
        (2.0, dhcp_frame(1, [("message-type", "request"), ("client_FQDN", fqdn), "end"],
                         xid=2)),
        (2.1, server([("message-type", "ack"), ("lease_time", 0xFFFFFFFF), "end"], xid=2)),
    ])
    # INFORM: the client has its address; the ACK's yiaddr is empty and no lease time rides.
    feed_each(eng, [
        (3.0, dhcp_frame(1, [("message-type", "inform"), ("hostname", b"ws-3.corp"), "end"],
                         xid=3, src="10.0.0.33", ciaddr="10.0.0.33")),
        (3.1, dhcp_frame(2, [("message-type", "ack"), "end"], xid=3, src=SERVER, sport=67,
                         dport=68, ciaddr="10.0.0.33")),
    ])
    assert eng.take_leases() == [
        HostLease(LEASED, "web-07", 60.0, 1.1, server=SERVER),
        HostLease(LEASED, "db-01a", math.inf, 2.1, server=SERVER),
        HostLease("10.0.0.33", "ws-3", None, 3.1, server=SERVER),
    ]


def test_unusable_acks_and_naks(intel: Intel) -> None:
    eng = Engine(intel)
    feed_each(eng, [
        # No name anywhere.
        (1.0, server([("message-type", "ack"), ("lease_time", 60), "end"], xid=1)),
        # A name that cannot be a host id (it becomes an MQTT topic level).
        (2.0, dhcp_frame(1, [("message-type", "request"), ("hostname", b"bad name!"), "end"],
                         xid=2)),
        (2.1, server([("message-type", "ack"), "end"], xid=2)),
        # NAK: the request is forgotten, so a later stray ACK has no name.
        (3.0, dhcp_frame(1, [("message-type", "request"), ("hostname", b"web-07"), "end"],
                         xid=3)),
        (3.1, server([("message-type", "nak"), "end"], xid=3)),
        (3.2, server([("message-type", "ack"), "end"], xid=3)),
        # An ACK from a client port is not a server speaking.
        (4.0, dhcp_frame(1, [("message-type", "request"), ("hostname", b"web-07"), "end"],
                         xid=4)),
        (4.1, dhcp_frame(2, [("message-type", "ack"), "end"], xid=4, sport=68, dport=67,
                         yiaddr=LEASED)),
        # A request from long ago does not name today's ACK with a reused xid.
        (5.0, dhcp_frame(1, [("message-type", "request"), ("hostname", b"web-07"), "end"],
                         xid=5)),
        (5.0 + 301, server([("message-type", "ack"), "end"], xid=5)),
        # Damage on the DHCP ports is counted, not fatal.
        (6.0, frame(IP(src=SERVER, dst=LEASED) / UDP(sport=67, dport=68) / (b"\x02" * 250))),
    ])
    assert eng.take_leases() == []
    c = eng.counters()
    assert c["dhcp_unusable"] == 4
    assert c["dhcp_decode_errors"] == 1
    assert c["decode_errors"] == 1


def test_pending_requests_and_untaken_leases_are_bounded(intel: Intel,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "_MAX_LEASES", 1)
    eng = Engine(intel)
    # The core keeps the names of DHCP_PENDING (4096, src/engine.rs) unanswered requests.
    discover = dhcp_frame(1, [("message-type", "discover"), ("hostname", b"h0"), "end"], xid=0)
    assert discover.count(XID_0) == 1
    eng.feed_frames([(i / 1000, 1, discover.replace(XID_0, XID_0[:4] + i.to_bytes(4, "big")))
                     for i in range(DHCP_PENDING + 1)])
    assert eng.counters()["dhcp_dropped"] == 1  # the oldest request (xid 0) made room
    feed_each(eng, [(9.0, server([("message-type", "ack"), "end"], xid=i)) for i in range(3)])
    # xid 0 was forgotten (unusable), xid 1 gives the lease, xid 2 finds no room for its lease.
    assert eng.take_leases() == [HostLease(LEASED, "h0", None, 9.0, server=SERVER)]
    c = eng.counters()
    assert (c["dhcp_unusable"], c["dhcp_leases"], c["dhcp_dropped"]) == (1, 2, 1)
    assert c["leases_dropped"] == 1


# --- the inventory side -----------------------------------------------------------------------


def test_learned_lease_identifies_a_host_without_addresses(intel: Intel) -> None:
    inv = Inventory(((HostIdentity("web-07", "web-team", ("web",)), ()),))
    assert inv.lookup(LEASED, 1.0) is None
    eng = Engine(intel)
    feed_each(eng, exchange())
    assert inv.learn_leases(eng.take_leases()) == 1
    got = inv.lookup(LEASED, 10.0)
    assert got == HostIdentity("web-07", "web-team", ("web",), managed=True, source="dhcp",
                              via=f"DHCP server {SERVER}")
    assert inv.lookup(LEASED, 1.3 + 3600) is None  # the lease ran out
    # A DHCP name the inventory does not list: identified, nobody to ask.
    inv.learn_leases([HostLease("10.0.0.8", "laptop-9", 60.0, 0.0)])
    assert inv.lookup("10.0.0.8", 1.0) == HostIdentity("laptop-9", managed=False, source="dhcp")
    # Ids are matched whatever case the inventory spells them in.
    inv2 = Inventory(((HostIdentity("Web-07"), ()),))
    inv2.learn_leases([HostLease(LEASED, "web-07", 60.0, 0.0)])
    got = inv2.lookup(LEASED, 1.0)
    assert got is not None
    assert (got.host_id, got.managed) == ("Web-07", True)


def test_dns_answer_for_a_declared_name_updates_the_address(intel: Intel) -> None:
    inv = Inventory()
    inv.add(HostIdentity("web-07"), (), names=("web-07.corp.example", "www.Corp.Example."))
    eng = Engine(intel)
    eng.on_dns_answer = dns_learner(inv.names(), eng.add_lease)
    eng.watch_names(inv.names())
    feed_each(eng, exchange())
    inv.learn_leases(eng.take_leases())
    feed_each(eng, [
        (100.0, dns_answer("web-07.corp.example", "10.0.0.9")),
        (101.0, dns_answer("web-07.corp.example", "10.0.0.10", alias="www.corp.example")),
        (102.0, dns_answer("other.corp.example", "10.0.0.11")),  # not declared: ignored
    ])
    leases = eng.take_leases()
    assert leases == [
        HostLease("10.0.0.9", "web-07", 60.0, 100.0, source="dns"),
        # Under the owner name and under the alias the client asked for: both declared.
        HostLease("10.0.0.10", "web-07", 60.0, 101.0, source="dns"),
        HostLease("10.0.0.10", "web-07", 60.0, 101.0, source="dns"),
    ]
    inv.learn_leases(leases)
    got = inv.lookup("10.0.0.9", 200.0)
    assert got == HostIdentity("web-07", source="dns")
    # A TTL of a minute still holds the host's address for DNS_MIN_HOLD.
    assert inv.lookup("10.0.0.10", 101.0 + DNS_MIN_HOLD - 1) == HostIdentity("web-07",
                                                                             source="dns")
    assert inv.lookup("10.0.0.11", 200.0) is None
    # The DHCP lease is still known too.
    assert inv.lookup(LEASED, 200.0) == HostIdentity("web-07", source="dhcp",
                                                        via=f"DHCP server {SERVER}")


def test_no_hook_no_dns_leases(intel: Intel) -> None:
    eng = Engine(intel)
    feed_each(eng, [(1.0, dns_answer("web-07.corp.example", "10.0.0.9"))])
    assert eng.leases == []
    assert eng.counters()["dns_messages"] == 1


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_inventory_file_names(tmp_path: Path) -> None:
    inv = Inventory.load(write(tmp_path, "inv.toml", """
[[host]]
id = "web-07"
names = ["web-07.corp.example", "WWW.corp.example."]

[[host]]
id = "db-01"
addresses = ["10.0.5.1"]
"""))
    assert inv.names() == {"web-07.corp.example": "web-07", "www.corp.example": "web-07"}
    assert inv.lookup("10.0.5.1", 0.0) == HostIdentity("db-01")
    bad = write(tmp_path, "bad.toml", """
[[host]]
id = "a"
names = [7, "a.corp.example", "not a name"]

[[host]]
id = "b"
names = ["A.corp.example"]
""")
    with pytest.raises(ConfigError) as exc:
        Inventory.load(bad)
    lines = str(exc.value).splitlines()
    assert lines == [
        f"{bad}:4: host[0].names[0]: expected a string, got 7",
        f"{bad}:4: host[0].names[2]: 'not a name' is not a DNS name",
        f"{bad}:8: host[1].names[0]: name a.corp.example already belongs to a",
    ]


# --- wiring: confirmed replay and the live parent ---------------------------------------------


class FakeConfirmer:
    """Records who the inventory says each suspect's miner is when it is confirmed."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.seen: list[tuple[str, str | None]] = []

    async def settle(self, suspect: Suspect) -> Alert:
        host = self.inventory.lookup(suspect.miner.ip, suspect.ts)
        self.seen.append((suspect.miner.ip, host.host_id if host else None))
        return network_only(suspect)


def test_replay_confirmed_learns_before_confirming(intel: Intel, tmp_path: Path) -> None:
    dns_host = "10.0.0.9"
    frames = exchange()
    frames.append((2.0, dns_answer("db-01.corp.example", dns_host)))
    for ip, port, t0 in ((LEASED, 40000, 10.0), (dns_host, 40001, 20.0)):
        c = Conn(ip, port, "198.51.100.7", 3333)
        frames += [(t0 + i, f) for i, f in enumerate([*c.syn(), c.c2s(SUBSCRIBE)])]
    cap = tmp_path / "hosts.pcap"
    wrpcap(str(cap), [pkt_at(ts, f) for ts, f in frames])
    inv = Inventory()
    inv.add(HostIdentity("web-07"), ())
    inv.add(HostIdentity("db-01"), (), names=("db-01.corp.example",))
    fake = FakeConfirmer(inv)
    result = asyncio.run(replay_confirmed([str(cap)], intel=intel, confirmer=fake, sinks=[]))
    assert sorted(fake.seen) == [(LEASED, "web-07"), (dns_host, "db-01")]
    assert result.counters["dhcp_leases"] == 1


def pkt_at(ts: float, raw: bytes) -> ScapyPacket:
    from scapy.layers.l2 import Ether

    p: ScapyPacket = Ether(raw)
    p.time = ts
    return p


def test_live_parent_learns_worker_leases() -> None:
    sensor = Sensor(SniffOptions(interface="lo"))
    inv = Inventory(((HostIdentity("web-07"), ()),))
    sensor._confirmer = FakeConfirmer(inv)

    async def handle() -> None:
        async with asyncio.TaskGroup() as tg:
            sensor._handle(("leases", 0, [HostLease(LEASED, "web-07", 60.0, 5.0)]), tg)

    asyncio.run(handle())
    assert inv.lookup(LEASED, 6.0) == HostIdentity("web-07", source="dhcp")


def test_worker_reloads_declared_names(tmp_path: Path) -> None:
    inv_path = write(tmp_path, "inv.toml", '[[host]]\nid = "web-07"\nnames = ["w.corp"]\n')
    cfg = write(tmp_path, "sensor.toml", '[sensor]\nid = "s1"\ninventory = "inv.toml"\n')
    spec = _WorkerSpec(0, "", None, None, (), 10, 10, learn_hosts=True,
                       names=(("old.corp", "x"),), config=str(cfg))
    names = dict(spec.names)
    _reload_names(spec, names)
    assert names == {"w.corp": "web-07"}
    inv_path.write_text('[[host]]\nid = "web-07"\nnames = ["bad name"]\n', encoding="utf-8")
    _reload_names(spec, names)  # broken edit: logged, the old names stay
    assert names == {"w.corp": "web-07"}


# --- spoofed identity (issue 8, item 7) ------------------------------------------------------


def forged_ack(hostname: bytes, *, src: str, yiaddr: str = LEASED) -> bytes:
    """An ACK as any host on the segment can send one: source port 67, any name, any address."""
    return dhcp_frame(2, [("message-type", "ack"), ("hostname", hostname), ("lease_time", 3600),
                          "end"], src=src, sport=67, dport=68, yiaddr=yiaddr)


def test_dhcp_is_learned_only_from_configured_servers(intel: Intel) -> None:
    inv = Inventory(((HostIdentity("web-07"), ()), (HostIdentity("db-01"), ())),
                    dhcp_servers=[SERVER])
    eng = Engine(intel)
    feed_each(eng, exchange())
    feed_each(eng, [(2.0, forged_ack(b"db-01", src="10.0.0.66", yiaddr="10.0.0.8"))])
    assert inv.learn_leases(eng.take_leases()) == 1
    assert inv.lookup(LEASED, 3.0) == HostIdentity("web-07", source="dhcp",
                                                   via=f"DHCP server {SERVER}")
    assert inv.lookup("10.0.0.8", 3.0) is None
    assert inv.counters["dhcp-untrusted-server"] == 1


def test_learned_mappings_never_override_the_inventory(intel: Intel) -> None:
    inv = Inventory()
    inv.add(HostIdentity("web-01"), ("10.0.0.5",), names=("web-01.corp.example",))
    inv.add(HostIdentity("db-01"), ("10.0.1.0/24",))
    inv.add(HostIdentity("laptop-3"), (), names=("laptop-3.corp.example",))
    eng = Engine(intel)
    eng.on_dns_answer = dns_learner(inv.names(), eng.add_lease)
    eng.watch_names(inv.names())
    feed_each(eng, [
        # A forged ACK handing db-01's range address to web-01, and web-01's address to another.
        (1.0, forged_ack(b"web-01", src="10.0.0.66", yiaddr="10.0.1.9")),
        (1.1, forged_ack(b"laptop-3", src="10.0.0.66", yiaddr="10.0.0.5")),
        # A forged DNS answer moving web-01 (pinned to 10.0.0.5) elsewhere.
        (1.2, dns_answer("web-01.corp.example", "10.0.0.77")),
        # laptop-3 has no addresses: DHCP may place it, then DNS disagrees about who is there.
        (1.3, forged_ack(b"laptop-3", src="10.0.0.66", yiaddr="10.0.0.40")),
    ])
    inv.learn_leases(eng.take_leases())
    assert inv.lookup("10.0.1.9", 2.0) == HostIdentity(
        "db-01", conflict="dhcp said 10.0.1.9 is web-01, but the inventory assigns it to db-01")
    got = inv.lookup("10.0.0.5", 2.0)
    assert got is not None
    assert (got.host_id, got.source) == ("web-01", "inventory")
    assert got.conflict == "dhcp said 10.0.0.5 is laptop-3, but the inventory assigns it to web-01"
    assert inv.lookup("10.0.0.77", 2.0) is None
    laptop = inv.lookup("10.0.0.40", 2.0)
    assert laptop is not None
    assert (laptop.host_id, laptop.source, laptop.conflict) == ("laptop-3", "dhcp", None)
    inv.learn_leases([HostLease("10.0.0.40", "web-01", 60.0, 3.0, source="dns")])
    inv.learn_leases([HostLease("10.0.0.41", "laptop-3", 60.0, 3.0, source="dns")])
    laptop = inv.lookup("10.0.0.40", 4.0)
    assert laptop is not None
    assert laptop.host_id == "laptop-3"
    assert inv.counters["conflicts"] == 4


def test_alert_names_the_mapping_source_and_the_conflict() -> None:
    from netdetect.correlate import Allowlist, correlate
    from netdetect.model import Endpoint, Evidence, Verdict

    s = Suspect(flow_id=1, ts=5.0, first_ts=1.0, miner=Endpoint("10.0.0.40", 40000),
                pool=Endpoint("203.0.113.9", 3333), proto="TCP", app_proto="stratum",
                dialect="cryptonote", score=90,
                evidence=(Evidence("stratum-client", 70, "login", 1.0),))
    host = HostIdentity("laptop-3", source="dhcp", via="DHCP server 10.0.0.1",
                        conflict="dns said 10.0.0.40 is web-01, but dhcp said laptop-3")
    alert = correlate(s, host=host, report=None, reason="no answer", allowlist=Allowlist())
    assert alert.verdict is Verdict.NETWORK_ONLY
    assert alert.reasons == (
        "no answer",
        "10.0.0.40 mapped to host laptop-3 by a DHCP lease (DHCP server 10.0.0.1)",
        "host identity disputed: dns said 10.0.0.40 is web-01, but dhcp said laptop-3",
    )


def test_dhcp_servers_config(tmp_path: Path) -> None:
    from netdetect.config import load_sensor_config

    cfg = tmp_path / "sensor.toml"
    cfg.write_text('[sensor]\nid = "s-1"\n\n[hosts]\ndhcp_servers = ["10.0.0.1", "fd00::1"]\n')
    loaded = load_sensor_config(cfg)
    assert loaded.dhcp_servers == ("10.0.0.1", "fd00::1")
    assert Inventory.for_config(loaded).dhcp_servers == {ip_address("10.0.0.1"),
                                                         ip_address("fd00::1")}
    cfg.write_text('[sensor]\nid = "s-1"\n\n[hosts]\ndhcp_servers = ["10.0.0.300"]\n')
    with pytest.raises(ConfigError, match=r"sensor\.toml:5: hosts\.dhcp_servers\[0\]: "
                                          r"'10\.0\.0\.300' is not an IP address"):
        load_sensor_config(cfg)
