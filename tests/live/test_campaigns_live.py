"""The live sensor keeps campaigns current: an internal proxy and its 20 miners, replayed
onto a veth pair, become one campaign on every alert and in the campaign updates file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eve_schema import check_record

from .conftest import PCAPS, NetnsFactory, Sniff, tcpreplay

pytestmark = pytest.mark.netns


def test_sniff_publishes_campaign_updates(netns: NetnsFactory, tmp_path: Path,
                                          sniffs: list[Sniff]) -> None:
    updates_path = tmp_path / "campaigns.json"
    ns = netns("camp")
    ns.veth("va", "vb")
    # Two workers: the proxy's miners and its upstream hash to different processes, and the
    # parent still puts them in one campaign.
    s = Sniff(ns, tmp_path, "-i", "vb", "--workers", "2", "-q", "--campaigns",
              str(updates_path))
    sniffs.append(s)
    s.wait_ready()
    # At top speed: the upstream's pool name comes from a DNS answer 95 ms before its login
    # in the recording, microseconds here, and most likely on the other worker; its side
    # channel is read before the login's block, so the name is known all the same.
    sent = tcpreplay(ns, "va", PCAPS / "proxy_stratum.pcap", extra=("--topspeed",))
    assert sent > 0
    assert s.stop() == 0
    alerts = s.eve()
    assert len(alerts) == 21
    for a in alerts:
        check_record(a)
    ids = {a["netdetect"]["campaign"]["id"] for a in alerts}
    updates = [json.loads(line) for line in updates_path.read_text().splitlines()]
    assert updates[0]["change"] == "new"
    final = updates[-1]["campaign"]
    # Every alert carries the id the campaign had when it was raised; the final campaign
    # is that id, or absorbed it.
    assert ids <= {final["id"], *final["merged"]}
    assert final["alerts"] == 21
    assert final["host_count"] == 21
    (hub,) = final["proxies"]
    assert hub == {"hub": "10.30.0.10", "members": 20, "upstream": {"pool.supportxmr.com": 1}}
    assert final["severity"] == "critical"
    assert all(u["event_type"] == "campaign" and u["in_iface"] == "vb" for u in updates)
    # Only changes are published: never more updates than alerts, each one a real change.
    assert len(updates) <= len(alerts)
