#!/usr/bin/env python3
"""Record real miner sessions in the lab for pcaps/ (run as root, by hand; never by tests).

    record.py --xmrig /path/to/xmrig --out DIR [--seconds 40] [--only NAME ...]

Builds the lab without its default services, starts the pool (plain 3333, TLS 443 with an
NSS key log), paths.py (Monero-daemon RPC 18081, SOCKS 1080, HTTP CONNECT 3128) and a
Mosquitto broker with TLS on 8883, then per scenario captures the mirror port (`span0`, the
sensor's view) with tcpdump while the client runs in the victim namespace, and tears the lab
down. Nothing can leave: the lab has no route out (lab.py checks). The miner binary is the
caller's: it is never part of the repository.

Scenarios (file names in DIR):
- xmrig_tls_ip443.pcap: XMRig, TLS to 10.77.0.200:443 by address (no SNI, no ALPN, no DNS).
- xmrig_socks5.pcap: XMRig `-x 10.77.0.200:1080` to pool.lab.example:3333, plain stratum.
- xmrig_socks5_tls.pcap: the same with `--tls` to 10.77.0.200:443 through the proxy.
- xmrig_daemon.pcap: XMRig `--daemon` solo mining on the Monero-daemon RPC.
- miner_http_connect.pcap: the lab miner simulator through the HTTP CONNECT proxy.
- neg_mqtt_tls.pcap: mosquitto_sub over TLS by address (it sends the address as SNI), the
  broker pushing every 2-3 s.
- neg_mqtt_tls_nosni.pcap: the same subscription from mqttc.py: no SNI, no ALPN.
- sv2_reference.pcap: with --sv2, tools/sv2-session (a miner and a pool made of the Stratum V2
  reference crates: Noise NX handshake, encrypted frames, SetupConnection ... SubmitShares).
- neg_monerod_polling.pcap: a wallet-style poller: get_info, get_height, get_block_count,
  get_last_block_header, /getheight.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lab  # noqa: E402

WALLET = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A")
EASY_TARGET = "711b0d00"  # difficulty ~5000: a share every few seconds with cn-pico


def start(prefix: str, role: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    proc = subprocess.Popen([*lab.nsx(prefix, role), *argv], stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)
    fh.close()
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def xmrig(binary: str, *args: str) -> list[str]:
    return [binary, "--no-color", "--donate-level", "1", "-t", "1", "--print-time", "5", *args]


def poller(prefix: str, seconds: float) -> list[str]:
    code = (
        "import json,time,urllib.request as u\n"
        "B='http://%s:18081'\n"
        "end=time.time()+%f\n"
        "i=0\n"
        "while time.time()<end:\n"
        "  for m in ('get_info','get_height','get_block_count','get_last_block_header'):\n"
        "    r=u.Request(B+'/json_rpc',json.dumps({'jsonrpc':'2.0','id':'0','method':m})"
        ".encode(),{'Content-Type':'application/json'})\n"
        "    u.urlopen(r,timeout=5).read()\n"
        "  u.urlopen(B+'/getheight',timeout=5).read()\n"
        "  time.sleep(5)\n"
    ) % (lab.POOL_IP, seconds)
    return [sys.executable, "-c", code]


def scenarios(binary: str, seconds: float, sv2: str | None = None) -> dict[str, list[str]]:
    pool = lab.POOL_IP
    extra = {"sv2_reference": [sv2, "miner", f"{pool}:34255", str(int(seconds) - 2)]} if sv2 else {}
    return extra | {
        "xmrig_tls_ip443": xmrig(binary, "-o", f"{pool}:443", "--tls", "-u", WALLET,
                                 "-p", "lab01"),
        "xmrig_socks5": xmrig(binary, "-o", f"{lab.POOL_NAME}:3333", "-x", f"{pool}:1080",
                              "-u", WALLET, "-p", "lab01"),
        "xmrig_socks5_tls": xmrig(binary, "-o", f"{pool}:443", "--tls", "-x", f"{pool}:1080",
                                  "-u", WALLET, "-p", "lab01"),
        "xmrig_daemon": xmrig(binary, "--daemon", "-o", f"{pool}:18081", "-u", WALLET,
                              "-a", "rx/0", "--randomx-mode", "light",
                              "--daemon-poll-interval", "1000"),
        "miner_http_connect": [sys.executable, str(HERE / "miner.py"), "--pool",
                               lab.POOL_NAME, "--port", "3333", "--http-proxy", f"{pool}:3128",
                               "--dialect", "cryptonote"],
        "neg_mqtt_tls": ["mosquitto_sub", "-h", pool, "-p", "8883", "--cafile", "CA",
                         "--insecure", "-t", "plant/#", "-i", "hmi-7", "-k", "30"],
        "neg_monerod_polling": poller("", seconds),
        "neg_mqtt_tls_nosni": [sys.executable, str(HERE / "mqttc.py"), "--host", pool,
                               "--seconds", str(seconds - 2)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xmrig", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--sv2", help="tools/sv2-session binary (cargo build --release there)")
    ap.add_argument("--prefix", default="ndrec")
    args = ap.parse_args()
    state = Path(f"/run/netdetect-lab/{args.prefix}")
    args.out.mkdir(parents=True, exist_ok=True)
    lab.down(args.prefix, state)
    lab.up(args.prefix, state, services=False)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        crt, key = lab.make_cert(state, lab.POOL_NAME)
        keylog = args.out / "pool_tls_keys.log"
        procs.append(start(args.prefix, "pool", [
            sys.executable, str(HERE / "pool.py"), "--bind", lab.POOL_IP, "--port", "3333",
            "--tls-port", "443", "--cert", str(crt), "--key", str(key), "--keylog",
            str(keylog), "--job-interval", "5", "--algo", "cn-pico", "--target", EASY_TARGET],
            state / "pool.log"))
        procs.append(start(args.prefix, "pool", [sys.executable, str(HERE / "paths.py"),
                                                 "--bind", lab.POOL_IP, "--host",
                                                 f"{lab.POOL_NAME}={lab.POOL_IP}"],
                           state / "paths.log"))
        procs.append(start(args.prefix, "pool", [sys.executable, str(HERE / "dnsd.py"),
                                                 "--bind", lab.POOL_IP, "--name",
                                                 f"{lab.POOL_NAME}={lab.POOL_IP}"],
                           state / "dnsd.log"))
        conf = state / "mosquitto.conf"
        conf.write_text(f"user root\nlistener 8883 {lab.POOL_IP}\ncertfile {crt}\nkeyfile {key}\n"
                        "allow_anonymous true\n")
        procs.append(start(args.prefix, "pool", ["mosquitto", "-c", str(conf)],
                           state / "mosquitto.log"))
        ports = [3333, 443, 18081, 1080, 3128, 8883]
        if args.sv2:
            procs.append(start(args.prefix, "pool", [args.sv2, "pool", f"{lab.POOL_IP}:34255"],
                               state / "sv2pool.log"))
            ports.append(34255)
        lab.wait_listening(args.prefix, [(lab.POOL_IP, p) for p in ports], state)
        for name, argv in scenarios(args.xmrig, args.seconds, args.sv2).items():
            if args.only and name not in args.only:
                continue
            argv = [str(crt) if a == "CA" else a for a in argv]
            pcap = args.out / f"{name}.pcap"
            dump = start(args.prefix, "sensor", ["tcpdump", "-i", lab.SPAN_IF, "-U", "-s", "0",
                                                 "-w", str(pcap), "tcp"], state / "tcpdump.log")
            time.sleep(1.0)
            pub = None
            if name.startswith("neg_mqtt_tls"):
                pub = start(args.prefix, "pool", [sys.executable, "-c", (
                    "import subprocess,time,random\n"
                    "end=time.time()+%f\n"
                    "while time.time()<end:\n"
                    "  v=random.uniform(20,80)\n"
                    "  subprocess.run(['mosquitto_pub','-h','%s','-p','8883','--cafile','%s',"
                    "'--insecure','-t','plant/line3/temp','-m','{\"temp\":%%.2f}'%%v])\n"
                    "  time.sleep(random.uniform(2,3))\n") % (args.seconds, lab.POOL_IP, crt)],
                    state / "pub.log")
            client = start(args.prefix, "victim", argv, args.out / f"{name}.log")
            time.sleep(args.seconds)
            stop(client)
            if pub is not None:
                stop(pub)
            time.sleep(1.0)
            stop(dump)
            print(f"{pcap}: {pcap.stat().st_size} bytes", flush=True)
    finally:
        for p in procs:
            stop(p)
        lab.down(args.prefix, state)
    print(json.dumps({"out": str(args.out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
