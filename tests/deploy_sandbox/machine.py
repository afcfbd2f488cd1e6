"""One throw-away machine for tests/test_deploy_walkthrough.py; run as root inside a private
mount namespace (`unshare --mount`) and the test's network namespace.

It overlays /etc and /usr/bin with writable layers on a tmpfs, puts empty tmpfs over
/var/log, /var/lib, /run and /opt, and puts the sandbox systemctl first on PATH, so the
walkthrough's commands run exactly as written without touching the real machine. Then it
runs the shell snippets the test sends, one JSON line each on stdin:
{"sh": "...", "cwd": "...", "timeout": 60} -> {"rc": 0, "out": "..."} on stdout.
On EOF it stops every unit it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True)


def setup(work: Path, repo: Path, python: str) -> dict[str, str]:
    sh("mount", "--make-rprivate", "/")
    layers = work / "layers"
    layers.mkdir()
    sh("mount", "-t", "tmpfs", "tmpfs", str(layers))
    # The interpreter may live under root's home (pyenv), which other users cannot enter; on
    # a stock Debian it is /usr/bin/python3. Keep it reachable for the service users.
    real = Path(python).resolve()
    if real.is_relative_to("/root"):
        keep = layers / "keep"
        keep.mkdir()
        top = Path("/root") / real.relative_to("/root").parts[0]
        sh("mount", "--bind", str(top), str(keep))
        sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/root")
        top.mkdir()
        sh("mount", "--bind", str(keep), str(top))
    for name in ("etc", "usr/bin"):
        up, wk = layers / f"{name.replace('/', '-')}-up", layers / f"{name.replace('/', '-')}-wk"
        up.mkdir()
        wk.mkdir()
        sh("mount", "-t", "overlay", "overlay", "-o",
           f"lowerdir=/{name},upperdir={up},workdir={wk}", f"/{name}")
    for path in ("/var/log", "/var/lib", "/run", "/opt"):
        sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", path)
    # What installing Debian's mosquitto package leaves behind besides its files.
    Path("/var/lib/mosquitto").mkdir()
    sh("chown", "mosquitto:mosquitto", "/var/lib/mosquitto")
    # The broker's name, as the site's DNS would resolve it.
    with Path("/etc/hosts").open("a") as hosts:
        hosts.write("127.0.0.1 broker.example.internal\n")
    # deploy/README.md: "install the package into a virtualenv and link it" to /usr/bin.
    wrapper = Path("/usr/bin/netdetect")
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={repo} exec {python} -m netdetect "$@"\n')
    wrapper.chmod(0o755)
    state = layers / "state"
    state.mkdir()
    return {**os.environ, "SANDBOX_STATE": str(state),
            "PATH": f"{HERE}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def run(env: dict[str, str], request: dict[str, object]) -> dict[str, object]:
    proc = subprocess.Popen(["bash", "-e", "-c", str(request["sh"])], env=env,
                            cwd=str(request.get("cwd", "/")), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    timeout = float(request.get("timeout", 120))  # type: ignore[arg-type]
    try:
        out, _ = proc.communicate(timeout=timeout)
        return {"rc": proc.returncode, "out": out.decode(errors="replace")}
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return {"rc": "timeout", "out": out.decode(errors="replace")}


def main() -> int:
    work, repo, python = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    env = setup(work, repo, python)
    print(json.dumps({"ready": True}), flush=True)
    try:
        for line in sys.stdin:
            print(json.dumps(run(env, json.loads(line))), flush=True)
    finally:
        state = Path(env["SANDBOX_STATE"])
        for pid_file in state.glob("*.pid"):
            subprocess.run([str(HERE / "systemctl"), "stop", pid_file.stem], env=env,
                           check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
