"""The README's two commands: the demo stays out of the system; the tests say what they need."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_installs_only_what_replay_needs_and_touches_no_service() -> None:
    demo = (REPO / "scripts" / "demo.sh").read_text()
    code = "\n".join(ln for ln in demo.splitlines() if not ln.lstrip().startswith("#"))
    for forbidden in ("systemctl", "service ", "bootstrap.sh", "[test]", "mosquitto"):
        assert forbidden not in code, forbidden
    assert "pip install -q -e \".[sensor]\"\n" in code
    assert "replay pcaps/demo.pcap" in code


def test_test_sh_names_the_shared_folder_when_it_is_missing(tmp_path: Path) -> None:
    clone = tmp_path / "repo"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "test.sh", clone / "scripts" / "test.sh")
    # A bootstrap that must not be reached: the check comes before any install.
    (clone / "scripts" / "bootstrap.sh").write_text("#!/bin/sh\necho BOOTSTRAP-RAN\n")
    (clone / "scripts" / "bootstrap.sh").chmod(0o755)
    res = subprocess.run(["bash", str(clone / "scripts" / "test.sh")], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 2
    assert "../shared/corpus/labels.json" in res.stderr
    assert "../shared/schemas/suricata-eve.schema.json" in res.stderr
    assert "BOOTSTRAP-RAN" not in res.stdout
