"""What a replay imports: every run pays for each module at start-up, so the heavy ones that
only some runs need stay out of the rest. The Python `maxminddb` package (and the
importlib.metadata, email, zipfile ... it loads to know its own version) is for GeoLite2
databases only: the pool address DB is read by the compiled core. mmdb_writer and netaddr
are for compiling the DB only. (The live sensor's import set: tests/live/test_sniff_imports.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPNetwork, IPSet

from netdetect.intel import compile_signatures

REPO = Path(__file__).resolve().parents[1]
XMRIG = REPO / "pcaps" / "cryptonote_xmrig.pcap"
POOL_IP = "198.51.100.23"  # the pool of that capture
HEAVY = ("maxminddb", "importlib.metadata", "mmdb_writer", "netaddr")

# cli.main in a fresh interpreter, then the modules it ended with.
MAIN = """
import json, sys
from netdetect.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "modules": sorted(sys.modules)}))
"""


def pool_ip_signatures(tmp_path: Path) -> Path:
    """The repository's signatures plus the capture's pool address, compiled (as
    `netdetect signatures compile` leaves a directory)."""
    sigs = tmp_path / "sigs"
    shutil.copytree(REPO / "signatures", sigs, ignore=shutil.ignore_patterns("*.mmdb"))
    (sigs / "pool_ips.txt").write_text(f"# test: the capture's pool\n{POOL_IP}\tpool\t3333\t-\n")
    compile_signatures(sigs)
    return sigs


def run_main(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    """(exit status, modules loaded, the -X importtime report) of `netdetect ARGS`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NETDETECT_CACHE_DIR": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", MAIN, *args],
                          capture_output=True, text=True, timeout=300, check=False, env=env,
                          cwd=REPO)
    assert done.stdout.strip(), done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result["rc"], set(result["modules"]), done.stderr


def imported(name: str, modules: set[str], importtime: str) -> bool:
    """Whether `name` (or a submodule) was loaded, by sys.modules and by -X importtime."""
    report = {line.rsplit("|", 1)[-1].strip() for line in importtime.splitlines()
              if line.startswith("import time:")}
    in_modules = any(m == name or m.startswith(name + ".") for m in modules)
    reported = any(m == name or m.startswith(name + ".") for m in report)
    assert in_modules == reported, name
    return in_modules


def eve_details(path: Path) -> list[str]:
    return [ev["detail"] for line in path.read_text().splitlines()
            for ev in json.loads(line).get("netdetect", {}).get("evidence", [])]


def test_a_replay_with_a_pool_address_db_loads_no_python_mmdb_reader(tmp_path: Path) -> None:
    sigs = pool_ip_signatures(tmp_path)
    eve = tmp_path / "eve.json"
    rc, modules, importtime = run_main(tmp_path, "replay", str(XMRIG), "--signatures",
                                       str(sigs), "--eve", str(eve), "-q")
    assert rc == 0
    # The address DB was read and matched, by the core's reader.
    assert f"{POOL_IP} in pool address list pool_ips.txt" in eve_details(eve)
    for name in ("netdetect._core", "netdetect.intel.store", "netdetect.intel.mmdb"):
        assert imported(name, modules, importtime), name
    for name in HEAVY:
        assert not imported(name, modules, importtime), name


def test_geolite_databases_still_load_the_python_reader(tmp_path: Path) -> None:
    """The control: given a GeoLite2 DB, the replay does import maxminddb and uses it."""
    sigs = pool_ip_signatures(tmp_path)
    asn = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    asn.insert_network(IPSet([IPNetwork(f"{POOL_IP}/32")]),
                       {"autonomous_system_number": 64500,
                        "autonomous_system_organization": "Example Pool Hosting"})
    asn.to_db_file(str(tmp_path / "asn.mmdb"))
    eve = tmp_path / "eve.json"
    rc, modules, importtime = run_main(tmp_path, "replay", str(XMRIG), "--signatures",
                                       str(sigs), "--geo-asn", str(tmp_path / "asn.mmdb"),
                                       "--eve", str(eve), "-q")
    assert rc == 0
    assert imported("maxminddb", modules, importtime)
    assert "Example Pool Hosting" in eve.read_text()


def test_the_command_line_parser_loads_no_intel(tmp_path: Path) -> None:
    """Every command builds the whole parser (with `signatures import`'s list formats)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = ("import json, sys\nfrom netdetect.cli import build_parser\n"
              "build_parser()\nprint(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True, env=env, cwd=REPO)
    modules = set(json.loads(done.stdout))
    assert "netdetect.intel.formats" in modules
    for name in ("netdetect.intel.store", "netdetect.intel.mmdb", *HEAVY):
        assert not any(m == name or m.startswith(name + ".") for m in modules), name
