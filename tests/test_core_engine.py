"""The compiled core under hostile input: bounded by its memory budget and by work done
(counters), never by time; panics never cross into Python."""

from __future__ import annotations

from bench import adversarial as adv
from netdetect import _core
from netdetect.core_engine import CoreEngine
from netdetect.intel import Intel

MiB = 1 << 20


def _core_with(budget: int = 16 * MiB, max_flows: int = 100_000) -> _core.Core:
    core = _core.Core(max_flows=max_flows, memory_budget=budget)
    core.set_intel(["supportxmr.com"], [], [], [])
    return core


def _feed(core: _core.Core, frames: list[tuple[float, int, bytes]]) -> list[_core.Event]:
    out: list[_core.Event] = []
    for i in range(0, len(frames), 4096):
        out.extend(core.feed(frames[i : i + 4096]))
    out.extend(core.finish())
    return out


def test_syn_flood_stays_within_the_budget_and_counts_evictions() -> None:
    budget = 4 * MiB
    core = _core_with(budget)
    _feed(core, list(adv.syn_flood(60_000)))
    c = core.counters()
    assert c["flows_created"] == 60_000
    assert c["memory_peak_bytes"] <= budget
    assert c["flows_budget_evicted"] > 0
    assert c["core_panics"] == 0


def test_flow_cap_evicts_and_counts() -> None:
    core = _core_with(64 * MiB, max_flows=1000)
    _feed(core, list(adv.syn_flood(5000)))
    c = core.counters()
    assert c["flows_evicted"] >= 4000
    assert c["flows_active"] == 0  # finish() drained the rest


def test_reversed_one_byte_segments_are_reassembled_into_one_stream() -> None:
    n = 65536
    core = _core_with(64 * MiB)
    events = _feed(core, list(adv.reversed_one_byte(n)))
    lines = [line for kind, _h, _d, _ts, body in events if kind == _core.K_LINES for line in body]
    # Every byte delivered once, in order, despite 65 k reorderings: each whole line of the
    # stream comes out framed, and the cut-off last one is not a line.
    one = b'{"id":1,"method":"login","params":{"login":"x"}}'
    assert lines == [one] * (n // (len(one) + 1))
    assert core.counters()["core_panics"] == 0


def test_reversed_segments_still_alert(intel: Intel) -> None:
    eng = CoreEngine(intel)
    eng.feed_frames(adv.reversed_one_byte(4096))
    eng.finish()
    suspects = eng.take_suspects()
    assert [s.dialect for s in suspects] == ["cryptonote"]


def test_half_open_tls_and_long_lines_stay_within_the_budget() -> None:
    budget = 8 * MiB
    core = _core_with(budget)
    _feed(core, list(adv.half_open_tls(20_000)) + list(adv.long_json_lines(20_000)))
    c = core.counters()
    assert c["memory_peak_bytes"] <= budget
    assert c["core_panics"] == 0


def test_half_open_dns_over_tcp_counts_against_the_budget() -> None:
    budget = 16 * MiB
    core = _core_with(budget)
    _feed(core, list(adv.half_open_dns_tcp(24_000)))
    c = core.counters()
    # 12 k flows cost ~12 MiB as entries; each also holds the first 1.4 KiB of a 64 KiB
    # message. Counted, those buffers push the total past the budget and the oldest flows
    # are evicted; uncounted, nothing would be.
    assert c["memory_peak_bytes"] <= budget
    assert c["flows_budget_evicted"] > 0
    assert c["core_panics"] == 0


def test_dns_answer_with_hundreds_of_pool_questions_reaches_only_matching_flows() -> None:
    core = _core_with(64 * MiB)
    events = _feed(core, list(adv.dns_pool_bomb(50_100, flows=50_000)))
    answers = [e for e in events if e[0] == _core.K_POOL_ANSWER]
    # 100 answers x 200 questions name one address; the index finds its flows directly.
    assert answers
    assert core.counters()["dns_pool_answers"] == 100 * 200


def test_garbage_frames_never_raise() -> None:
    core = _core_with()
    frames = [(1.0, lt, bytes(range(n % 256)) * 3) for n in range(2000) for lt in (1, 101, 113)]
    core.feed(frames)
    core.finish()
    assert core.counters()["packets"] == len(frames)
