"""Address → host identity, and the verdict rules of correlate()."""

from __future__ import annotations

import msgspec
import pytest

from netdetect.agent.schema import HostFacts, HostReport, PersistenceEntry, ProcessFacts, TopProcess
from netdetect.correlate import Allowlist, CorrelateConfig, correlate, wallet_of
from netdetect.hosts import HostIdentity, Inventory
from netdetect.model import Verdict

from .conftest import WALLET, suspect

WEB = HostIdentity("web-01", "web-team", ("web",))
K8S = HostIdentity("k8s-3", None, ("k8s",))


def inventory() -> Inventory:
    return Inventory(((WEB, ("10.0.0.5", "fd00::5")), (K8S, ("10.0.1.0/24", "10.0.0.0/16")),
                      (HostIdentity("lab", managed=False), ("10.0.1.128/25",))),
                     learned_ttl=100.0, max_learned=3)


def test_exact_then_longest_prefix() -> None:
    inv = inventory()
    assert inv.lookup("10.0.0.5", 0) == WEB
    assert inv.lookup("fd00::5", 0) == WEB
    assert inv.lookup("10.0.1.7", 0) == K8S
    lab = inv.lookup("10.0.1.200", 0)
    assert lab is not None
    assert lab.host_id == "lab"
    assert inv.lookup("10.0.200.1", 0) == K8S  # the /16
    assert inv.lookup("10.1.0.1", 0) is None
    assert inv.lookup("not an ip", 0) is None
    assert inv.get("web-01") == WEB


def test_learned_mappings_expire_and_are_bounded() -> None:
    inv = inventory()
    inv.add(HostIdentity("dyn-01", tags=("dyn",)), ())
    inv.learn("10.9.1.9", "dyn-01", now=10.0)
    got = inv.lookup("10.9.1.9", 50.0)
    assert got is not None
    assert (got.host_id, got.source, got.tags) == ("dyn-01", "dhcp", ("dyn",))
    assert inv.lookup("10.9.1.9", 111.0) is None  # lease over
    # What the inventory declares is never overridden: an address in a declared range, or a
    # host the inventory gives addresses, is a conflict instead.
    assert not inv.learn("10.0.1.9", "dyn-01", now=10.0)
    assert not inv.learn("10.9.1.10", "web-01", now=10.0)
    k8s = inv.lookup("10.0.1.9", 50.0)
    assert k8s is not None
    assert (k8s.host_id, k8s.source) == ("k8s-3", "inventory")
    assert k8s.conflict == "dhcp said 10.0.1.9 is dyn-01, but the inventory assigns it to k8s-3"
    assert inv.lookup("10.9.1.10", 50.0) is None
    assert not inv.learn("10.0.0.5", "other", now=0.0)
    exact = inv.lookup("10.0.0.5", 1.0)
    assert exact is not None
    assert exact.host_id == "web-01"  # exact inventory addresses win
    assert inv.counters["conflicts"] == 3
    inv.learn("192.168.5.5", "laptop-7", now=0.0, source="dns", ttl=5)
    laptop = inv.lookup("192.168.5.5", 1.0)
    assert laptop == HostIdentity("laptop-7", managed=False, source="dns")
    for i in range(4):
        inv.learn(f"192.168.9.{i}", "x", now=0.0)
    assert inv.evicted == 2
    assert inv.lookup("192.168.5.5", 1.0) is None


def test_add_rejects_overlaps_and_host_bits() -> None:
    inv = inventory()
    with pytest.raises(ValueError, match="already belongs"):
        inv.add(HostIdentity("dup"), ("10.0.1.0/24",))
    with pytest.raises(ValueError, match="host bits"):
        inv.add(HostIdentity("bad"), ("10.9.0.1/24",))


# --- correlate --------------------------------------------------------------------------------


def proc(**kw: object) -> ProcessFacts:
    base: dict[str, object] = {
        "pid": 4242, "ppid": 1, "name": "kworkerds", "user": "www-data",
        "exe": "/tmp/.x/kworkerds", "exe_deleted": False, "exe_suspicious_dir": True,
        "exe_sha256": "ab" * 32, "cmdline": ["./kworkerds"], "cwd": "/tmp", "start_time": 0.0,
        "cgroup": None, "container_id": None, "netns": None, "threads": 4,
        "cpu_percent": 390.0, "rss_bytes": 50 << 20, "hugepages_kb": 0,
    }
    base.update(kw)
    return msgspec.convert(base, ProcessFacts)


def report(p: ProcessFacts | None, persistence: list[PersistenceEntry] | None = None,
           **kw: object) -> HostReport:
    return HostReport(v=1, host_id="web-01", nonce="0" * 32, generated_at=0.0,
                      found=p is not None, process=p, persistence=persistence or [],
                      **kw)  # type: ignore[arg-type]


def entry(kind: str, *, refs: bool = True, technique: str | None = None) -> PersistenceEntry:
    return PersistenceEntry(kind=kind, path=f"/etc/{kind}", line=3, text="x", mtime=0.0,
                            references_process=refs, download_exec=False, technique=technique)


S = suspect("10.0.0.5", 50123, 3333, score=90)
NONE = Allowlist()


def test_confirmed_by_cpu() -> None:
    a = correlate(S, host=WEB, report=report(proc()), reason=None, allowlist=NONE)
    assert a.verdict is Verdict.CONFIRMED
    assert a.severity == 1
    assert a.mitre == ("T1496",)
    assert a.host_id == "web-01"
    assert any("390% CPU" in r for r in a.reasons)
    assert any("scratch directory" in r for r in a.reasons)


@pytest.mark.parametrize(("facts", "needle"), [
    ({"cpu_percent": 1.0, "rss_bytes": 3 << 30}, "MiB resident"),
    ({"cpu_percent": 1.0, "hugepages_kb": 1 << 20}, "huge pages"),
    ({"cpu_percent": 1.0, "traits": ["cmdline:--donate-level"]}, "miner traits"),
])
def test_confirmed_by_memory_or_traits(facts: dict[str, object], needle: str) -> None:
    a = correlate(S, host=WEB, report=report(proc(**facts)), reason=None, allowlist=NONE)
    assert a.verdict is Verdict.CONFIRMED
    assert any(needle in r for r in a.reasons)


def test_threshold_is_configurable() -> None:
    r = report(proc(cpu_percent=30.0))
    assert correlate(S, host=WEB, report=r, reason=None,
                     allowlist=NONE).verdict is Verdict.NETWORK_ONLY
    assert correlate(S, host=WEB, report=r, reason=None, allowlist=NONE,
                     config=CorrelateConfig(cpu_threshold=25.0)).verdict is Verdict.CONFIRMED


def test_persistent_with_techniques_from_entries() -> None:
    r = report(proc(), [entry("cron"), entry("systemd-service", technique="T1543.002"),
                        entry("cron", refs=False), entry("rc-local")],
               host=HostFacts(cpu_count=4, load1=4.0, msr_module_loaded=True, nr_hugepages=0))
    a = correlate(S, host=WEB, report=r, reason=None, allowlist=NONE)
    assert a.verdict is Verdict.CONFIRMED_PERSISTENT
    assert a.mitre == ("T1496", "T1053.003", "T1543.002", "T1037.004")
    assert sum("relaunches it" in x for x in a.reasons) == 3
    assert any("msr" in x for x in a.reasons)


def test_network_only_reasons() -> None:
    cases = [
        (None, None, "broker unavailable", "host unmanaged: 10.0.0.5 is not in the inventory"),
        (WEB, None, "no answer from web-01 within 10s", "no answer from web-01 within 10s"),
        (HostIdentity("lab", managed=False), None, None, "host lab runs no agent"),
        (WEB, report(None), None, "host web-01 found no process owning the flow"),
    ]
    for host, rep, why, expected in cases:
        a = correlate(S, host=host, report=rep, reason=why, allowlist=NONE)
        assert a.verdict is Verdict.NETWORK_ONLY
        assert a.reasons[0] == expected
        assert a.severity == 2
    low = suspect("10.0.0.5", 1, 2, score=40)
    assert correlate(low, host=None, report=None, reason=None, allowlist=NONE).severity == 3


def test_idle_owner_is_network_only_with_reason() -> None:
    a = correlate(S, host=WEB, report=report(proc(cpu_percent=2.0)), reason=None,
                  allowlist=NONE)
    assert a.verdict is Verdict.NETWORK_ONLY
    assert "does not look abnormal" in a.reasons[0]
    assert a.host is not None


@pytest.mark.parametrize(("allow", "why"), [
    (Allowlist(hosts=frozenset({"web-01"})), "host web-01"),
    (Allowlist(tags=frozenset({"web"})), "host tag web"),
    (Allowlist(pool_domains=("supportxmr.com",)), "pool domain supportxmr.com"),
    (Allowlist(wallets=frozenset({WALLET})), f"wallet {WALLET}"),
    (Allowlist(sha256=frozenset({"ab" * 32})), "executable sha256"),
    (Allowlist(exes=frozenset({"/tmp/.x/kworkerds"})), "executable /tmp/.x/kworkerds"),
])
def test_allowlist(allow: Allowlist, why: str) -> None:
    a = correlate(S, host=WEB, report=report(proc()), reason=None, allowlist=allow)
    assert a.verdict is Verdict.ALLOWED
    assert a.severity == 3
    assert a.reasons[0].startswith(f"allowlisted: {why}")


def test_allowlist_does_not_trust_a_deleted_exe_path_or_partial_domain() -> None:
    allow = Allowlist(exes=frozenset({"/tmp/.x/kworkerds"}), pool_domains=("portxmr.com",))
    a = correlate(S, host=WEB, report=report(proc(exe_deleted=True)), reason=None,
                  allowlist=allow)
    assert a.verdict is Verdict.CONFIRMED
    assert any("deleted" in r for r in a.reasons)


def test_wallet_of() -> None:
    assert wallet_of("4abc.rig1") == "4abc"
    assert wallet_of("0xdead+1000") == "0xdead"
    assert wallet_of("x") == "x"
    assert wallet_of(None) is None


def test_no_owner_but_a_busy_miner_among_top_consumers_is_named() -> None:
    top = [
        TopProcess(pid=77, name="kdevtmpfsi", exe="/tmp/kdevtmpfsi", cpu_percent=198.0,
                   rss_bytes=1 << 20, traits=["name:kdevtmpfsi", "cmdline:stratum-url"]),
        TopProcess(pid=12, name="sshd", exe="/usr/sbin/sshd", cpu_percent=0.5, rss_bytes=1 << 20),
    ]
    a = correlate(S, host=WEB, report=report(None, top=top), reason=None, allowlist=NONE)
    assert a.verdict is Verdict.NETWORK_ONLY  # nothing owns the flow: not confirmed
    assert a.reasons[0] == "host web-01 found no process owning the flow"
    assert any("kdevtmpfsi (pid 77" in r and "stratum-url" in r for r in a.reasons)
    assert not any("sshd" in r for r in a.reasons)
