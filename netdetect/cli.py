"""The `netdetect` command line: replay | sniff | agent | signatures | eval | demo.

Exit status: 0 the run completed (alerts or not); 1 alerts were raised and --fail-on-alert
was given; 2 usage error, unreadable, damaged or empty input (everything readable was
analysed first), an output that could not be written, or a configuration/signature error;
3 an internal error (a bug: one line, the traceback with NETDETECT_DEBUG=1); 130
interrupted (Ctrl-C; what was read so far was reported and written).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netdetect import __version__
from netdetect.errors import CaptureError, ConfigError, NetdetectError, SignatureError

if TYPE_CHECKING:
    from netdetect.intel import Intel
    from netdetect.service import AlertSink, Progress, RunResult

EXIT_OK, EXIT_ALERTS, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def default_signatures() -> str:
    """$NETDETECT_SIGNATURES, the source tree's signatures/, or the installed share dir."""
    env = os.environ.get("NETDETECT_SIGNATURES")
    if env:
        return env
    found = _shared("signatures")
    return str(found or Path(__file__).resolve().parent.parent / "signatures")


def _home_net(text: str) -> list[str]:
    import ipaddress

    nets = [t.strip() for t in text.split(",") if t.strip()]
    for n in nets:
        try:
            ipaddress.ip_network(n, strict=False)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a CIDR: {n!r}") from exc
    return nets


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _syslog_target(text: str) -> str:
    from netdetect.sinks.syslog import parse_target

    try:
        parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netdetect",
        description="Find unauthorized cryptocurrency mining from the network side and "
        "confirm it on the host.",
    )
    p.add_argument("--version", action="version", version=f"netdetect {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def detector_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--eve", metavar="FILE|-",
                        help="write EVE JSON alert lines to FILE (appended) or - for stdout")
        sp.add_argument("--syslog", metavar="TARGET", type=_syslog_target,
                        help="also send each EVE record as an RFC 5424 syslog message to "
                        "udp://HOST:PORT, tcp://HOST:PORT or a socket path (/dev/log)")
        from netdetect.sinks.syslog import FACILITIES

        sp.add_argument("--syslog-facility", default="local5", choices=sorted(FACILITIES),
                        help="syslog facility (default local5, as Suricata)")
        sp.add_argument("--home-net", type=_home_net, metavar="CIDRS",
                        help="comma-separated local networks (default: RFC 1918, CGNAT, ULA)")
        sp.add_argument("--signatures", metavar="DIR", default=None,
                        help="signature directory (default: the bundled signatures/)")
        sp.add_argument("--geo-asn", metavar="MMDB", help="GeoLite2-ASN database to enrich pools")
        sp.add_argument("--geo-city", metavar="MMDB", help="GeoLite2-City/Country database")
        sp.add_argument("--max-flows", type=_positive, default=150_000, metavar="N",
                        help="flow table cap (~0.8 KB a flow); the oldest are evicted beyond it")
        sp.add_argument("--confirm", action="store_true",
                        help="ask each suspect's host agent over MQTT before alerting")
        sp.add_argument("--config", metavar="TOML", help="sensor configuration (for --confirm)")
        sp.add_argument("--fail-on-alert", action="store_true",
                        help="exit 1 when any alert was raised")
        sp.add_argument("--quiet", "-q", action="store_true", help="no summary table")

    rp = sub.add_parser("replay", help="analyse capture files (pcap, pcapng, gzip, directories)")
    rp.add_argument("paths", nargs="+", metavar="PATH")
    detector_opts(rp)

    dp = sub.add_parser("demo", help="replay the bundled demo capture")
    detector_opts(dp)

    sp = sub.add_parser("sniff", help="live sensor on a SPAN/mirror interface")
    sp.add_argument("-i", "--interface", required=True)
    sp.add_argument("--workers", type=int, default=1)
    sp.add_argument("--bpf", default=None, help="kernel prefilter (BPF expression)")
    sp.add_argument("--metrics-port", type=int, default=None,
                    help="serve Prometheus metrics on this port")
    sp.add_argument("--metrics-addr", default="127.0.0.1",
                    help="address the metrics endpoint binds (default 127.0.0.1)")
    sp.add_argument("--ring-mb", type=int, default=None, metavar="MB",
                    help="size of each worker's capture ring (default 64 MiB)")
    sp.add_argument("--stats-interval", type=float, default=60.0,
                    help="seconds between counter log lines")
    sp.add_argument("--user", default=None, help="drop privileges to this user after opening")
    sp.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    sp.add_argument("--campaigns", metavar="FILE", default=None,
                    help="append a JSON line to FILE each time a campaign changes (new, "
                    "merged, a new host, pool, wallet, executable, persistence or severity)")
    detector_opts(sp)

    ap = sub.add_parser("agent", help="the host reporter: answers sensor queries over MQTT")
    ap.add_argument("--config", required=True, metavar="TOML")
    ap.add_argument("--metrics-port", type=int, default=None,
                    help="serve Prometheus metrics (query counters) on this port")
    ap.add_argument("--metrics-addr", default="127.0.0.1",
                    help="address the metrics endpoint binds (default 127.0.0.1)")

    sg = sub.add_parser("signatures", help="check or import signature data")
    ssub = sg.add_subparsers(dest="sig_command", required=True)
    sc = ssub.add_parser("check", help="report every error in a signature directory")
    sc.add_argument("directory", nargs="?", default=None)
    sc.add_argument("-v", "--verbose", action="store_true",
                    help="also list each file's entry count and every allowlist entry with "
                    "its reason")
    # A plain table: importing it loads nothing else of netdetect.intel (see its __init__).
    from netdetect.intel.formats import FORMATS

    si = ssub.add_parser("import", help="convert a public list into the project's format")
    si.add_argument("format", choices=sorted(FORMATS))
    si.add_argument("file")
    si.add_argument("--dir", default=None, help="signature directory to import into")
    si.add_argument("--name", default=None, help="name of the imported list (default: file)")
    si.add_argument("--category", default=None, help="category for imported domains")
    scp = ssub.add_parser("compile", help="compile the pool IP lists into pool_ips.mmdb")
    scp.add_argument("directory", nargs="?", default=None)

    rep = sub.add_parser(
        "report", help="incident report (campaigns) from EVE files or captures, HTML and JSON")
    rep.add_argument("inputs", nargs="+", metavar="EVE|CAPTURE",
                     help="EVE JSON files (read) or capture files/directories (replayed)")
    rep.add_argument("-o", "--html", metavar="FILE", default="netdetect-report.html",
                     help="the HTML report (default netdetect-report.html; - for stdout)")
    rep.add_argument("--json", metavar="FILE", default=None,
                     help="also write the same content as JSON (- for stdout)")
    rep.add_argument("--home-net", type=_home_net, metavar="CIDRS",
                     help="local networks: a stratum endpoint inside them is a proxy")
    rep.add_argument("--signatures", metavar="DIR", default=None,
                     help="signature directory for replayed captures")

    ev = sub.add_parser("eval", help="score replay against a labelled corpus")
    ev.add_argument("--labels", required=True)
    ev.add_argument("--root", required=True)
    ev.add_argument("--home-net", type=_home_net, default=None)
    return p


# Top-level modules of the `sensor` extra (pyproject.toml), missing on an agent-only host.
SENSOR_MODULES = frozenset({"maxminddb", "mmdb_writer", "rich", "netaddr"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except BrokenPipeError:
        # Whoever read our output went away (`| head`): nothing more can be said there, and
        # the interpreter's own flush at exit must not fail again on it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.stderr.write("netdetect: output closed before the end\n")
        return EXIT_USAGE
    except Exception as exc:
        if os.environ.get("NETDETECT_DEBUG"):
            raise
        sys.stderr.write(f"netdetect: internal error: {type(exc).__name__}: {exc} "
                         "(a bug; NETDETECT_DEBUG=1 shows the traceback)\n")
        return EXIT_INTERNAL


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        if args.command in ("replay", "demo"):
            return cmd_replay(args)
        if args.command == "signatures":
            return cmd_signatures(args)
        if args.command == "agent":
            return cmd_agent(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "sniff":
            return cmd_sniff(args)
    except (SignatureError, ConfigError) as exc:
        sys.stderr.write(f"netdetect: {exc}\n")
        return EXIT_USAGE
    except CaptureError as exc:
        sys.stderr.write(f"netdetect: {exc}\n")
        return EXIT_USAGE
    except NetdetectError as exc:
        sys.stderr.write(f"netdetect: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("netdetect: interrupted\n")
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as exc:
        # An agent-only install (`netdetect[agent]`) lacks what the sensor commands import.
        if (exc.name or "").split(".")[0] not in SENSOR_MODULES:
            raise
        sys.stderr.write(f"netdetect: {args.command} needs the sensor's dependencies ({exc.name} "
                         "is not installed): pip install 'netdetect[sensor]'\n")
        return EXIT_USAGE
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE  # pragma: no cover - parser.error exits


def _load_intel(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from netdetect.intel import load_intel

    return load_intel(
        args.signatures or default_signatures(),
        geo_asn=getattr(args, "geo_asn", None),
        geo_city=getattr(args, "geo_city", None),
    )


def _shared(*parts: str) -> Path | None:
    """A bundled file: the source tree's, else the installed <prefix>/share/netdetect one."""
    here = Path(__file__).resolve().parent.parent.joinpath(*parts)
    if here.exists():
        return here
    for base in (Path(sys.prefix) / "share", Path("/usr/share"), Path("/usr/local/share")):
        cand = base.joinpath("netdetect", *parts)
        if cand.exists():
            return cand
    return None


def demo_capture() -> str:
    found = _shared("pcaps", "demo.pcap")
    return str(found or Path(__file__).resolve().parent.parent / "pcaps" / "demo.pcap")


def settle_heap() -> None:
    """Once start-up is done: what exists now (modules, signatures) lives as long as the
    process, so the cyclic collector stops walking it, and it runs less often. The work
    per batch makes tuples freed by reference counting, not cycles, yet each batch used to
    set off a young-generation collection or two (106 on a 1 M-packet replay)."""
    import gc

    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def cmd_replay(args: argparse.Namespace) -> int:
    from netdetect.detect import DEFAULT_HOME_NET
    from netdetect.service import open_eve, replay

    paths = args.paths if args.command == "replay" else [demo_capture()]
    intel = _load_intel(args)
    settle_heap()
    home_net = args.home_net or list(DEFAULT_HOME_NET)
    if args.confirm and not args.config:
        sys.stderr.write("netdetect: --confirm needs --config SENSOR.toml\n")
        return EXIT_USAGE
    try:
        eve = open_eve(args.eve)
    except OSError as exc:
        sys.stderr.write(f"netdetect: cannot write EVE output {args.eve}: {exc.strerror}\n")
        return EXIT_USAGE
    report_stream = sys.stderr if args.eve == "-" else sys.stdout
    sinks: list[AlertSink] = [eve] if eve is not None else []
    syslog = None
    if args.syslog:
        from netdetect.sinks.syslog import SyslogSink

        syslog = SyslogSink(args.syslog, facility=args.syslog_facility)
        sinks.append(syslog)
    bar = _ProgressBar() if sys.stdout.isatty() and not args.quiet else None
    try:
        if args.confirm:
            import asyncio

            result = asyncio.run(
                _replay_confirmed(args, paths, intel, home_net, sinks, bar)
            )
        else:
            result = replay(
                paths, intel=intel, sinks=sinks, home_net=home_net,
                max_flows=args.max_flows, progress=bar,
            )
    finally:
        if bar is not None:
            bar.close()
        if eve is not None:
            eve.close()
        if syslog is not None:
            syslog.close()
    for err in result.errors:
        sys.stderr.write(f"netdetect: {err}\n")
    for warning in result.warnings:
        sys.stderr.write(f"netdetect: warning: {warning}\n")
    if not args.quiet:
        from netdetect.summary import print_summary

        print_summary(result.alerts, result.counters, result.errors, report_stream,
                      files=result.files, frames=result.frames, asked=args.confirm)
    if result.interrupted:
        sys.stderr.write("netdetect: interrupted: the results above cover what was read\n")
    if result.sink_error is not None:
        # Last, so it is the line a user sees: the run stopped at this record.
        sys.stderr.write(f"netdetect: cannot write output {result.sink_error}\n")
        return EXIT_USAGE
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.incomplete:
        return EXIT_USAGE
    if args.fail_on_alert and any(a.verdict.value != "allowed" for a in result.alerts):
        return EXIT_ALERTS
    return EXIT_OK


async def _replay_confirmed(
    args: argparse.Namespace,
    paths: list[str],
    intel: Intel,
    home_net: list[str],
    sinks: list[AlertSink],
    progress: Progress | None,
) -> RunResult:
    import secrets
    from contextlib import AsyncExitStack

    from netdetect.config import load_sensor_config
    from netdetect.confirm import Confirmer
    from netdetect.hosts import Inventory
    from netdetect.service import replay_confirmed
    from netdetect.sinks.mqtt import MqttAlertSink

    cfg = load_sensor_config(Path(args.config))
    inventory = Inventory.for_config(cfg)
    async with AsyncExitStack() as stack:
        confirmer = await stack.enter_async_context(Confirmer(cfg, inventory))
        extra: list[AlertSink] = []
        if cfg.alerts.mqtt and cfg.mqtt is not None:
            extra.append(await stack.enter_async_context(MqttAlertSink(
                cfg.mqtt, client_id=f"{cfg.sensor_id}-alerts-{secrets.token_hex(3)}",
                topic=cfg.alerts.topic,
                buffer=cfg.alerts.buffer,
            )))
        return await replay_confirmed(
            paths, intel=intel, confirmer=confirmer, sinks=[*sinks, *extra],
            home_net=home_net, max_flows=args.max_flows, progress=progress,
        )


class _ProgressBar:
    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                           TimeRemainingColumn(), transient=True)
        self._task = self._p.add_task("reading", total=None)
        self._p.start()

    def __call__(self, done: int, total: int, path: str) -> None:
        self._p.update(self._task, completed=done, total=total or None,
                       description=Path(path).name[:40])

    def close(self) -> None:
        self._p.stop()


def cmd_signatures(args: argparse.Namespace) -> int:
    from netdetect.intel import check_signatures

    directory = getattr(args, "directory", None) or getattr(args, "dir", None)
    directory = directory or default_signatures()
    if args.sig_command == "check":
        errors = check_signatures(directory)
        for e in errors:
            sys.stdout.write(e + "\n")
        if args.verbose and not errors:
            _describe_signatures(Path(directory))
        sys.stdout.write(f"{len(errors)} error(s) in {directory}\n")
        return EXIT_USAGE if errors else EXIT_OK
    # The commands that write go only into an existing signatures directory: a typo in
    # the path must not leave a new, half-filled one behind.
    if not Path(directory).is_dir():
        sys.stderr.write(f"netdetect: {directory}: not a signatures directory\n")
        return EXIT_USAGE
    if args.sig_command == "compile":
        from netdetect.intel import compile_signatures

        sys.stdout.write(f"wrote {compile_signatures(directory)}\n")
        return EXIT_OK
    from netdetect.intel.importers import import_list

    try:
        res = import_list(args.format, Path(args.file), Path(directory), name=args.name,
                          category=args.category)
    except ValueError as exc:
        sys.stderr.write(f"netdetect: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"netdetect: {exc.filename or directory}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    sys.stdout.write(res.summary() + "\n")
    for sk in res.skipped:
        sys.stdout.write(f"{args.file}:{sk.line}: skipped ({sk.reason}): {sk.text[:80]}\n")
    return EXIT_OK


def _describe_signatures(directory: Path) -> None:
    """`check -v`: what each file holds, and every allowlist entry with the reason its
    header asks for (an allowlist is only as good as its reasons)."""
    from netdetect.summary import clean

    files = sorted(directory.glob("*.txt")) + sorted((directory / "imported").glob("*.txt"))
    allow: list[str] = []
    sanctioned: list[str] = []
    for path in files:
        entries = 0
        with path.open(encoding="utf-8", errors="replace") as fh:
            for number, raw in enumerate(fh, 1):
                line = raw.rstrip("\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                entries += 1
                if path.name.endswith("allow_domains.txt") or path.name.endswith("allow_ips.txt"):
                    cols = line.split("\t")
                    reason = cols[-1] if len(cols) > 1 else "(no reason given)"
                    allow.append(f"  {path.name}:{number}: {clean(cols[0])} "
                                 f"({' '.join(cols[1:-1]) or 'entry'}): {clean(reason)}")
                elif path.name == "sanctioned.txt":
                    cols = [*line.split("\t"), "", "", ""][:4]
                    ports = "" if cols[2] in ("", "-") else f" port {cols[2]}"
                    sanctioned.append(f"  {path.name}:{number}: {clean(cols[0])} "
                                      f"{clean(cols[1])}{clean(ports)}: {clean(cols[3])}")
        sys.stdout.write(f"{path.relative_to(directory)}: {entries} entries\n")
    if allow:
        sys.stdout.write("allowlisted (never counted as mining evidence):\n")
        sys.stdout.write("".join(a + "\n" for a in allow))
    if sanctioned:
        sys.stdout.write("sanctioned (verdict allowed: recorded, never raised):\n")
        sys.stdout.write("".join(a + "\n" for a in sanctioned))


def cmd_report(args: argparse.Namespace) -> int:
    """EVE files are read, anything else is replayed; the report covers whatever was
    readable, and every unreadable input or broken line is named (exit 2)."""
    import time

    from netdetect.detect import DEFAULT_HOME_NET
    from netdetect.report import (
        build,
        iter_records_of_alerts,
        looks_like_eve,
        read_eve,
        write_report,
    )

    home_net = args.home_net or list(DEFAULT_HOME_NET)
    started = time.perf_counter()
    eves = [p for p in args.inputs if looks_like_eve(p)]
    captures = [p for p in args.inputs if p not in eves]
    records, errors = read_eve(eves)
    if captures:
        from netdetect.service import replay

        result = replay(captures, intel=_load_intel(args), sinks=[], home_net=home_net)
        records.extend(iter_records_of_alerts(result.alerts))
        errors += result.errors + [f"warning: {w}" for w in result.warnings]
    doc = build(records, sources=args.inputs, home_net=home_net, errors=errors)
    try:
        write_report(doc, html_path=args.html, json_path=args.json)
    except OSError as exc:
        sys.stderr.write(f"netdetect: cannot write the report: {exc.filename}: "
                         f"{exc.strerror or exc}\n")
        return EXIT_USAGE
    for err in errors:
        sys.stderr.write(f"netdetect: {err}\n")
    s = doc["summary"]
    sys.stderr.write(
        f"netdetect: report: {s['alerts']} alert(s) in {s['campaigns']} campaign(s) on "
        f"{s['hosts']} host(s) in {time.perf_counter() - started:.2f} s"
        + (f" -> {args.html}" if args.html and args.html != "-" else "")
        + (f", {args.json}" if args.json and args.json != "-" else "") + "\n")
    return EXIT_USAGE if errors and any(not e.startswith("warning:") for e in errors) else EXIT_OK


def cmd_agent(args: argparse.Namespace) -> int:
    from netdetect.agent.daemon import main as agent_main

    argv = ["--config", args.config, "--metrics-addr", args.metrics_addr]
    if args.metrics_port is not None:
        argv += ["--metrics-port", str(args.metrics_port)]
    return agent_main(argv)


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from netdetect.evaluate import evaluate_corpus, format_report
    from netdetect.intel import load_intel

    labels, root = Path(args.labels), Path(args.root)
    try:
        json.loads(labels.read_text(encoding="utf-8"))
    except OSError as exc:
        sys.stderr.write(f"netdetect: {labels}: cannot read: {exc.strerror or exc}\n")
        return EXIT_USAGE
    except (ValueError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"netdetect: {labels}: not a JSON labels file: {exc}\n")
        return EXIT_USAGE
    if not root.is_dir():
        sys.stderr.write(f"netdetect: {root}: not a directory\n")
        return EXIT_USAGE
    intel = load_intel(default_signatures())
    try:
        report = evaluate_corpus(labels, root, intel=intel, home_net=args.home_net)
    except (KeyError, TypeError, AttributeError) as exc:
        sys.stderr.write(f"netdetect: {labels}: unexpected labels layout: "
                         f"{type(exc).__name__}: {exc}\n")
        return EXIT_USAGE
    sys.stdout.write(format_report(report))
    return EXIT_OK


def cmd_sniff(args: argparse.Namespace) -> int:
    from netdetect.live import run_sniff

    return run_sniff(args)


if __name__ == "__main__":
    sys.exit(main())
