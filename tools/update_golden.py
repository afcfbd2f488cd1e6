"""Rewrites tests/golden/*.jsonl: the EVE lines `netdetect replay` gives for each pcaps/ file.

Run after a deliberate change to detection or output; review the diff like code.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from netdetect.intel import load_intel
from netdetect.service import replay
from netdetect.sinks.eve import EveWriter

REPO = Path(__file__).resolve().parents[1]


def golden_lines(pcap: Path) -> str:
    buf = io.StringIO()
    # From the repository root with a relative path: pcap_filename is the path as given,
    # and golden files must not depend on where the clone lives (tests/test_golden.py too).
    os.chdir(REPO)
    replay([str(pcap.relative_to(REPO))], intel=load_intel(REPO / "signatures"),
           sinks=[EveWriter(buf)])
    return buf.getvalue()


def main() -> None:
    out = REPO / "tests" / "golden"
    out.mkdir(exist_ok=True)
    entries = json.loads((REPO / "pcaps" / "expected.json").read_text(encoding="utf-8"))["files"]
    for entry in entries:
        pcap = REPO / "pcaps" / entry["file"]
        (out / f"{pcap.stem}.jsonl").write_text(golden_lines(pcap), encoding="utf-8")
    print(f"wrote {len(entries)} golden files to {out}")
    # The lab recordings (pcaps/lab/expected.json), into tests/golden/lab/.
    lab = json.loads((REPO / "pcaps" / "lab" / "expected.json").read_text(encoding="utf-8"))
    (out / "lab").mkdir(exist_ok=True)
    for entry in lab["files"]:
        pcap = REPO / "pcaps" / "lab" / entry["file"]
        (out / "lab" / f"{pcap.stem}.jsonl").write_text(golden_lines(pcap), encoding="utf-8")
    print(f"wrote {len(lab['files'])} golden files to {out / 'lab'}")


if __name__ == "__main__":
    main()
