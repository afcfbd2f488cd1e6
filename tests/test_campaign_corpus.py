"""Campaigns on the real corpus and on the project's proxy captures, replayed in one run."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import pytest
from eve_schema import check_eve_text

from netdetect.campaign import Campaign
from netdetect.intel import Intel
from netdetect.model import Alert
from netdetect.service import RunResult, replay
from netdetect.sinks.eve import EveWriter

REPO = Path(__file__).resolve().parents[1]
CGMINER = ("nesfit__cgminer.g0.pcapng", "nesfit__cgminer.s0.pcapng",
           "nesfit__cgminer.s1.pcapng")
# Captures that may share a campaign, and the tie that justifies it (everything else must not).
RELATED = {
    # the same prober machine (one address, cgminer 3.7.2) in three recordings
    frozenset(CGMINER): {"host-miner", "session", "account"},
    # nDPI's merged capture holds the nesfit eth-eu1 session: the same wallet, another worker
    frozenset({"ndpi__mining.pcapng", "nesfit__eth-eu1.nanopool.org.pcapng"}): {"wallet"},
    # the lab's XMRig client against the lab pool, plain and over TLS
    frozenset({"lab__xmrig-plain.pcap", "lab__xmrig-tls.pcap"}): {"proxy", "session"},
    # One replay run is one network: coinhive-stratum's DNS answer names coinhive.com's CDN
    # address, so coinhive.pcap's TLS flow from the same address to it alerts as coinhive.com
    # too. Those two flows (only those) are one host at one pool: a session tie.
    frozenset({"zeekcm__coinhive-stratum.pcap", "zeekcm__coinhive.pcap"}): {"session"},
}


def _files(c: Campaign) -> frozenset[str]:
    return frozenset(Path(o.pcap or "").name for o in c.members)


@pytest.fixture(scope="module")
def corpus_run(corpus: Path, intel: Intel) -> tuple[RunResult, str]:
    labels = json.loads((corpus / "labels.json").read_text())
    paths = sorted(str(corpus / name) for name in labels["files"])
    buf = io.StringIO()
    result = replay(paths, intel=intel, sinks=[EveWriter(buf)])
    assert result.errors == []
    return result, buf.getvalue()


def _by_file(alerts: list[Alert]) -> dict[str, list[Alert]]:
    out: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts:
        out[Path(a.pcap_filename or "").name].append(a)
    return out


@pytest.mark.corpus
def test_no_two_unrelated_captures_merge(corpus_run: tuple[RunResult, str]) -> None:
    result, _ = corpus_run
    book = result.campaigns
    for c in book.campaigns():
        files = _files(c)
        if len(files) == 1:
            continue
        assert files in RELATED, f"{c.id} merges unrelated captures {sorted(files)}"
        kinds = {t["kind"] for t in c.summary()["ties"]}
        assert kinds & RELATED[files], (c.id, kinds)
    # The address 10.0.2.15 is VirtualBox's NAT default: three unrelated zeek captures,
    # whose miners (bfgminer; CryptoNote to supportxmr; AuthedMine in a browser) stay apart.
    def home(needle: str) -> set[str]:
        return {c.id for c in book.campaigns() for o in c.members if needle in o.pool}

    assert len(home("bitminter") | home("la01.supportxmr") | home("authedmine")) == 3
    for c in book.campaigns():
        zeek = {f for f in _files(c) if f.startswith("zeekcm__")}
        if len(zeek) > 1:
            assert set(c.pools()) == {"coinhive.com"}
            assert c.alerts == 2
    # Benign captures raise nothing, so they are in no campaign.
    assert not any(a.pcap_filename and "/benign/" in a.pcap_filename for a in result.alerts)


@pytest.mark.corpus
def test_cgminer_fleet_collapses_to_one_campaign_with_its_pools(
        corpus_run: tuple[RunResult, str]) -> None:
    result, _ = corpus_run
    by_file = _by_file(result.alerts)
    fleet = [a for f in CGMINER for a in by_file[f]]
    assert len(fleet) > 1000
    campaigns = {a.campaign.id for a in fleet if a.campaign}
    roots = {result.campaigns.find(cid) for cid in campaigns}
    assert len(roots) == 1, roots
    c = result.campaigns.get(roots.pop())
    assert c is not None
    assert c.alerts == len(fleet)
    assert _files(c) == frozenset(CGMINER)
    pools = {a.suspect.pool_facts.host or f"{a.suspect.pool.ip}:{a.suspect.pool.port}"
             for a in fleet}
    assert set(c.pools()) == pools
    assert sum(c.pools().values()) == len(fleet)
    assert set(c.hosts()) == {"192.168.1.100"}
    assert set(c.agents()) == {"cgminer/3.7.2"}


@pytest.mark.corpus
def test_two_host_capture_groups_by_host_and_miner(corpus: Path, intel: Intel) -> None:
    result = replay([str(corpus / "mining" / "ndpi__mining.pcapng")], intel=intel, sinks=[])
    campaigns = result.campaigns.campaigns()
    hosts = {a.suspect.miner.ip for a in result.alerts}
    assert len(hosts) == 3
    assert len(campaigns) == len(hosts)
    for c in campaigns:
        assert len(c.hosts()) == 1
    (ewbf,) = [c for c in campaigns if "192.168.2.148" in c.hosts()]
    assert ewbf.alerts == 2  # two Zcash pools, one EWBF miner
    assert set(ewbf.pools()) == {"eu1-zcash.flypool.org", "cn1-zcash.flypool.org"}
    assert [t["kind"] for t in ewbf.summary()["ties"]] == ["host-miner"]


@pytest.mark.corpus
def test_multi_flow_capture_is_one_campaign(corpus: Path, intel: Intel) -> None:
    result = replay([str(corpus / "mining" / "zeekcm__bitcoin-mining.pcap")], intel=intel,
                    sinks=[])
    (c,) = result.campaigns.campaigns()
    assert c.alerts == len(result.alerts) == 13
    assert {"74.84.128.158", "113.21.199.11"} <= {a.suspect.pool.ip for a in result.alerts}
    assert "us1.bitminter.com" in c.pools()
    assert set(c.wallets()) == {"broatcast", "Bigsky"}  # bitminter accounts


@pytest.mark.corpus
def test_campaign_ids_on_corpus_eve_are_schema_valid(corpus_run: tuple[RunResult, str]
                                                     ) -> None:
    _, text = corpus_run
    records = check_eve_text(text)
    alerts = [r for r in records if r["event_type"] == "alert"]
    assert alerts
    assert all("campaign" in r["netdetect"] for r in alerts)


@pytest.mark.parametrize("capture", ["proxy_stratum.pcap", "proxy_stratum_tls.pcap"])
def test_internal_proxy_is_one_campaign_with_its_upstream(capture: str, intel: Intel) -> None:
    buf = io.StringIO()
    result = replay([str(REPO / "pcaps" / capture)], intel=intel, sinks=[EveWriter(buf)])
    (c,) = result.campaigns.campaigns()
    assert c.alerts == 21
    (hub,) = c.proxies().values()
    assert hub.ip == "10.30.0.10"
    assert len(hub.members) == 20
    assert set(hub.members) == {f"10.30.1.{n}" for n in range(11, 31)}
    assert dict(hub.upstream) == {"pool.supportxmr.com": 1}
    level, _, why = c.severity()
    assert level == "critical"
    assert "an internal mining proxy relays it" in why
    records = check_eve_text(buf.getvalue())
    ids = {r["netdetect"]["campaign"]["id"] for r in records if r["event_type"] == "alert"}
    assert ids == {c.id}
    upstream = [r for r in records if r["event_type"] == "alert" and r["src_ip"] == hub.ip]
    assert len(upstream) == 1
    assert upstream[0]["netdetect"]["pool"]["host"] == (
        "pool.supportxmr.com")
