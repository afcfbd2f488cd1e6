#!/usr/bin/env python3
"""Build and tear down the netdetect lab: network namespaces joined by a software switch
whose victim port is mirrored (tc mirred) to the sensor's interface — a SPAN port in software.

    victim (10.77.0.10) ──┐                 ┌── pool (10.77.0.200 pool + DNS,
                          ├── br0 (switch) ─┤         10.77.0.201 web + bulk)
                          │  vic: ingress+egress mirrored ──▶ span ══▶ sensor: span0
Usage:
    lab.py up [--prefix P] [--state DIR] [--no-services]   build it, start pool/DNS/web
    lab.py down [--prefix P] [--state DIR]                  remove everything (idempotent)
    lab.py status [--prefix P]
    lab.py exec ROLE [--prefix P] -- CMD...                 run CMD in victim|pool|sensor|sw

Only addresses inside 10.77.0.0/24 are used and no namespace has a default route, so nothing
leaves the lab. Services are killed by the pids the lab recorded, never by name.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROLES = ("sw", "victim", "pool", "sensor")
NET = "10.77.0.0/24"
VICTIM_IP = "10.77.0.10"
POOL_IP = "10.77.0.200"
WEB_IP = "10.77.0.201"
SITE_IP = "10.77.0.202"  # the pool's web site (POOL_SITE), a server of its own
POOL_NAME = "pool.lab.example"
WEB_NAME = "www.lab.example"
SPAN_IF = "span0"
HOME_NET = "10.77.0.0/25"  # the victim side; the pool and web servers count as "outside"
POOL_PORTS = (3333, 4444)
POOL_TLS_PORTS = (3334, 4443, 443)  # 443: XMRig's TLS to a literal IP on the web port
# A real pool's web site name, answered by the lab DNS with a lab web server of its own:
# browsing a pool's site must not be mistaken for mining.
POOL_SITE = "supportxmr.com"


def ns_name(prefix: str, role: str) -> str:
    return f"{prefix}-{role}"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def nsx(prefix: str, role: str) -> list[str]:
    return ["ip", "netns", "exec", ns_name(prefix, role)]


def existing_namespaces() -> set[str]:
    out = sh("ip", "-j", "netns", "list", check=False).stdout.strip()
    return {n["name"] for n in json.loads(out)} if out else set()


def make_cert(state: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name`, made fresh at lab start."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    crt, kf = state / f"{name}.crt", state / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    kf.chmod(0o600)
    return crt, kf


def build(prefix: str) -> None:
    for role in ROLES:
        sh("ip", "netns", "add", ns_name(prefix, role))
        sh(*nsx(prefix, role), "ip", "link", "set", "lo", "up")
        # IPv4 only: no IPv6 autoconfiguration noise on the mirrored port.
        sh(*nsx(prefix, role), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh(*nsx(prefix, role), "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
    sw = ns_name(prefix, "sw")
    for port, role, peer in (("vic", "victim", "eth0"), ("pool", "pool", "eth0"),
                             ("span", "sensor", SPAN_IF)):
        sh("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", peer, "netns",
           ns_name(prefix, role))
        sh("ip", "-n", sw, "link", "set", port, "up")
        sh("ip", "-n", ns_name(prefix, role), "link", "set", peer, "up")
    sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", sw, "link", "set", "br0", "up")
    for port in ("vic", "pool"):
        sh("ip", "-n", sw, "link", "set", port, "master", "br0")
    sh("ip", "-n", ns_name(prefix, "victim"), "addr", "add", f"{VICTIM_IP}/24", "dev", "eth0")
    for ip in (POOL_IP, WEB_IP, SITE_IP):
        sh("ip", "-n", ns_name(prefix, "pool"), "addr", "add", f"{ip}/24", "dev", "eth0")
    # The SPAN session: both directions of the victim's switch port, copied to `span`.
    sh("tc", "-n", sw, "qdisc", "add", "dev", "vic", "clsact")
    mirror = ("action", "mirred", "egress", "mirror", "dev", "span")
    for hook in ("ingress", "egress"):
        done = sh("tc", "-n", sw, "filter", "add", "dev", "vic", hook, "matchall", *mirror,
                  check=False)
        if done.returncode != 0:
            # Kernels without cls_matchall: a u32 rule that matches every frame does the same.
            sh("tc", "-n", sw, "filter", "add", "dev", "vic", hook, "protocol", "all", "u32",
               "match", "u32", "0", "0", *mirror)


def check_contained(prefix: str) -> None:
    """Refuse to go on if any lab namespace could route outside the lab network."""
    net = ipaddress.IPv4Network(NET)
    for role in ROLES:
        routes = sh(*nsx(prefix, role), "ip", "-j", "route", "show").stdout
        for r in json.loads(routes or "[]"):
            dst = r.get("dst", "")
            if not dst:
                continue
            inside = dst != "default" and ipaddress.IPv4Network(dst, strict=False).subnet_of(net)
            if not inside:
                raise RuntimeError(f"{ns_name(prefix, role)} has a route outside the lab: {r}")


def spawn(prefix: str, role: str, state: Path, name: str, *argv: str) -> int:
    log = (state / f"{name}.log").open("ab")
    proc = subprocess.Popen([*nsx(prefix, role), sys.executable, *argv], stdout=log,
                            stderr=subprocess.STDOUT, cwd=HERE, start_new_session=True)
    log.close()
    # The pid and the script it runs: stop_services kills only a process still running it.
    (state / f"{name}.pid").write_text(f"{proc.pid} {Path(argv[0]).name}\n")
    return proc.pid


def start_services(prefix: str, state: Path) -> None:
    pcrt, pkey = make_cert(state, POOL_NAME)
    wcrt, wkey = make_cert(state, WEB_NAME)
    scrt, skey = make_cert(state, POOL_SITE)
    spawn(prefix, "pool", state, "dnsd", str(HERE / "dnsd.py"), "--bind", POOL_IP,
          "--name", f"{POOL_NAME}={POOL_IP}", "--name", f"{POOL_SITE}={SITE_IP}")
    pool_args = [str(HERE / "pool.py"), "--bind", POOL_IP, "--cert", str(pcrt), "--key",
                 str(pkey), "--job-interval", "2"]
    for p in POOL_PORTS:
        pool_args += ["--port", str(p)]
    for p in POOL_TLS_PORTS:
        pool_args += ["--tls-port", str(p)]
    spawn(prefix, "pool", state, "pool", *pool_args)
    spawn(prefix, "pool", state, "web", str(HERE / "web.py"), "--bind", WEB_IP, "--cert",
          str(wcrt), "--key", str(wkey))
    spawn(prefix, "pool", state, "site", str(HERE / "web.py"), "--bind", SITE_IP, "--cert",
          str(scrt), "--key", str(skey))
    wait_listening(prefix, [(POOL_IP, p) for p in (*POOL_PORTS, *POOL_TLS_PORTS)]
                   + [(WEB_IP, 443), (WEB_IP, 5201), (SITE_IP, 443)], state)


def wait_listening(prefix: str, addrs: list[tuple[str, int]], state: Path,
                   timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    missing = addrs
    while time.monotonic() < end:
        out = sh(*nsx(prefix, "pool"), "ss", "-Hltn").stdout
        missing = [(ip, p) for ip, p in addrs if f"{ip}:{p} " not in out]
        if not missing:
            return
        time.sleep(0.1)
    logs = "\n".join(f.read_text(errors="replace") for f in state.glob("*.log"))
    raise RuntimeError(f"lab services not listening on {missing}:\n{logs}")


def stop_services(state: Path) -> None:
    for pidfile in state.glob("*.pid"):
        try:
            fields = pidfile.read_text().split()
            pid = int(fields[0])
            script = fields[1] if len(fields) > 1 else f"{pidfile.stem}.py"
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            pidfile.unlink(missing_ok=True)
            continue
        # Only a process that is still the one the lab started (pid reuse is possible).
        if script.encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)


def down(prefix: str, state: Path) -> None:
    if state.is_dir():
        stop_services(state)
    have = existing_namespaces()
    for role in ROLES:
        name = ns_name(prefix, role)
        if name in have:
            sh("ip", "netns", "del", name, check=False)
    if state.is_dir():
        shutil.rmtree(state, ignore_errors=True)


def up(prefix: str, state: Path, *, services: bool) -> None:
    if os.geteuid() != 0:
        raise RuntimeError("the lab needs root (network namespaces, tc)")
    clash = {ns_name(prefix, r) for r in ROLES} & existing_namespaces()
    if clash:
        raise RuntimeError(f"namespaces exist already: {sorted(clash)}; run `lab.py down` first")
    state.mkdir(parents=True, exist_ok=True)
    try:
        build(prefix)
        check_contained(prefix)
        if services:
            start_services(prefix, state)
    except BaseException:
        down(prefix, state)
        raise
    info = {"prefix": prefix, "state": str(state), "victim": VICTIM_IP, "pool": POOL_IP,
            "web": WEB_IP, "dns": POOL_IP, "pool_name": POOL_NAME, "web_name": WEB_NAME,
            "pool_site": POOL_SITE, "site": SITE_IP,
            "span": SPAN_IF, "home_net": HOME_NET,
            "namespaces": {r: ns_name(prefix, r) for r in ROLES}}
    (state / "lab.json").write_text(json.dumps(info, indent=2) + "\n")
    sys.stdout.write(json.dumps(info) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("up", "down", "status", "exec"))
    ap.add_argument("role", nargs="?", choices=ROLES)
    ap.add_argument("--prefix", default="ndlab")
    ap.add_argument("--state", default=None, help="state directory (default /run/netdetect-lab/P)")
    ap.add_argument("--no-services", action="store_true")
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, cmd = argv[:cut], argv[cut + 1:]
    args = ap.parse_args(argv)
    state = Path(args.state or f"/run/netdetect-lab/{args.prefix}")
    try:
        if args.command == "up":
            up(args.prefix, state, services=not args.no_services)
        elif args.command == "down":
            down(args.prefix, state)
        elif args.command == "status":
            have = existing_namespaces()
            for role in ROLES:
                name = ns_name(args.prefix, role)
                sys.stdout.write(f"{name}: {'up' if name in have else 'absent'}\n")
        else:
            if args.role is None or not cmd:
                ap.error("exec needs ROLE -- CMD...")
            argv_exec = ["ip", "netns", "exec", ns_name(args.prefix, args.role), *cmd]
            os.execvp("ip", argv_exec)  # noqa: S606 - the operator's own command, by design
    except RuntimeError as exc:
        sys.stderr.write(f"lab.py: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
