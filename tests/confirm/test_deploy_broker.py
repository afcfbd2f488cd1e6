"""deploy/mosquitto/mosquitto.conf as deploy/README.md installs it: a conf.d snippet under
Debian's own /etc/mosquitto/mosquitto.conf, which must still start."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .conftest import (
    DEPLOY,
    MOSQUITTO,
    Pki,
    copy_broker_files,
    free_port,
    snippet_lines,
    wait_port,
)

DEBIAN_MAIN = Path("/etc/mosquitto/mosquitto.conf")
SNIPPET = DEPLOY / "mosquitto" / "mosquitto.conf"


def _keys(text: str) -> set[str]:
    return {ln.split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")}


def test_snippet_repeats_nothing_debians_main_config_sets() -> None:
    # The settings Debian 12's mosquitto package puts in its main file.
    debian = {"pid_file", "persistence", "persistence_location", "log_dest", "include_dir"}
    if DEBIAN_MAIN.is_file():
        debian |= _keys(DEBIAN_MAIN.read_text())
    assert not _keys(SNIPPET.read_text()) & debian


@pytest.mark.broker
def test_snippet_starts_under_debians_main_config(pki: Pki, tmp_path: Path) -> None:
    if not DEBIAN_MAIN.is_file() or not MOSQUITTO.exists():
        pytest.skip("needs Debian's mosquitto package")
    port = free_port()
    work = tmp_path / "broker"
    work.mkdir()
    confd = tmp_path / "conf.d"
    confd.mkdir()
    # The snippet with its file locations moved into tmp, as the other broker tests use it.
    (confd / "netdetect.conf").write_text("\n".join(snippet_lines(work, port)) + "\n")
    copy_broker_files(pki, work)
    # Debian's main file with only its paths moved: every key it sets stays set.
    main = DEBIAN_MAIN.read_text()
    main = re.sub(r"(?m)^pid_file .*$", f"pid_file {work}/mosquitto.pid", main)
    main = re.sub(r"(?m)^persistence_location .*$", f"persistence_location {work}/", main)
    main = re.sub(r"(?m)^log_dest file .*$", f"log_dest file {work}/mosquitto.log", main)
    main = re.sub(r"(?m)^include_dir .*$", f"include_dir {confd}", main)
    (tmp_path / "mosquitto.conf").write_text(main)
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(tmp_path / "mosquitto.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        try:
            wait_port(port, 10)
        except RuntimeError:
            proc.kill()
            out = proc.communicate(timeout=5)[0].decode(errors="replace")
            log = (work / "mosquitto.log").read_text() if (work / "mosquitto.log").exists() else ""
            raise AssertionError(f"mosquitto did not start:\n{out}\n{log}") from None
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
