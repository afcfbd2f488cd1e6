"""signatures/sanctioned.txt: mining the organisation runs on purpose becomes verdict
`allowed` from the network side alone (no sensor config, no --confirm), recorded in EVE
(event_type "allowed", the entry in netdetect.pool.sanctioned and the reasons), not raised."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from eve_schema import check_eve_text
from test_intel import HEADER, make_sigs

from netdetect.intel import SignatureLoadError, check_signatures, load_intel

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "pcaps" / "demo.pcap"
WALLET = ("48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUy"
          "ZijBGUicoD")


def replay(sigs: Path, eve: Path) -> tuple[int, str, list[dict[str, object]]]:
    done = subprocess.run(
        [sys.executable, "-m", "netdetect", "replay", str(DEMO), "--signatures", str(sigs),
         "--eve", str(eve), "--fail-on-alert"],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return done.returncode, done.stdout + done.stderr, check_eve_text(eve.read_text())


def by_dest(records: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {f"{r['dest_ip']}:{r['dest_port']}": r for r in records
            if r["event_type"] in ("alert", "allowed")}


def test_sanctioned_pool_address_and_wallet_are_allowed_without_confirm(tmp_path: Path) -> None:
    # The control: without entries, the demo's three flows alert.
    code, _, records = replay(make_sigs(tmp_path / "a"), tmp_path / "a.json")
    assert code == 1
    assert {k: r["event_type"] for k, r in by_dest(records).items()} == {
        "198.51.100.23:3333": "alert", "203.0.113.10:3333": "alert",
        "198.51.100.23:9000": "alert"}

    sigs = make_sigs(tmp_path / "b", sanctioned_txt=HEADER
                     + "pool\tsupportxmr.com\t9000\tresearch pool account\n"
                     + "address\t203.0.113.0/24\t-\tinternal mining proxy\n")
    code, out, records = replay(sigs, tmp_path / "b.json")
    assert code == 1, out  # the third flow still alerts
    flows = by_dest(records)
    tls = flows["198.51.100.23:9000"]
    assert tls["event_type"] == "allowed"
    nd = tls["netdetect"]
    assert isinstance(nd, dict)
    assert nd["verdict"] == "allowed"
    entry = ("sanctioned pool supportxmr.com port 9000 (sanctioned.txt:2: research pool "
             "account)")
    assert nd["pool"]["sanctioned"] == entry
    assert nd["reasons"] == [f"allowlisted: {entry}"]
    assert tls["alert"]["action"] == "allowed"  # type: ignore[index]
    proxy = flows["203.0.113.10:3333"]["netdetect"]
    assert isinstance(proxy, dict)
    assert proxy["verdict"] == "allowed"
    assert proxy["pool"]["sanctioned"] == ("sanctioned address 203.0.113.0/24 (sanctioned.txt:3: "
                                           "internal mining proxy)")
    assert flows["198.51.100.23:3333"]["event_type"] == "alert"
    assert "  verdicts: allowed 2, network-only 1\n" in out, out
    assert "10.20.12.9 -> pool.supportxmr.com:9000  tls allowed 100" in out

    # The wallet too, with the worker suffix the miner appends: nothing is raised any more.
    sigs = make_sigs(tmp_path / "c", sanctioned_txt=HEADER
                     + "pool\tsupportxmr.com\t9000\tresearch pool account\n"
                     + "address\t203.0.113.0/24\t-\tinternal mining proxy\n"
                     + f"wallet\t{WALLET}\t-\tresearch wallet\n")
    code, out, records = replay(sigs, tmp_path / "c.json")
    assert code == 0, out
    assert {r["event_type"] for r in by_dest(records).values()} == {"allowed"}


def test_sanctioned_ports_limit_the_entry(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, sanctioned_txt=HEADER
                     + "pool\tpool.supportxmr.com\t3333,443\tonly the plain ports\n"
                     + "address\t198.51.100.23\t3333\tone endpoint\n")
    _, _, records = replay(sigs, tmp_path / "eve.json")
    flows = by_dest(records)
    assert flows["198.51.100.23:9000"]["event_type"] == "alert"  # neither entry covers :9000
    assert flows["198.51.100.23:3333"]["event_type"] == "allowed"


def test_sanctioned_lookups(tmp_path: Path) -> None:
    sigs_text = HEADER + ("pool\tpool.example.org\t-\tr\n"
                          "address\t2001:db8::/32\t443\tr\n"
                          "wallet\tWALLET1\t-\tr\n")
    intel = load_intel(make_sigs(tmp_path, sanctioned_txt=sigs_text))
    s = intel.sanctioned
    assert intel.counts()["sanctioned"] == 3
    m = s.match("192.0.2.1", 1, "EU.Pool.Example.org.", None)
    assert m is not None
    assert m.source == "sanctioned.txt:2"
    assert s.match("192.0.2.1", 1, "notpool.example.org", None) is None  # label boundary
    assert s.match("2001:db8::5", 443, None, None) is not None
    assert s.match("2001:db8::5", 444, None, None) is None
    assert s.match("192.0.2.1", 1, None, "WALLET1.rig7") is not None
    assert s.match("192.0.2.1", 1, None, "WALLET12") is None


@pytest.mark.parametrize(("line", "why"), [
    ("miner\tx.example\t-\tr", "unknown kind 'miner' (want address | pool | wallet)"),
    ("pool\tX.example\t-\tr", "domain 'X.example' is not lower-case"),
    ("address\t10.0.0.1/8\t-\tr", "network '10.0.0.1/8' has host bits set"),
    ("address\t10.0.0.0/8\t70000\tr", "bad port '70000' (want 1..65535, comma-separated, or '-')"),
    ("wallet\tW\t3333\tr", "a wallet entry takes no ports ('-')"),
    ("pool\tx.example\t-\t", "say why this mining is sanctioned (fourth column)"),
    ("pool x.example - r", ("expected 4 TAB-separated columns, got 1 (columns are separated "
                            "by TABs, not spaces)")),
])
def test_sanctioned_errors_name_the_line(tmp_path: Path, line: str, why: str) -> None:
    sigs = make_sigs(tmp_path, sanctioned_txt=HEADER + "pool\tok.example\t-\tr\n" + line + "\n")
    assert check_signatures(sigs) == [f"{sigs / 'sanctioned.txt'}:3: {why}"]
    with pytest.raises(SignatureLoadError):
        load_intel(sigs)


def test_signatures_check_verbose_lists_sanctioned_entries_with_reasons(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, sanctioned_txt=HEADER
                     + "pool\tpool.research.example\t3333,443\tGPU cluster, SEC-1234\n"
                     + "wallet\tW1\t-\tresearch wallet\n")
    done = subprocess.run([sys.executable, "-m", "netdetect", "signatures", "check", "-v",
                           str(sigs)], capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert ("sanctioned (verdict allowed: recorded, never raised):\n"
            "  sanctioned.txt:2: pool pool.research.example port 3333,443: GPU cluster, SEC-1234\n"
            "  sanctioned.txt:3: wallet W1: research wallet\n") in done.stdout
