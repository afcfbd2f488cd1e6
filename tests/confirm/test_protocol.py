"""Signed envelopes, the agent's admission gate and report size capping, without a broker."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from netdetect.agent.daemon import Gate, RateLimitedLog, shedding_queue
from netdetect.agent.protocol import (
    MAX_ENVELOPE_BYTES,
    Envelope,
    Rejected,
    Status,
    decode_status,
    encode_report,
    encode_status,
    key_id,
    open_query,
    refused,
    seal_query,
)
from netdetect.agent.schema import (
    MAX_REPORT_BYTES,
    FlowSpec,
    HostQuery,
    HostReport,
    PersistenceEntry,
    ProcessFacts,
    TopProcess,
)
from netdetect.agent.topics import (
    host_of_report_topic,
    host_of_status_topic,
    report_topic,
    response_topic_ok,
    status_topic,
    valid_id,
)
from netdetect.config import AgentConfig
from netdetect.errors import AgentError

from .conftest import TOKEN

KEY = Ed25519PrivateKey.generate()
TRUSTED = {key_id(KEY.public_key()): KEY.public_key()}
RT = report_topic("sensor-1", TOKEN, "web-01")
NOW = 1_700_000_000.0


def make_query(nonce: str = "0" * 31 + "1", **kw: object) -> HostQuery:
    fields: dict[str, object] = {
        "v": 1, "host_id": "web-01", "nonce": nonce, "issued_at": NOW, "expires_at": NOW + 30,
        "flow": FlowSpec(proto="tcp", remote_ip="198.51.100.7", remote_port=3333,
                         local_ip="10.0.0.5", local_port=50123),
    }
    fields.update(kw)
    return HostQuery(**fields)  # type: ignore[arg-type]


def gate(**kw: object) -> Gate:
    base: dict[str, object] = {"host_id": "web-01", "mqtt": None, "trusted_keys": (),
                               "clock_skew": 5.0, "max_query_ttl": 120.0, "nonce_cache": 16}
    base.update(kw)
    cfg = AgentConfig(**base)  # type: ignore[arg-type]
    return Gate(cfg, TRUSTED, clock=lambda: NOW + 1)


def test_seal_open_round_trip() -> None:
    q = make_query()
    assert open_query(seal_query(q, RT, KEY), RT, TRUSTED) == q


def test_signature_binds_the_response_topic() -> None:
    env = seal_query(make_query(), RT, KEY)
    with pytest.raises(Rejected) as err:
        open_query(env, report_topic("sensor-2", TOKEN, "web-01"), TRUSTED)
    assert err.value.reason == "bad-signature"


def test_signature_covers_every_query_byte() -> None:
    env = msgspec.json.decode(seal_query(make_query(), RT, KEY), type=Envelope)
    raw = base64.b64decode(env.query)
    tampered = raw.replace(b'"remote_port":3333', b'"remote_port":3334')
    assert tampered != raw
    forged = msgspec.structs.replace(env, query=base64.b64encode(tampered).decode())
    with pytest.raises(Rejected) as err:
        open_query(msgspec.json.encode(forged), RT, TRUSTED)
    assert err.value.reason == "bad-signature"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (msgspec.json.encode(make_query()), "unsigned"),
        (b'{"v":1,"kid":"x","query":"e30="}', "unsigned"),
        (b"\x00\x01garbage", "malformed"),
        (b"[]", "malformed"),
        (b"x" * (MAX_ENVELOPE_BYTES + 1), "oversized"),
    ],
)
def test_structural_refusals(payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as err:
        open_query(payload, RT, TRUSTED)
    assert err.value.reason == reason


def test_unknown_key_and_missing_response_topic() -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(Rejected) as err:
        open_query(seal_query(make_query(), RT, other), RT, TRUSTED)
    assert err.value.reason == "unknown-key"
    with pytest.raises(Rejected) as err:
        open_query(seal_query(make_query(), RT, KEY), None, TRUSTED)
    assert err.value.reason == "no-response-topic"


def test_empty_signature_is_unsigned() -> None:
    env = msgspec.json.decode(seal_query(make_query(), RT, KEY), type=Envelope)
    with pytest.raises(Rejected) as err:
        open_query(msgspec.json.encode(msgspec.structs.replace(env, sig="")), RT, TRUSTED)
    assert err.value.reason == "unsigned"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_open_query_only_ever_raises_rejected(data: bytes) -> None:
    reason = "accepted"
    try:
        open_query(data, RT, TRUSTED)
    except Rejected as exc:
        reason = exc.reason
    assert reason in {"oversized", "malformed", "unsigned", "version", "unknown-key"}


def test_open_query_truncated_at_every_index() -> None:
    env = seal_query(make_query(), RT, KEY)
    for i in range(len(env)):
        with pytest.raises(Rejected):
            open_query(env[:i], RT, TRUSTED)


# --- the gate ---------------------------------------------------------------------------------


def admit(g: Gate, q: HostQuery, rt: str = RT, corr: bytes | None = None) -> HostQuery:
    return g.admit(seal_query(q, rt, KEY), rt, q.nonce.encode() if corr is None else corr)


@pytest.mark.parametrize(
    ("query", "rt", "reason"),
    [
        (make_query(host_id="db-01"), RT, "wrong-host"),
        (make_query(issued_at=NOW - 100, expires_at=NOW - 10), RT, "expired"),
        (make_query(issued_at=NOW + 60, expires_at=NOW + 70), RT, "future"),
        (make_query(expires_at=NOW + 1000), RT, "ttl-too-long"),
        (make_query(expires_at=NOW - 1), RT, "malformed"),
        (make_query(), "netdetect/v1/hosts/web-01/query", "bad-response-topic"),
        (make_query(), report_topic("sensor-1", TOKEN, "db-01"), "bad-response-topic"),
        (make_query(nonce="NOT-HEX" + "0" * 25), RT, "malformed"),
    ],
)
def test_gate_refusals_are_counted(query: HostQuery, rt: str, reason: str) -> None:
    g = gate()
    with pytest.raises(Rejected) as err:
        admit(g, query, rt)
    assert err.value.reason == reason
    assert g.counters == {"received": 1, reason: 1}


def test_gate_skew_tolerance() -> None:
    g = gate()
    # Expired 3 s ago and issued 3 s ahead are both inside the 5 s skew.
    assert admit(g, make_query(nonce="a" * 32, issued_at=NOW - 20, expires_at=NOW - 2))
    assert admit(g, make_query(nonce="b" * 32, issued_at=NOW + 4, expires_at=NOW + 30))


def test_gate_correlation_must_be_the_nonce() -> None:
    g = gate()
    with pytest.raises(Rejected) as err:
        admit(g, make_query(), corr=b"other")
    assert err.value.reason == "bad-correlation"


def test_gate_replay_and_bounded_cache() -> None:
    g = gate(nonce_cache=16)
    q = make_query()
    assert admit(g, q) == q
    with pytest.raises(Rejected) as err:
        admit(g, q)
    assert err.value.reason == "replayed"
    # A refused query does not burn its nonce.
    fresh = make_query(nonce="c" * 32)
    with pytest.raises(Rejected):
        admit(g, fresh, corr=b"wrong")
    assert admit(g, fresh) == fresh
    for i in range(14):
        admit(g, make_query(nonce=f"{i + 100:032x}"))
    with pytest.raises(Rejected) as err:
        admit(g, make_query(nonce="d" * 32))
    assert err.value.reason == "replay-cache-full"
    # Once the remembered queries expired, their slots free up.
    g.clock = lambda: NOW + 100
    assert admit(g, make_query(nonce="e" * 32, issued_at=NOW + 90, expires_at=NOW + 120))


def test_gate_bounds_query_cost() -> None:
    g = gate(max_cpu_window=1.5, max_top_n=3)
    b = g.bounded(make_query(cpu_window=600.0, top_n=10_000))
    assert (b.cpu_window, b.top_n) == (1.5, 3)
    b = g.bounded(make_query(cpu_window=-5.0, top_n=-1))
    assert (b.cpu_window, b.top_n) == (0.0, 0)


# --- topics, statuses, reports ----------------------------------------------------------------


def test_topic_helpers() -> None:
    assert status_topic("web-01") == "netdetect/v1/hosts/host:web-01/status"
    assert host_of_status_topic("netdetect/v1/hosts/host:web-01/status") == "web-01"
    # A level that is not a host certificate's CN names no host: a sensor's or reader's
    # certificate (whose CN the ACL patterns substitute just the same) cannot speak for one.
    for level in ("web-01", "sensor:web-01", "reader:web-01", "host:", "host:a/b", "+"):
        assert host_of_status_topic(f"netdetect/v1/hosts/{level}/status") is None
    assert host_of_status_topic("netdetect/v1/hosts/host:web-01/query") is None
    assert RT.endswith("/reports/host:web-01")
    assert host_of_report_topic(RT, "sensor-1", TOKEN) == "web-01"
    assert host_of_report_topic(RT, "sensor-2", TOKEN) is None
    assert response_topic_ok(RT, "web-01")
    assert not response_topic_ok(RT + "/x", "web-01")
    assert not response_topic_ok("netdetect/v1/sensors/#/reports/host:web-01", "web-01")
    assert not response_topic_ok(RT.replace("host:web-01", "web-01"), "web-01")
    assert valid_id("web-01.example_1")
    for bad in ("", "a/b", "a+b", "#", "-x", "a b", "x" * 65):
        assert not valid_id(bad)


def test_status_round_trip_and_refusals() -> None:
    s = Status(state="online", host_id="web-01", ts=NOW, counters={"answered": 3})
    assert decode_status(encode_status(s)) == s
    for bad in (b"online", b'{"state":"dancing","host_id":"x","ts":1}',
                b'{"state":"online","host_id":"x","ts":1,"extra":1}', b"{" * 20000):
        with pytest.raises(AgentError):
            decode_status(bad)


def _big_report() -> HostReport:
    proc = ProcessFacts(
        pid=4242, ppid=1, name="kworkerds", user="www-data", exe="/tmp/.x/kworkerds",
        exe_deleted=True, exe_suspicious_dir=True, exe_sha256=None,
        cmdline=["-o", "pool.example:3333", *(["A" * 4000] * 100)], cwd="/tmp", start_time=NOW,
        cgroup=None, container_id=None, netns=None, threads=8, cpu_percent=390.0,
        rss_bytes=2_400_000_000, hugepages_kb=2_097_152, traits=["xmrig-cmdline"],
    )
    persistence = [
        PersistenceEntry(kind="cron", path="/etc/cron.d/x", line=1, text="* * * * * x" * 300,
                         mtime=NOW, references_process=i == 0, download_exec=True)
        for i in range(200)
    ]
    top = [TopProcess(pid=i, name="p" * 200, exe=None, cpu_percent=1.0, rss_bytes=1)
           for i in range(1000)]
    return HostReport(v=1, host_id="web-01", nonce="f" * 32, generated_at=NOW, found=True,
                      process=proc, persistence=persistence, top=top)


def test_encode_report_caps_size_and_keeps_what_matters() -> None:
    raw, truncated = encode_report(_big_report())
    assert truncated
    assert len(raw) <= MAX_REPORT_BYTES
    back = msgspec.json.decode(raw, type=HostReport)
    assert back.process is not None
    assert back.process.pid == 4242
    assert back.top == []
    assert [p.references_process for p in back.persistence] == [True]
    assert "report truncated to fit the size cap" in back.errors


def test_encode_report_last_resort_and_no_op() -> None:
    raw, truncated = encode_report(_big_report(), limit=300)
    back = msgspec.json.decode(raw, type=HostReport)
    assert truncated
    assert back.process is None
    assert back.nonce == "f" * 32
    small = HostReport(v=1, host_id="h", nonce="0" * 32, generated_at=NOW, found=False)
    assert encode_report(small) == (msgspec.json.encode(small), False)


def test_sealing_refuses_oversized_queries() -> None:
    q = make_query(pool_host="x" * 10_000)
    with pytest.raises(AgentError):
        seal_query(q, RT, KEY)


def test_refused_reads_reason_codes() -> None:
    assert refused(0x87)
    assert refused(0x80)
    assert not refused(1)
    assert not refused(0)


def _stateful_gate(path: Path, now: float) -> Gate:
    cfg = AgentConfig(host_id="web-01", mqtt=None, trusted_keys=(),  # type: ignore[arg-type]
                      clock_skew=5.0, max_query_ttl=120.0, nonce_cache=16)
    return Gate(cfg, TRUSTED, clock=lambda: now, state=path)


def test_gate_state_file_survives_restart_and_drops_expired(tmp_path: Path) -> None:
    path = tmp_path / "web-01.nonces.json"
    g = _stateful_gate(path, NOW + 1)
    old = make_query(nonce="a" * 32, expires_at=NOW + 10)
    live = make_query(nonce="b" * 32, expires_at=NOW + 100)
    assert admit(g, old) == old
    assert admit(g, live) == live
    assert not list(tmp_path.glob(".*tmp"))  # replaced, not left behind
    # A restart after `old` (plus the clock skew) expired: only `live` is still remembered.
    later = _stateful_gate(path, NOW + 20)
    assert dict(later._nonces) == {"b" * 32: NOW + 105}


def test_gate_unreadable_state_refuses_queries_issued_before_start(tmp_path: Path) -> None:
    path = tmp_path / "web-01.nonces.json"
    path.write_bytes(b"{not json")
    g = _stateful_gate(path, NOW + 1)
    assert g.counters["nonce-state-unreadable"] == 1
    with pytest.raises(Rejected) as err:
        admit(g, make_query())
    assert err.value.reason == "issued-before-start"
    fresh = make_query(nonce="e" * 32, issued_at=NOW + 2, expires_at=NOW + 30)
    assert admit(g, fresh) == fresh


# --- flood shedding: counted, rate-limited logging ----------------------------------------


def test_rate_limited_log_counts_by_reason_and_writes_one_line_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    note = RateLimitedLog(logging.getLogger("t.flood"), 10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t.flood"):
        for i in range(1000):
            note("queries refused", "bad-signature" if i % 4 else "expired",
                 "query refused: %d", i)
        assert [r.getMessage() for r in caplog.records] == ["query refused: 0"]
        note.flush()  # nothing is due before the interval has passed
        assert len(caplog.records) == 1
        now[0] += 10.5
        note.flush()
        assert [r.getMessage() for r in caplog.records][1:] == [
            "queries refused: 999 more in the last 10s (bad-signature=750, expired=249)"]
        note.flush()
        note("queries beyond capacity", "busy", "busy %s", "x")  # kinds are limited apart
        now[0] += 20
        note("queries refused", "expired", "query refused: %s", "late")  # after a quiet spell
        # A flood that goes on past the interval: one counted line per interval, no more.
        for _ in range(3):
            for _ in range(50):
                now[0] += 0.25
                note("queries refused", "expired", "query refused: %s", "again")
    lines = [r.getMessage() for r in caplog.records][2:]
    assert lines == ["busy x", "query refused: late",
                     "queries refused: 40 more in the last 10s (expired=40)",
                     "queries refused: 40 more in the last 10s (expired=40)",
                     "queries refused: 40 more in the last 10s (expired=40)"]
    assert note.suppressed == 999 + 150 - 3


def test_shedding_queue_counts_and_drops_without_logging_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters: Counter[str] = Counter()
    note = RateLimitedLog(logging.getLogger("t.queue"), 10.0)

    async def run() -> list[int]:
        q = shedding_queue(counters, note)(maxsize=4)
        for i in range(100):
            q.put_nowait(i)  # what aiomqtt calls per incoming message
        return [q.get_nowait() for _ in range(q.qsize())]

    with caplog.at_level(logging.WARNING, logger="t.queue"):
        assert asyncio.run(run()) == [0, 1, 2, 3]
    assert counters["shed-queue-full"] == 96
    assert len(caplog.records) == 1
