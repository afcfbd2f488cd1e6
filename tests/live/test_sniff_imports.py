"""What the live sensor imports, parent and workers: the pool address DB is read by the
compiled core, so the Python `maxminddb` package (and the importlib.metadata it loads) stays
out unless GeoLite2 databases are given; mmdb_writer and netaddr are for compiling only.
(The replay's import set: tests/test_startup_imports.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_startup_imports import HEAVY, POOL_IP, XMRIG, eve_details, pool_ip_signatures

from .conftest import NetnsFactory, Sniff, tcpreplay

pytestmark = pytest.mark.netns


def test_the_sensor_loads_no_python_mmdb_reader(netns: NetnsFactory, tmp_path: Path,
                                                sniffs: list[Sniff]) -> None:
    sigs = pool_ip_signatures(tmp_path)
    ns = netns("imports")
    ns.veth("va", "vb")
    # -X importtime for the sensor and the workers it forks (their lines share its log).
    s = Sniff(ns, tmp_path, "-i", "vb", "--workers", "2", "--signatures", str(sigs), "-q",
              "--stats-interval", "1",
              wrapper=("env", "PYTHONPROFILEIMPORTTIME=1",
                       f"NETDETECT_CACHE_DIR={tmp_path / 'cache'}"))
    sniffs.append(s)
    s.wait_ready()
    sent = tcpreplay(ns, "va", XMRIG, extra=("--topspeed",))
    s.wait_log(rf"stats: packets={sent} ", 10)
    assert s.stop() == 0
    # The address DB was read and matched, by the core's reader.
    assert f"{POOL_IP} in pool address list pool_ips.txt" in eve_details(s.eve_path)
    report = {line.rsplit("|", 1)[-1].strip() for line in s.log().splitlines()
              if line.startswith("import time:")}
    for name in ("netdetect.live", "netdetect.intel.store", "netdetect.intel.mmdb",
                 "netdetect._core"):
        assert name in report, name
    for name in HEAVY:
        assert not any(m == name or m.startswith(name + ".") for m in report), name
