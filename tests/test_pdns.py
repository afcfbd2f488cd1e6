"""Tests for the passive DNS map: CNAME chains, expiry, bounds, real answers from the corpus."""

from __future__ import annotations

import pytest
from test_tls import CORPUS, udp_payloads

from netdetect.decoders.dns import decode_dns
from netdetect.decoders.events import DnsMessage, DnsRecord
from netdetect.errors import DecodeError
from netdetect.pdns import PassiveDns


def answer(*records: DnsRecord, question: str = "pool.example.com", rcode: int = 0) -> DnsMessage:
    return DnsMessage(1, True, rcode, ((question, 1),), records)


CHAIN = answer(
    DnsRecord("pool.example.com", 5, 300, "lb.cdn.net"),
    DnsRecord("lb.cdn.net", 1, 120, "1.2.3.4"),
    DnsRecord("lb.cdn.net", 28, 120, "2001:db8::1"),
)


def test_cname_chain_maps_back_to_question() -> None:
    p = PassiveDns()
    p.learn(CHAIN, now=1000.0)
    assert p.names_for("1.2.3.4", 1000.0) == ("pool.example.com", "lb.cdn.net")
    assert p.names_for("2001:db8::1", 1000.0) == ("pool.example.com", "lb.cdn.net")
    assert p.names_for("5.6.7.8", 1000.0) == ()


def test_long_chain_and_cycle() -> None:
    p = PassiveDns()
    p.learn(
        answer(
            DnsRecord("a.example", 5, 60, "b.example"),
            DnsRecord("b.example", 5, 60, "c.example"),
            DnsRecord("c.example", 5, 60, "a.example"),  # a cycle must not hang learn()
            DnsRecord("c.example", 1, 60, "9.9.9.9"),
            question="a.example",
        ),
        now=0.0,
    )
    assert set(p.names_for("9.9.9.9", 0.0)) == {"a.example", "b.example", "c.example"}


def test_expiry_uses_clamped_ttl() -> None:
    p = PassiveDns(min_ttl=60, max_ttl=3600)
    p.learn(answer(DnsRecord("short.example", 1, 1, "10.0.0.1")), now=0.0)
    p.learn(answer(DnsRecord("long.example", 1, 10**6, "10.0.0.2")), now=0.0)
    assert p.names_for("10.0.0.1", 59.0) == ("short.example",)
    assert p.names_for("10.0.0.1", 60.0) == ()
    assert p.names_for("10.0.0.2", 3599.0) == ("long.example",)
    assert p.names_for("10.0.0.2", 3600.0) == ()
    assert len(p) == 0  # expired addresses are dropped when looked up


def test_most_recent_first_and_refresh() -> None:
    p = PassiveDns()
    p.learn(answer(DnsRecord("one.example", 1, 300, "10.0.0.9")), now=0.0)
    p.learn(answer(DnsRecord("two.example", 1, 300, "10.0.0.9")), now=10.0)
    assert p.names_for("10.0.0.9", 20.0) == ("two.example", "one.example")
    p.learn(answer(DnsRecord("one.example", 1, 300, "10.0.0.9")), now=30.0)
    assert p.names_for("10.0.0.9", 31.0) == ("one.example", "two.example")
    # one.example was refreshed at t=30, two.example expires at 310.
    assert p.names_for("10.0.0.9", 320.0) == ("one.example",)


def test_only_successful_responses_are_learned() -> None:
    p = PassiveDns()
    p.learn(answer(DnsRecord("x.example", 1, 300, "10.1.1.1"), rcode=2), now=0.0)
    query = DnsMessage(
        1, False, 0, (("x.example", 1),), (DnsRecord("x.example", 1, 300, "10.1.1.2"),)
    )
    p.learn(query, now=0.0)
    assert len(p) == 0


def test_bounded_entries_evict_oldest() -> None:
    p = PassiveDns(max_entries=3)
    for i in range(5):
        p.learn(answer(DnsRecord(f"h{i}.example", 1, 300, f"10.0.0.{i}")), now=float(i))
    assert len(p) == 3
    assert p.evictions == 2
    assert p.names_for("10.0.0.0", 5.0) == ()
    assert p.names_for("10.0.0.1", 5.0) == ()
    assert p.names_for("10.0.0.4", 5.0) == ("h4.example",)
    # Re-learning an address makes it the newest, so it survives the next eviction.
    p.learn(answer(DnsRecord("h2.example", 1, 300, "10.0.0.2")), now=6.0)
    p.learn(answer(DnsRecord("h9.example", 1, 300, "10.0.0.9")), now=7.0)
    assert p.names_for("10.0.0.2", 8.0) == ("h2.example",)
    assert p.names_for("10.0.0.3", 8.0) == ()
    assert p.evictions == 3


def test_names_per_ip_capped() -> None:
    p = PassiveDns(max_names_per_ip=2)
    for i in range(4):
        p.learn(answer(DnsRecord(f"n{i}.example", 1, 300, "10.2.2.2")), now=float(i))
    assert p.names_for("10.2.2.2", 5.0) == ("n3.example", "n2.example")
    assert p.name_evictions == 2
    # With a CNAME chain longer than the cap, the question name is the one kept.
    p.learn(CHAIN, now=10.0)
    p2 = PassiveDns(max_names_per_ip=1)
    p2.learn(CHAIN, now=10.0)
    assert p2.names_for("1.2.3.4", 10.0) == ("pool.example.com",)


def test_expire_sweeps() -> None:
    p = PassiveDns(min_ttl=1)
    p.learn(answer(DnsRecord("a.example", 1, 10, "10.3.0.1")), now=0.0)
    p.learn(answer(DnsRecord("b.example", 1, 100, "10.3.0.2")), now=0.0)
    assert p.expire(50.0) == 1
    assert len(p) == 1
    assert p.names_for("10.3.0.2", 50.0) == ("b.example",)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        PassiveDns(max_entries=0)
    with pytest.raises(ValueError):
        PassiveDns(min_ttl=10, max_ttl=5)


def test_real_cloudflare_cname_from_corpus() -> None:
    """zeekcm coinhive-stratum: www.supportxmr.com CNAME www.supportxmr.com.cdn.cloudflare.net."""
    p = PassiveDns()
    payloads = udp_payloads(CORPUS / "mining" / "zeekcm__coinhive-stratum.pcap", 53)
    learned = 0
    for raw in payloads.values():
        try:
            msg = decode_dns(raw)
        except DecodeError:
            continue
        p.learn(msg, now=0.0)
        learned += msg.is_response
    assert learned >= 3
    assert p.names_for("104.20.123.34", 1.0) == (
        "www.supportxmr.com",
        "www.supportxmr.com.cdn.cloudflare.net",
    )
    assert p.names_for("192.110.160.114", 1.0) == ("la01.supportxmr.com",)
    assert p.names_for("104.20.208.59", 1.0) == ("coinhive.com",)
