"""The live sensor's pure parts: BPF compilation, option checks, metrics, privilege checks."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from netdetect.capture.afpacket import (
    DEFAULT_BPF,
    LiveCaptureError,
    RingConfig,
    compile_bpf,
    compile_bpf_libpcap,
    compile_bpf_tcpdump,
    interface_linktype,
    parse_ddd,
)
from netdetect.cli import build_parser
from netdetect.live import DNS_RING, RateLimitedLog, SniffOptions, drop_privileges
from netdetect.metrics import SensorMetrics, stats_line


def test_libpcap_and_tcpdump_compile_the_same_program() -> None:
    a = compile_bpf_libpcap(DEFAULT_BPF)
    b = compile_bpf_tcpdump(DEFAULT_BPF)
    assert a is not None, "libpcap (libpcap0.8) must be installed for live capture"
    assert b is not None, "tcpdump must be installed for live capture"
    assert a == b
    assert 0 < len(a) <= 4096
    # Last instructions of a pcap program are the accept / reject returns.
    assert a[-1][0] == 0x06
    assert a[-1][3] == 0
    assert compile_bpf("udp port 53") == compile_bpf_libpcap("udp port 53")


def test_bad_expression_is_a_capture_error() -> None:
    with pytest.raises(LiveCaptureError, match="bad BPF expression"):
        compile_bpf("tcp port banana")
    with pytest.raises(LiveCaptureError, match="bad BPF expression"):
        compile_bpf_tcpdump("tcp port banana")


def test_parse_ddd() -> None:
    assert parse_ddd("2\n40 0 0 12\n6 0 0 0\n") == [(40, 0, 0, 12), (6, 0, 0, 0)]
    with pytest.raises(LiveCaptureError, match="announced 3"):
        parse_ddd("3\n40 0 0 12\n")
    with pytest.raises(LiveCaptureError, match="unreadable"):
        parse_ddd("x\n")


@pytest.mark.parametrize(
    ("cfg", "msg"),
    [
        (RingConfig(block_size=3000), "power of two"),
        (RingConfig(block_size=3 * 4096), "power of two"),
        (RingConfig(block_count=1), "block count"),
        (RingConfig(retire_ms=0), "retire"),
        (RingConfig(block_size=4096, frame_size=8192), "frame size 8192"),
        (RingConfig(frame_size=2040), "multiple of 16"),
        (RingConfig(frame_size=64), "between 128"),
    ],
)
def test_ring_config_is_checked(cfg: RingConfig, msg: str) -> None:
    with pytest.raises(LiveCaptureError, match=msg):
        cfg.validate()


def test_dns_side_channel_ring_geometry() -> None:
    """TPACKET_V2 slots that hold a whole Ethernet frame each, 4096 of them."""
    DNS_RING.validate()
    assert DNS_RING.frame_size == 2048
    assert DNS_RING.frames == 4096
    assert RingConfig().frames == 0  # the main rings stay TPACKET_V3


def test_unknown_interface() -> None:
    with pytest.raises(LiveCaptureError, match="no such interface"):
        interface_linktype("nd-missing0")
    assert interface_linktype("lo") == 1


def _args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["sniff", "-i", "lo", *extra])


def test_sniff_options_from_the_cli() -> None:
    o = SniffOptions.from_args(_args("--workers", "3", "--bpf", "default", "--duration", "2"))
    assert o.workers == 3
    assert o.bpf_expression() == DEFAULT_BPF
    assert o.metrics_addr == "127.0.0.1"
    assert SniffOptions.from_args(_args("--bpf", "udp")).bpf_expression() == "udp"
    assert SniffOptions.from_args(_args()).bpf_expression() is None


@pytest.mark.parametrize(
    ("extra", "msg"),
    [
        (("--workers", "0"), "--workers"),
        (("--stats-interval", "0"), "stats-interval"),
        (("--duration", "-1"), "duration"),
        (("--confirm",), "--config"),
    ],
)
def test_sniff_options_refused(extra: tuple[str, ...], msg: str) -> None:
    with pytest.raises(LiveCaptureError, match=msg):
        SniffOptions.from_args(_args(*extra))


def test_max_flows_zero_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _args("--max-flows", "0")
    assert exc.value.code == 2
    assert "--max-flows: must be at least 1" in capsys.readouterr().err


def test_unknown_user() -> None:
    with pytest.raises(LiveCaptureError, match="no such user"):
        drop_privileges("nd-no-such-user")


def test_metrics_sum_workers_and_expose_them() -> None:
    m = SensorMetrics()
    m.update_worker(0, {"packets": 10, "kernel_drops": 1, "flows_active": 3})
    m.update_worker(1, {"packets": 5, "kernel_drops": 0, "flows_active": 2})
    m.update_worker(0, {"packets": 12, "kernel_drops": 2, "flows_active": 1,
                        "kernel_dns_drops": 3})  # replaces
    m.count_alert("network-only")
    m.set_confirm({"reports-accepted": 2})
    m.set_gauge("confirmations_pending", 4)
    assert m.totals() == {"packets": 17, "kernel_drops": 2, "flows_active": 3,
                          "kernel_dns_drops": 3}
    text = generate_latest(m.registry).decode()
    assert 'netdetect_kernel_dns_drops_total{worker="0"} 3.0' in text
    assert 'netdetect_dns_side_truncated_total{worker="1"} 0.0' in text
    assert 'netdetect_packets_total{worker="0"} 12.0' in text
    assert 'netdetect_kernel_drops_total{worker="1"} 0.0' in text
    assert 'netdetect_flows_active{worker="1"} 2.0' in text
    assert 'netdetect_alerts_total{verdict="network-only"} 1.0' in text
    assert 'netdetect_confirmations_total{kind="reports-accepted"} 2.0' in text
    assert "netdetect_confirmations_pending 4.0" in text
    line = stats_line(m.totals(), m.alerts(), pending=4, queue=0, elapsed=2.0, prev_packets=7)
    assert "packets=17 (5/s)" in line
    assert "kernel_drops=2" in line
    assert "alerts=1" in line


SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


@pytest.mark.parametrize("unit", ["netdetect-sensor.service", "netdetect-agent.service"])
def test_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    text = (SYSTEMD / unit).read_text()
    # systemd-analyze insists that ExecStart exists; point it at an executable that does.
    (tmp_path / unit).write_text(text.replace("/usr/bin/netdetect", sys.executable))
    res = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == ""
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert line in text
    if unit == "netdetect-sensor.service":
        assert "User=netdetect" in text
        assert "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN" in text
        assert "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN" in text
        assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    else:
        assert "ReadOnlyPaths=/" in text
        assert "CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE" in text


def test_lost_records_are_a_metric_and_their_log_is_rate_limited() -> None:
    m = SensorMetrics()
    m.count_lost("EveWriter", "alert")
    m.count_lost("EveWriter", "alert")
    m.count_lost("EveWriter", "flow")
    text = generate_latest(m.registry).decode()
    assert 'netdetect_sink_records_lost_total{record="alert",sink="EveWriter"} 2.0' in text
    assert 'netdetect_sink_records_lost_total{record="flow",sink="EveWriter"} 1.0' in text
    limit = RateLimitedLog(60.0)
    assert limit.ready(0.0) == 0
    assert [limit.ready(t) for t in (1.0, 30.0, 59.9)] == [None, None, None]
    assert limit.ready(60.0) == 3  # the next line says how many were held back
    assert limit.ready(61.0) is None


def test_readme_sensor_without_broker_drop_in_verifies(tmp_path: Path) -> None:
    """The drop-in deploy/README.md gives for a sensor without a broker, taken from the
    document itself: systemd accepts it, and its command line asks no host."""
    readme = (SYSTEMD.parent / "README.md").read_text()
    m = re.search(r"no-broker\.conf <<'UNIT'\n(.*?)\nUNIT\n", readme, re.DOTALL)
    assert m, "no-broker drop-in not found in deploy/README.md"
    drop_in = m.group(1)
    unit = "netdetect-sensor.service"
    (tmp_path / unit).write_text(
        (SYSTEMD / unit).read_text().replace("/usr/bin/netdetect", sys.executable))
    (tmp_path / f"{unit}.d").mkdir()
    (tmp_path / f"{unit}.d" / "no-broker.conf").write_text(
        drop_in.replace("/usr/bin/netdetect", sys.executable) + "\n")
    res = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                         check=False, env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"})
    assert res.returncode == 0, res.stderr
    exec_start = [ln for ln in drop_in.splitlines() if ln.startswith("ExecStart=/")]
    assert len(exec_start) == 1
    argv = exec_start[0].split()[1:]
    argv = [a.replace("${NETDETECT_IFACE}", "eth1") for a in argv if a != "$NETDETECT_OPTS"]
    opts = SniffOptions.from_args(build_parser().parse_args(argv))
    assert not opts.confirm
    assert opts.eve == "/var/log/netdetect/eve.json"


def test_build_info_and_confirmation_latency_histogram() -> None:
    m = SensorMetrics()
    for seconds in (0.03, 2.01, 2.02, 2.6, 40.0):
        m.observe_confirmation(seconds)
    text = generate_latest(m.registry).decode()
    assert re.search(r'netdetect_build_info\{python="[\d.]+",version="[^"]+"\} 1\.0', text)
    assert 'netdetect_confirmation_seconds_bucket{le="0.05"} 1.0' in text
    assert 'netdetect_confirmation_seconds_bucket{le="2.0"} 1.0' in text
    assert 'netdetect_confirmation_seconds_bucket{le="2.5"} 3.0' in text
    assert 'netdetect_confirmation_seconds_bucket{le="30.0"} 4.0' in text
    assert 'netdetect_confirmation_seconds_bucket{le="+Inf"} 5.0' in text
    assert "netdetect_confirmation_seconds_count 5.0" in text
    assert re.search(r"netdetect_confirmation_seconds_sum 46\.6", text)
