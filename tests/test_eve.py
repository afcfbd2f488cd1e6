"""EVE records as a SIEM consumes them: Suricata's conventions, both schemas, whole lines."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from eve_schema import check_eve_text, check_record
from hypothesis import given
from hypothesis import strategies as st

from netdetect.campaign import CampaignBook
from netdetect.intel import Intel
from netdetect.model import (
    Alert,
    CampaignRef,
    Endpoint,
    Evidence,
    FlowEnd,
    MinerFacts,
    PoolFacts,
    Suspect,
    Verdict,
)
from netdetect.service import replay
from netdetect.sinks.eve import (
    FLOW_ID_MASK,
    EveWriter,
    alert_to_eve,
    community_id,
    eve_line,
    eve_timestamp,
    flow_to_eve,
    in_context,
    netdetect_schema,
    signature_text,
)

REPO = Path(__file__).resolve().parents[1]
PCAPS = REPO / "pcaps"


def _suspect(src: str, sport: int, dst: str, dport: int, proto: str = "TCP",
             dialect: str = "stratum-v1", pool: str | None = None,
             flow_id: int = (1 << 63) + 12345) -> Suspect:
    return Suspect(
        flow_id=flow_id, ts=1.7e9, first_ts=1.7e9 - 1, miner=Endpoint(src, sport),
        pool=Endpoint(dst, dport), proto=proto, app_proto="stratum", dialect=dialect,
        score=90, evidence=(Evidence("stratum-client", 70, "x", 1.7e9),),
        pool_facts=PoolFacts(host=pool, host_source="dns" if pool else None),
    )


@pytest.fixture(scope="module")
def all_pcaps(intel: Intel) -> list[dict[str, object]]:
    """Every project capture in one run, as `netdetect replay pcaps/` would read them."""
    buf = io.StringIO()
    replay([str(PCAPS)], intel=intel, sinks=[EveWriter(buf)])
    return check_eve_text(buf.getvalue())


def test_flow_id_fits_51_bits_and_matches_the_flow_record(
        all_pcaps: list[dict[str, object]]) -> None:
    # The tunnel variants of one session (wrap_*.pcap) are one 5-tuple replayed from several
    # captures: several flows with one flow_id, each record following its own alert in order.
    alerts: dict[object, list[dict[str, object]]] = defaultdict(list)
    for e in all_pcaps:
        if e["event_type"] in ("alert", "allowed"):
            alerts[e["flow_id"]].append(e)
    flows = [e for e in all_pcaps if e["event_type"] == "flow"]
    assert alerts
    assert flows
    for e in all_pcaps:
        assert isinstance(e["flow_id"], int)
        assert 0 <= e["flow_id"] < 2**51  # exact in an IEEE double, as jq and JS read it
    for f in flows:
        a = alerts[f["flow_id"]].pop(0)
        for key in ("src_ip", "src_port", "dest_ip", "dest_port", "community_id",
                    "pcap_filename"):
            assert f[key] == a[key], key


def test_one_constant_signature_per_signature_id(all_pcaps: list[dict[str, object]]) -> None:
    texts: dict[int, set[str]] = defaultdict(set)
    for e in all_pcaps:
        if e["event_type"] == "alert":
            alert = e["alert"]
            assert isinstance(alert, dict)
            texts[alert["signature_id"]].add(alert["signature"])
    assert len(texts) >= 8
    assert {sid: len(t) for sid, t in texts.items()} == dict.fromkeys(texts, 1)
    # The pool name moved out of the signature into metadata and netdetect.pool.
    with_pool = [e for e in all_pcaps if e["event_type"] == "alert"
                 and e["netdetect"]["pool"].get("host")]  # type: ignore[index]
    assert with_pool
    for e in with_pool:
        host = e["netdetect"]["pool"]["host"]  # type: ignore[index]
        assert e["alert"]["metadata"]["pool_host"] == [host]  # type: ignore[index]
        assert host not in e["alert"]["signature"]  # type: ignore[index]


def test_unknown_dialect_signature_is_constant() -> None:
    a = _suspect("10.0.0.1", 1, "192.0.2.1", 2, dialect="new-thing", pool="p1.example")
    b = _suspect("10.0.0.1", 1, "192.0.2.1", 2, dialect="other-thing", pool="p2.example")
    assert signature_text(a) == signature_text(b)


def test_pcap_filename_names_the_file_each_alert_came_from(
        all_pcaps: list[dict[str, object]]) -> None:
    expected = json.loads((PCAPS / "expected.json").read_text(encoding="utf-8"))["files"]
    want = {(x["client_ip"], x["client_port"], str(PCAPS / e["file"]))
            for e in expected for x in e["alerts"]}
    got = {(e["src_ip"], e["src_port"], e["pcap_filename"])
           for e in all_pcaps if e["event_type"] != "flow"}
    assert want <= got


def test_community_id_matches_the_spec_vectors() -> None:
    # Community ID v1, seed 0: vectors of the spec's baseline (corelight/community-id-spec).
    assert community_id(_suspect("128.232.110.120", 34855, "66.35.250.204", 80)) == (
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
    assert community_id(_suspect("192.168.1.52", 54585, "8.8.8.8", 53, proto="UDP")) == (
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ=")
    # Direction does not matter: the miner-side view equals the pool-side view.
    assert community_id(_suspect("66.35.250.204", 80, "128.232.110.120", 34855)) == (
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
    assert community_id(_suspect("fd00::1", 1, "2001:db8::2", 3333)) is not None


_ADDR4 = st.ip_addresses(v=4).map(str)
_ADDR6 = st.ip_addresses(v=6).map(str)
_PORT = st.integers(min_value=0, max_value=65535)


@given(
    st.one_of(st.tuples(_ADDR4, _ADDR4), st.tuples(_ADDR6, _ADDR6)),
    _PORT,
    _PORT,
    st.sampled_from(["TCP", "UDP"]),
)
def test_community_id_agrees_with_the_reference_library(
    addrs: tuple[str, str], sport: int, dport: int, proto: str
) -> None:
    import communityid

    src, dst = addrs
    want = communityid.CommunityID(seed=0).calc(
        communityid.FlowTuple(6 if proto == "TCP" else 17, src, dst, sport, dport)
    )
    assert community_id(_suspect(src, sport, dst, dport, proto=proto)) == want


def test_live_context_fields_and_masked_flow_id() -> None:
    s = _suspect("10.0.0.1", 40000, "192.0.2.1", 3333, pool="pool.example")
    alert = Alert(suspect=s, verdict=Verdict.NETWORK_ONLY, severity=2)
    buf = io.StringIO()
    EveWriter(buf, host="sensor-1", in_iface="eth1").write(alert)
    [record] = check_eve_text(buf.getvalue())
    assert record["host"] == "sensor-1"
    assert record["in_iface"] == "eth1"
    assert record["flow_id"] == s.flow_id & FLOW_ID_MASK
    assert "pcap_filename" not in record
    assert record["alert"]["signature"] == "NETDETECT Stratum v1 mining session"


def test_netdetect_schema_ships_in_the_package_and_rejects_strays() -> None:
    schema = netdetect_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    record = alert_to_eve(Alert(suspect=_suspect("10.0.0.1", 1, "192.0.2.1", 2),
                                verdict=Verdict.NETWORK_ONLY, severity=2))
    check_record(record)
    record["netdetect"]["surprise"] = 1
    with pytest.raises(AssertionError, match="surprise"):
        check_record(record)


@given(st.floats(min_value=0.0, max_value=253402300799.0, allow_nan=False))
def test_eve_timestamp_matches_datetime(ts: float) -> None:
    expected = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    assert eve_timestamp(ts) == expected


def test_eve_timestamp_out_of_range_is_a_value_error() -> None:
    for ts in (-1.0, 253402300800.0, 1e300):
        with pytest.raises(ValueError, match="out of range"):
            eve_timestamp(ts)


# JSON values as records hold them: text from the wire (any code point, lone surrogates
# included), integers of any size, nesting.
_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(_TEXT, _JSON, max_size=6))
def test_eve_line_is_the_text_json_dumps_writes(record: dict[str, object]) -> None:
    line = eve_line(record)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert line.isascii()
    assert line.decode("ascii") == json.dumps(record, separators=(",", ":")) + "\n"


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=8))
def test_eve_line_floats_read_back_exactly(values: list[float]) -> None:
    assert json.loads(eve_line({"v": values})) == {"v": values}


def _rich_alert(verdict: Verdict = Verdict.NETWORK_ONLY) -> Alert:
    s = _suspect("10.0.0.1", 40000, "192.0.2.1", 3333, pool="pool.example")
    s = msgspec.structs.replace(s, vlan=7, miner_facts=MinerFacts(
        login="4Awallet", agent="XMRig/6.21.0", ja3="abc", ja4="t13d"))
    return Alert(suspect=s, verdict=verdict, severity=2, pcap_filename="a.pcap",
                 reasons=("host confirmation not requested",))


@pytest.mark.parametrize("context", [{}, {"host": "s1"}, {"in_iface": "eth1"},
                                     {"host": "s1", "in_iface": "eth1"}])
def test_context_goes_where_suricata_puts_it(context: dict[str, str]) -> None:
    alert = _rich_alert()
    plain = alert_to_eve(alert)
    got = list(in_context(plain, context))
    header = ["timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip",
              "dest_port", "proto", "community_id", "app_proto", "vlan", "pcap_filename"]
    head = [*header[:2], *(["in_iface"] if "in_iface" in context else []), *header[2:],
            *(["host"] if "host" in context else [])]
    assert got == [*head, "alert", "tls", "netdetect"]
    assert list(alert_to_eve(alert, context)) == got
    fe = FlowEnd(suspect=alert.suspect, reason="end", pkts_to_pool=1, pkts_to_miner=1,
                 bytes_to_pool=1, bytes_to_miner=1, closed=True, pcap_filename="a.pcap")
    assert list(flow_to_eve(fe, context)) == [*head, "flow", "tls", "netdetect"]
    assert in_context(plain, {}) is plain  # a replay's sinks share the one record


@pytest.mark.parametrize("verdict", [Verdict.NETWORK_ONLY, Verdict.ALLOWED])
def test_the_one_record_of_an_alert_is_what_each_sink_would_build(verdict: Verdict) -> None:
    """The replay builds an alert's record once, tags it, and hands it to every sink: it
    must be the record of the tagged alert, as each sink would build it alone."""
    alert = _rich_alert(verdict)
    record = alert_to_eve(alert)
    tagged = CampaignBook().tag(alert, record)
    assert (tagged.campaign is None) == (verdict is Verdict.ALLOWED)
    assert eve_line(record) == eve_line(alert_to_eve(tagged))
    for context in ({"host": "s1"}, {"host": "s1", "in_iface": "eth1"}):
        shared, alone = io.StringIO(), io.StringIO()
        EveWriter(shared, **context).write(tagged, record)  # type: ignore[arg-type]
        EveWriter(alone, **context).write(tagged)  # type: ignore[arg-type]
        assert shared.getvalue() == alone.getvalue()
        assert json.loads(shared.getvalue())["host"] == "s1"
    if tagged.campaign is not None:
        assert record["netdetect"]["campaign"] == {"id": tagged.campaign.id, "ties": []}
        assert isinstance(tagged.campaign, CampaignRef)
