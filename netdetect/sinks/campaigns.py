"""Campaign updates for a SIEM: one JSON document each time a campaign changes.

A change is a new campaign, a merge (the absorbed ids are listed, so a SIEM keyed on an old
id can follow it), or a new host, pool, wallet, executable, persistence entry or severity.
Alerts that only add to the counts publish nothing: a fleet of thousands of alerts gives a
bounded number of updates, each of bounded size (the lists are capped, their totals given).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from netdetect.campaign import Campaign, Update
from netdetect.sinks.eve import SinkError, _FdOutput, eve_line, eve_timestamp

CAMPAIGN_TOPIC = "netdetect/v1/campaigns"
TOP = 20  # entries per list in an update


class CampaignSink(Protocol):
    def publish(self, doc: dict[str, Any]) -> None: ...


def _top(counts: Any) -> dict[str, int]:
    return dict(counts.most_common(TOP))


def brief(c: Campaign) -> dict[str, Any]:
    """The campaign as an update carries it: totals, and the top of each list."""
    level, points, why = c.severity()
    return {
        "id": c.id,
        "merged": list(c.merged),
        "first_seen": eve_timestamp(c.first_seen),
        "last_seen": eve_timestamp(c.last_seen),
        "alerts": c.alerts,
        "severity": level,
        "severity_points": points,
        "severity_why": why,
        "host_count": len(c.hosts()),
        "hosts": _top(c.hosts()),
        "pool_count": len(c.pools()),
        "pools": _top(c.pools()),
        "wallets": _top(c.wallets()),
        "exe_sha256": _top(c.exes()),
        "techniques": c.techniques(),
        "proxies": [{"hub": p.ip, "members": len(p.members), "upstream": _top(p.upstream)}
                    for p in list(c.proxies().values())[:TOP]],
        "persistence": [{"host": h, "kind": p.kind, "path": p.path, "line": p.line,
                         "text": p.text} for h, p in c.persistence()[:TOP]],
    }


class CampaignPublisher:
    """Turns the book's updates into documents for every sink; a sink that fails loses that
    document (counted by `on_error`) and the others still get it."""

    def __init__(self, *, context: dict[str, str] | None = None,
                 on_error: Callable[[object, Exception], None] | None = None) -> None:
        self.sinks: list[CampaignSink] = []
        self.context = context or {}
        self.on_error = on_error
        self.published = 0
        self._shapes: dict[str, tuple[int, ...]] = {}

    def update(self, up: Update) -> None:
        c = up.campaign
        shape = c.shape()
        if not up.new and not up.merged and self._shapes.get(c.id) == shape:
            return
        self._shapes[c.id] = shape
        for gone in up.merged:
            self._shapes.pop(gone, None)
        last = c.members[-1]
        doc: dict[str, Any] = {
            "timestamp": eve_timestamp(last.ts),
            "event_type": "campaign",
            **self.context,
            "change": "new" if up.new else ("merged" if up.merged else "grew"),
            "campaign": brief(c),
            "alert": {"flow_id": last.record.get("flow_id"), "src_ip": last.host_ip,
                      "dest_ip": last.pool_ip, "dest_port": last.pool_port,
                      "ties": list(up.ties)},
        }
        if up.merged:
            doc["absorbed"] = list(up.merged)
        self.published += 1
        for sink in self.sinks:
            try:
                sink.publish(doc)
            except (SinkError, OSError) as exc:
                if self.on_error is None:
                    raise
                self.on_error(sink, exc)


class CampaignFile:
    """Campaign updates as JSON lines, each written whole (the EVE writer's output)."""

    def __init__(self, path: str) -> None:
        self._out = _FdOutput.open(path)
        self.name = path

    def publish(self, doc: dict[str, Any]) -> None:
        try:
            self._out.write_line(eve_line(doc))
        except OSError as exc:
            raise SinkError(f"{self.name}: {exc.strerror or exc}") from exc

    def reopen(self) -> None:
        self._out.reopen()

    def close(self) -> None:
        self._out.close()


class CampaignMqtt:
    """Campaign updates on CAMPAIGN_TOPIC through an MQTT sink (never blocks, never raises)."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def publish(self, doc: dict[str, Any]) -> None:
        self.sink.submit(doc)
