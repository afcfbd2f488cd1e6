"""The incident report: campaigns of EVE alerts as one self-contained HTML page and as JSON.

`build` turns EVE records into one JSON-ready document (summary, campaigns, per campaign a
timeline, a graph and the alerts); `render_html` draws that same document. The page needs
nothing but itself: no script, inline CSS and SVG, and a Content-Security-Policy that forbids
every fetch, so opening it offline (or on an air-gapped analyst machine) shows everything and
leaks nothing. Every string from the wire or a host (pool names, logins, command lines, cron
lines) is escaped where it is written.

Thousands of alerts stay readable: each campaign shows its alerts aggregated per (host, pool,
dialect) and at most `ALERT_ROWS` individual alerts, newest first (`ALERT_ROWS_COLLAPSED` for
campaigns past the first `OPEN_CAMPAIGNS`, which are collapsed); the JSON form keeps every
alert.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netdetect.campaign import Campaign, CampaignBook, Observation, group
from netdetect.detect import DEFAULT_HOME_NET

REPORT_VERSION = 1
ALERT_ROWS = 50  # individual alerts of an expanded campaign in the HTML (all in the JSON)
ALERT_ROWS_COLLAPSED = 10  # ... of a collapsed one
GROUP_ROWS = 200  # aggregated (host, pool, dialect) rows per campaign in the HTML
OPEN_CAMPAIGNS = 5  # campaigns shown expanded; the others are collapsed
LANES = 12  # timeline lanes (hosts) per campaign before the rest are folded into one
GRAPH_NODES = 12  # nodes per graph column before the rest are folded into one
BINS = 120  # timeline resolution


class ReportInputError(Exception):
    """An EVE input could not be read; the report is still built from the rest."""


def read_eve(paths: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Alert records of EVE files, and one message per unreadable file, broken line or
    alert record that is not netdetect's (``path:line: why``). Other event types (flow,
    allowed, stats) are skipped."""
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    for path in paths:
        try:
            with Path(path).open(encoding="utf-8", errors="surrogateescape") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        errors.append(f"{path}:{n}: not a JSON line ({exc.msg})")
                        continue
                    if not isinstance(rec, dict):
                        errors.append(f"{path}:{n}: not a JSON object")
                        continue
                    if rec.get("event_type") != "alert":
                        continue
                    try:  # fields of the wrong type (an edited or foreign file)
                        Observation.from_eve(rec)
                    except (TypeError, ValueError, AttributeError, KeyError,
                            OverflowError) as exc:  # OverflowError: int(Infinity)
                        errors.append(f"{path}:{n}: not a netdetect alert record ({exc})")
                        continue
                    records.append(rec)
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
    return records, errors


def looks_like_eve(path: str) -> bool:
    """An EVE file starts with a JSON object; a capture starts with its magic number."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(64).lstrip()
    except OSError:
        return False
    return head.startswith(b"{")


# --- the document ----------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _alert_row(o: Observation) -> dict[str, Any]:
    proc = o.process or {}
    return {
        "time": _iso(o.ts),
        "ts": o.ts,
        "host": o.host,
        "src": f"{o.host_ip}:{o.host_port}",
        "dest": f"{o.pool_ip}:{o.pool_port}",
        "pool": o.pool,
        "dialect": o.dialect,
        "verdict": o.verdict,
        "severity": o.severity,
        "score": o.score,
        "login": o.login,
        "wallet": o.wallet,
        "worker": o.worker,
        "agent": o.agent,
        "ja3": o.ja3,
        "ja4": o.ja4,
        "evidence": [f"{e.get('kind')} (+{e.get('weight')}): {e.get('detail')}"
                     for e in o.evidence],
        "reasons": list(o.reasons),
        "process": {
            "name": proc.get("name"), "pid": proc.get("pid"), "user": proc.get("user"),
            "exe": proc.get("exe"), "exe_sha256": proc.get("exe_sha256"),
            "cpu_percent": proc.get("cpu_percent"), "rss_bytes": proc.get("rss_bytes"),
            "cmdline": list(proc.get("cmdline") or ()),
        } if proc else None,
        "persistence": [
            {"kind": p.kind, "where": f"{p.path}:{p.line}" if p.line > 0 else p.path,
             "text": p.text, "technique": p.technique, "download_exec": p.download_exec}
            for p in o.persistence],
        "techniques": list(o.techniques),
        "pcap": o.pcap,
        "flow_id": o.record.get("flow_id"),
        "campaign_at_alert": _campaign_at_alert(o),
    }


def _campaign_at_alert(o: Observation) -> str | None:
    nd = o.record.get("netdetect")
    tag = nd.get("campaign") if isinstance(nd, Mapping) else None
    cid = tag.get("id") if isinstance(tag, Mapping) else None
    return cid if isinstance(cid, str) else None


def _groups(c: Campaign) -> list[dict[str, Any]]:
    agg: dict[tuple[str, str, str], dict[str, Any]] = {}
    for o in c.members:
        g = agg.setdefault((o.host, o.pool, o.dialect), {
            "host": o.host, "pool": o.pool, "dialect": o.dialect, "alerts": 0,
            "first": o.ts, "last": o.ts, "verdicts": Counter()})
        g["alerts"] += 1
        g["first"] = min(g["first"], o.ts)
        g["last"] = max(g["last"], o.ts)
        g["verdicts"][o.verdict] += 1
    rows = sorted(agg.values(), key=lambda g: (-g["alerts"], g["first"]))
    return [{**g, "first": _iso(g["first"]), "last": _iso(g["last"]),
             "verdicts": dict(g["verdicts"])} for g in rows]


def _timeline(c: Campaign) -> dict[str, Any]:
    """Per host, alert counts in BINS equal slices of the campaign's life."""
    start, end = c.first_seen, c.last_seen
    span = max(end - start, 1e-9)
    lanes: dict[str, list[int]] = {}
    order = [h for h, _ in c.hosts().most_common()]
    shown = set(order[:LANES])
    rest = len(order) - len(shown)
    other = f"{rest} other hosts" if rest > 0 else None
    for o in c.members:
        name = o.host if o.host in shown else str(other)
        row = lanes.setdefault(name, [0] * BINS)
        row[min(int((o.ts - start) / span * BINS), BINS - 1)] += 1
    names = list(order[:LANES]) + ([other] if other else [])
    return {"start": _iso(start), "end": _iso(end), "start_ts": start, "end_ts": end,
            "bins": BINS, "lanes": [{"host": n, "counts": lanes[n]} for n in names]}


def _graph(c: Campaign) -> dict[str, Any]:
    """hosts -> proxies -> pools -> wallets, with alert counts on the edges."""
    proxies = c.proxies()
    edges: Counter[tuple[str, str, str, str]] = Counter()
    for o in c.members:
        if o.pool_internal:
            edges[("host", o.host, "proxy", o.pool_ip)] += 1
        elif o.host_ip in proxies:
            edges[("proxy", o.host_ip, "pool", o.pool)] += 1
        else:
            edges[("host", o.host, "pool", o.pool)] += 1
        if (w := o.wallet) and not o.pool_internal:
            edges[("pool", o.pool, "wallet", w)] += 1
        elif w:
            edges[("proxy", o.pool_ip, "wallet", w)] += 1
    weight: dict[str, Counter[str]] = {k: Counter() for k in ("host", "proxy", "pool", "wallet")}
    for (ka, a, kb, b), n in edges.items():
        weight[ka][a] += n
        weight[kb][b] += n
    for ip in proxies:
        weight["proxy"][ip] += 0
        weight["host"].pop(ip, None)
    nodes: dict[str, list[dict[str, Any]]] = {}
    fold: dict[tuple[str, str], str] = {}
    for kind, counts in weight.items():
        ranked = counts.most_common()
        keep = ranked[:GRAPH_NODES]
        col = [{"id": f"{kind}:{name}", "kind": kind, "label": name, "alerts": n}
               for name, n in keep]
        if len(ranked) > GRAPH_NODES:
            more = f"{kind}:+{len(ranked) - GRAPH_NODES}"
            col.append({"id": more, "kind": kind,
                        "label": f"+{len(ranked) - GRAPH_NODES} more {kind}s",
                        "alerts": sum(n for _, n in ranked[GRAPH_NODES:])})
            for name, _ in ranked[GRAPH_NODES:]:
                fold[(kind, name)] = more
        nodes[kind] = col
    folded: Counter[tuple[str, str]] = Counter()
    for (ka, a, kb, b), n in edges.items():
        folded[(fold.get((ka, a), f"{ka}:{a}"), fold.get((kb, b), f"{kb}:{b}"))] += n
    return {"columns": ["host", "proxy", "pool", "wallet"],
            "nodes": [n for k in ("host", "proxy", "pool", "wallet") for n in nodes[k]],
            "edges": [{"from": a, "to": b, "alerts": n} for (a, b), n in folded.items()]}


def build(records: Iterable[Mapping[str, Any]], *, sources: Sequence[str] = (),
          home_net: Iterable[str] = DEFAULT_HOME_NET, errors: Sequence[str] = ()
          ) -> dict[str, Any]:
    """The report as one JSON-ready document (the HTML draws exactly this)."""
    book = group(records, home_net)
    return document(book, sources=sources, errors=errors)


def document(book: CampaignBook, *, sources: Sequence[str] = (),
             errors: Sequence[str] = ()) -> dict[str, Any]:
    campaigns = book.campaigns()
    hosts: set[str] = set()
    pools: set[str] = set()
    wallets: set[str] = set()
    severity: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    techniques: set[str] = set()
    first, last = float("inf"), 0.0
    out = []
    for c in campaigns:
        s = c.summary()
        hosts.update(s["hosts"])
        pools.update(s["pools"])
        wallets.update(s["wallets"])
        severity[s["severity"]] += 1
        verdicts.update(s["verdicts"])
        techniques.update(s["techniques"])
        first, last = min(first, c.first_seen), max(last, c.last_seen)
        newest = sorted(c.members, key=lambda o: -o.ts)
        out.append({
            **s,
            "first_seen": _iso(c.first_seen), "last_seen": _iso(c.last_seen),
            "first_seen_ts": c.first_seen, "last_seen_ts": c.last_seen,
            "related": [{"campaign": cid, "kind": kind, "value": value}
                        for cid, kind, value in book.related(c)],
            "groups": _groups(c),
            "timeline": _timeline(c),
            "graph": _graph(c),
            "alert_rows": [_alert_row(o) for o in newest],
        })
    total = sum(c.alerts for c in campaigns)
    return {
        "version": REPORT_VERSION,
        "sources": list(sources),
        "errors": list(errors),
        "summary": {
            "alerts": total,
            "campaigns": len(campaigns),
            "hosts": len(hosts),
            "pools": len(pools),
            "wallets": sorted(wallets),
            "first_seen": _iso(first) if campaigns else None,
            "last_seen": _iso(last) if campaigns else None,
            "severity": {k: severity.get(k, 0) for k in ("critical", "high", "medium", "low")},
            "verdicts": dict(verdicts.most_common()),
            "techniques": sorted(techniques),
        },
        "campaigns": out,
    }


# --- HTML ----------------------------------------------------------------------------------------


def e(value: object) -> str:
    """Escaped text of anything, for element content and quoted attributes alike."""
    return html.escape("" if value is None else str(value), quote=True)


CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2329;
background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c9d3dd;font-size:12px}
main{padding:16px 24px;max-width:1400px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:0 0 16px}
.card{background:#fff;border:1px solid #dde2e7;border-radius:6px;padding:10px 16px;
min-width:110px}
.card b{display:block;font-size:24px}.card span{color:#5b6570;font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 12px}
th,td{border:1px solid #dde2e7;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;
word-break:break-all}
.sev{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-size:12px}
.sev-critical{background:#a4161a}.sev-high{background:#dc5f00}
.sev-medium{background:#c9a100}.sev-low{background:#6c7a89}
details.campaign{background:#fff;border:1px solid #dde2e7;border-radius:6px;margin:12px 0;
padding:8px 14px}
details.campaign>summary{cursor:pointer;font-size:16px;font-weight:600}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.box{border:1px solid #dde2e7;border-radius:4px;padding:6px 10px;background:#fafbfc}
.box h4{margin:0 0 4px;font-size:12px;color:#5b6570;text-transform:uppercase}
.muted{color:#5b6570}.err{color:#a4161a}
svg text{font:11px system-ui,sans-serif}
"""


def _kv_list(d: Mapping[str, Any], limit: int = 8) -> str:
    items = list(d.items())
    shown = ", ".join(f"{e(k)} ({e(v)})" for k, v in items[:limit])
    if len(items) > limit:
        shown += f", <span class=muted>+{len(items) - limit} more</span>"
    return shown or "<span class=muted>none</span>"


def _timeline_svg(t: Mapping[str, Any]) -> str:
    lanes = t["lanes"]
    label_w, width, lane_h = 190, 900, 18
    h = lane_h * len(lanes) + 24
    bin_w = (width - label_w) / t["bins"]
    peak = max((max(lane["counts"]) for lane in lanes), default=1) or 1
    parts = [(f'<svg role="img" aria-label="timeline" width="{width}" height="{h}" '
              f'viewBox="0 0 {width} {h}" xmlns="http://www.w3.org/2000/svg">')]
    for i, lane in enumerate(lanes):
        y = i * lane_h
        parts.append(f'<text x="0" y="{y + 13}">{e(_clip(lane["host"], 30))}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 8}" width="{width - label_w}" height="1" '
                     'fill="#dde2e7"/>')
        for b, n in enumerate(lane["counts"]):
            if n:
                op = 0.35 + 0.65 * n / peak
                parts.append(f'<rect x="{label_w + b * bin_w:.1f}" y="{y + 2}" '
                             f'width="{max(bin_w, 2):.1f}" height="{lane_h - 5}" '
                             f'fill="#1f6feb" fill-opacity="{op:.2f}">'
                             f'<title>{e(lane["host"])}: {n} alert(s)</title></rect>')
    y = lane_h * len(lanes) + 16
    parts.append(f'<text x="{label_w}" y="{y}">{e(t["start"])}</text>')
    parts.append(f'<text x="{width}" y="{y}" text-anchor="end">{e(t["end"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


_COLORS = {"host": "#1f6feb", "proxy": "#8250df", "pool": "#dc5f00", "wallet": "#1a7f37"}


def _graph_svg(g: Mapping[str, Any]) -> str:
    cols = g["columns"]
    width, col_w, node_h = 1100, 1100 / len(cols), 26
    pos: dict[str, tuple[float, float]] = {}
    per_col: dict[str, list[Mapping[str, Any]]] = {c: [] for c in cols}
    for n in g["nodes"]:
        per_col[n["kind"]].append(n)
    rows = max((len(v) for v in per_col.values()), default=1) or 1
    h = rows * node_h + 30
    parts = [(f'<svg role="img" aria-label="hosts, proxies, pools and wallets" width="{width}" '
              f'height="{h}" viewBox="0 0 {width} {h}" xmlns="http://www.w3.org/2000/svg">')]
    for ci, c in enumerate(cols):
        title = {"proxy": "proxies", "wallet": "wallets / accounts"}.get(c, c + "s")
        parts.append(f'<text x="{ci * col_w + 8}" y="12" font-weight="600">{e(title)}</text>')
        for ri, n in enumerate(per_col[c]):
            x, y = ci * col_w + 8, 22 + ri * node_h
            pos[n["id"]] = (x, y)
    for edge in g["edges"]:
        if edge["from"] in pos and edge["to"] in pos:
            (x1, y1), (x2, y2) = pos[edge["from"]], pos[edge["to"]]
            sw = min(1 + edge["alerts"] ** 0.5 / 2, 6)
            parts.append(f'<line x1="{x1 + col_w - 40:.0f}" y1="{y1 + 9}" x2="{x2:.0f}" '
                         f'y2="{y2 + 9}" stroke="#8c959f" stroke-width="{sw:.1f}" '
                         f'stroke-opacity="0.6"><title>{edge["alerts"]} alert(s)</title></line>')
    for n in g["nodes"]:
        nx, ny = pos[n["id"]]
        color = _COLORS.get(n["kind"], "#555")
        parts.append(f'<rect x="{nx:.0f}" y="{ny}" width="{col_w - 48:.0f}" height="18" rx="4" '
                     f'fill="#fff" stroke="{color}"/>'
                     f'<text x="{nx + 6:.0f}" y="{ny + 13}">{e(_clip(n["label"], 38))} '
                     f'({n["alerts"]})<title>{e(n["label"])}</title></text>')
    parts.append("</svg>")
    return "".join(parts)


def _sources(sources: Sequence[str]) -> str:
    if len(sources) <= 4:
        return ", ".join(sources)
    return ", ".join(sources[:3]) + f" and {len(sources) - 3} more"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _host_proof(a: Mapping[str, Any]) -> str:
    p = a.get("process")
    out = []
    if p:
        cpu = p.get("cpu_percent")
        out.append(f"<div>process <code>{e(p.get('name'))}</code> pid {e(p.get('pid'))}"
                   f" user {e(p.get('user'))}"
                   + (f", {float(cpu):.0f}% CPU" if cpu is not None else "") + "</div>")
        out.append(f"<div>exe <code>{e(p.get('exe'))}</code></div>")
        if p.get("exe_sha256"):
            out.append(f"<div>sha256 <code>{e(p.get('exe_sha256'))}</code></div>")
        if p.get("cmdline"):
            out.append(f"<div>cmdline <code>{e(' '.join(map(str, p['cmdline'])))}</code></div>")
    out += [f"<div>{e(pe['kind'])} <code>{e(pe['where'])}</code>"
            f" {e(pe.get('technique') or '')}: <code>{e(pe['text'])}</code></div>"
            for pe in a.get("persistence") or ()]
    if not out:
        why = "; ".join(a.get("reasons") or ()) or "no host report"
        out.append(f"<div class=muted>{e(why)}</div>")
    return "".join(out)


def _alert_html(a: Mapping[str, Any]) -> str:
    net = [(f"<div>{e(a['time'])} <code>{e(a['src'])}</code> → <code>{e(a['dest'])}</code>"
            f" {e(a['dialect'])}, score {e(a['score'])}, {e(a['verdict'])}</div>"),
           f"<div>pool <code>{e(a['pool'])}</code></div>"]
    if a.get("login"):
        net.append(f"<div>login <code>{e(a['login'])}</code></div>")
    if a.get("agent"):
        net.append(f"<div>agent <code>{e(a['agent'])}</code></div>")
    if a.get("ja3") or a.get("ja4"):
        net.append(f"<div>TLS <code>{e(a.get('ja4') or '')} {e(a.get('ja3') or '')}</code></div>")
    net += [f"<div class=muted>{e(x)}</div>" for x in a["evidence"][:6]]
    return ('<div class="pair"><div class="box"><h4>network</h4>' + "".join(net)
            + '</div><div class="box"><h4>host</h4>' + _host_proof(a) + "</div></div>")


def _campaign_html(c: Mapping[str, Any], n: int) -> str:
    sev = c["severity"]
    proxies = "".join(
        f"<li>proxy <code>{e(p['hub'])}</code> ports {e(', '.join(map(str, p['ports'])))}: "
        f"{len(p['members'])} internal miner(s); upstream "
        f"{_kv_list(p['upstream']) if p['upstream'] else '<span class=muted>not seen</span>'}"
        "</li>" for p in c["proxies"])
    ties = "".join(
        f"<tr><td>{e(t['kind'])}</td><td class=mono>{e(_clip(t['value'], 140))}</td>"
        f"<td class=num>{t['alerts']}</td><td class=num>{len(t['hosts'])}</td></tr>"
        for t in c["ties"][:40])
    persistence = "".join(
        f"<li><code>{e(p['host'])}</code> {e(p['kind'])} <code>{e(p['path'])}:{e(p['line'])}"
        f"</code>: <code>{e(p['text'])}</code></li>" for p in c["persistence"][:40])
    groups = c["groups"]
    group_rows = "".join(
        f"<tr><td>{e(g['host'])}</td><td class=mono>{e(g['pool'])}</td><td>{e(g['dialect'])}"
        f"</td><td class=num>{g['alerts']}</td><td>{e(g['first'])}</td><td>{e(g['last'])}</td>"
        "</tr>" for g in groups[:GROUP_ROWS])
    more_groups = (f"<p class=muted>{len(groups) - GROUP_ROWS} more rows in the JSON form</p>"
                   if len(groups) > GROUP_ROWS else "")
    rows = c["alert_rows"]
    cap = ALERT_ROWS if n < OPEN_CAMPAIGNS else ALERT_ROWS_COLLAPSED
    alerts = "".join(_alert_html(a) for a in rows[:cap])
    more = (f"<p class=muted>showing the newest {cap} of {len(rows)} alerts; every "
            "alert is in the JSON form</p>" if len(rows) > cap else "")
    related = "".join(
        f"<li><a href=\"#{e(r['campaign'])}\">{e(r['campaign'])}</a> shares {e(r['kind'])} "
        f"<code>{e(_clip(r['value'], 80))}</code> (a weak tie: shown, not merged)</li>"
        for r in c["related"][:20])
    return f"""
<details class="campaign" id="{e(c['id'])}"{' open' if n < OPEN_CAMPAIGNS else ''}>
<summary><span class="sev sev-{e(sev)}">{e(sev)}</span> {e(c['id'])}:
{len(c['hosts'])} host(s), {c['alerts']} alert(s), {len(c['pools'])} pool(s)</summary>
<p>{e(c['first_seen'])} → {e(c['last_seen'])}.
Severity {e(sev)}: {e('; '.join(c['severity_why']) or 'network evidence only, one host')}.
Techniques: {e(', '.join(c['techniques']))}.
{('Absorbed: ' + e(', '.join(c['merged'])) + '.') if c['merged'] else ''}</p>
<table><tr><th>hosts</th><td>{_kv_list(c['hosts'])}</td></tr>
<tr><th>pools</th><td class=mono>{_kv_list(c['pools'])}</td></tr>
<tr><th>wallets / accounts</th><td class=mono>{_kv_list(c['wallets'])}</td></tr>
<tr><th>miners</th><td class=mono>{_kv_list(c['agents'])}</td></tr>
<tr><th>TLS</th><td class=mono>{_kv_list(c['tls_fingerprints'])}</td></tr>
<tr><th>executables</th><td class=mono>{_kv_list(c['exe_sha256'])}</td></tr></table>
{f'<ul>{proxies}</ul>' if proxies else ''}
{f'<h4>persistence</h4><ul>{persistence}</ul>' if persistence else ''}
<h4>timeline</h4>{_timeline_svg(c['timeline'])}
<h4>hosts, proxies, pools, wallets</h4>{_graph_svg(c['graph'])}
<h4>why these alerts are one campaign</h4>
{f'<table><tr><th>tie</th><th>value</th><th>alerts</th><th>hosts</th></tr>{ties}</table>'
 if ties else '<p class=muted>a single alert</p>'}
{f'<h4>related campaigns</h4><ul>{related}</ul>' if related else ''}
<details><summary>alerts by host and pool ({len(groups)} rows)</summary>
<table><tr><th>host</th><th>pool</th><th>dialect</th><th>alerts</th><th>first</th><th>last</th>
</tr>{group_rows}</table>{more_groups}</details>
<details{' open' if n == 0 else ''}><summary>alerts: network evidence and host proof</summary>
{more}{alerts}</details>
</details>"""


def render_html(doc: Mapping[str, Any]) -> str:
    s = doc["summary"]
    sev = s["severity"]
    rows = "".join(
        f"<tr><td><a href=\"#{e(c['id'])}\">{e(c['id'])}</a></td>"
        f"<td><span class=\"sev sev-{e(c['severity'])}\">{e(c['severity'])}</span></td>"
        f"<td class=num>{len(c['hosts'])}</td><td class=num>{c['alerts']}</td>"
        f"<td class=mono>{e(_clip(', '.join(c['pools']), 60))}</td>"
        f"<td class=mono>{e(_clip(', '.join(c['wallets']), 40))}</td>"
        f"<td>{'yes' if c['persistence'] else 'no'}</td>"
        f"<td>{e(c['first_seen'])}</td><td>{e(c['last_seen'])}</td></tr>"
        for c in doc["campaigns"][:10])
    more = len(doc["campaigns"]) - 10
    errors = "".join(f"<li class=err>{e(x)}</li>" for x in doc["errors"][:50])
    cards = "".join(
        f'<div class="card"><b>{e(v)}</b><span>{e(k)}</span></div>' for k, v in (
            ("campaigns", s["campaigns"]), ("hosts", s["hosts"]), ("alerts", s["alerts"]),
            ("pools", s["pools"]), ("wallets", len(s["wallets"])),
            ("critical / high", f"{sev['critical']} / {sev['high']}")))
    body = "".join(_campaign_html(c, i) for i, c in enumerate(doc["campaigns"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netdetect incident report</title><style>{CSS}</style></head>
<body><header><h1>netdetect incident report: {s['campaigns']} campaign(s) on {s['hosts']}
host(s)</h1><p>{e(s['first_seen'])} → {e(s['last_seen'])} · from {e(_sources(doc['sources']))}
· techniques {e(', '.join(s['techniques']))}</p></header>
<main id="summary"><div class="cards">{cards}</div>
{f'<ul>{errors}</ul>' if errors else ''}
<table><tr><th>campaign</th><th>severity</th><th>hosts</th><th>alerts</th><th>pools</th>
<th>wallets</th><th>persistence</th><th>first seen</th><th>last seen</th></tr>{rows}</table>
{f'<p class=muted>{more} more campaign(s) below</p>' if more > 0 else ''}
{body}
</main></body></html>
"""


def write_report(doc: Mapping[str, Any], *, html_path: str | None,
                 json_path: str | None) -> None:
    """Each output is written whole (a temporary file renamed into place)."""
    if html_path:
        _write_whole(html_path, render_html(doc))
    if json_path:
        _write_whole(json_path, json.dumps(doc, indent=1, ensure_ascii=False,
                                           default=str) + "\n")


def _write_whole(path: str, text: str) -> None:
    if path == "-":
        import sys

        sys.stdout.write(text)
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8", errors="backslashreplace")
    tmp.replace(target)


def iter_records_of_alerts(alerts: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """EVE records of in-memory alerts (a replay straight into a report)."""
    from netdetect.sinks.eve import alert_to_eve

    for a in alerts:
        if a.verdict.value != "allowed":
            yield alert_to_eve(a)
