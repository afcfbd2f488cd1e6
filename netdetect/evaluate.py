"""Scores replay against a labelled corpus (labels.json): recall and false alerts per file.

Matching follows the corpus's rules: per file, direction-agnostic on the triple
(client_ip, server_ip, server_port); unscored triples are neither hits nor false alerts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netdetect.detect import DEFAULT_HOME_NET
from netdetect.intel import Intel
from netdetect.model import Alert
from netdetect.service import replay

Triple = tuple[str, str, int]


@dataclass
class FileScore:
    name: str
    labelled: set[Triple]
    unscored: set[Triple]
    hits: set[Triple] = field(default_factory=set)
    false_alerts: set[Triple] = field(default_factory=set)
    alerts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def missed(self) -> set[Triple]:
        return self.labelled - self.hits


@dataclass
class CorpusReport:
    files: list[FileScore]

    @property
    def labelled(self) -> int:
        return sum(len(f.labelled) for f in self.files)

    @property
    def hits(self) -> int:
        return sum(len(f.hits) for f in self.files)

    @property
    def false_alerts(self) -> int:
        return sum(len(f.false_alerts) for f in self.files)

    @property
    def errors(self) -> int:
        return sum(len(f.errors) for f in self.files)


def alert_triples(alert: Alert) -> tuple[Triple, Triple]:
    s = alert.suspect
    return (s.miner.ip, s.pool.ip, s.pool.port), (s.pool.ip, s.miner.ip, s.miner.port)


def score_file(name: str, entry: dict[str, object], alerts: Iterable[Alert]) -> FileScore:
    flows = entry.get("mining_flows") or []
    unscored = entry.get("unscored_flows") or []
    assert isinstance(flows, list)
    assert isinstance(unscored, list)
    labelled = {(f["client_ip"], f["server_ip"], int(f["server_port"])) for f in flows}
    skip = {(f["client_ip"], f["server_ip"], int(f["server_port"])) for f in unscored}
    fs = FileScore(name, labelled, skip)
    for alert in alerts:
        if alert.verdict.value == "allowed":
            continue
        fs.alerts += 1
        fwd, rev = alert_triples(alert)
        if fwd in labelled:
            fs.hits.add(fwd)
        elif rev in labelled:
            fs.hits.add(rev)
        elif fwd not in skip and rev not in skip:
            fs.false_alerts.add(fwd)
    return fs


def evaluate_corpus(
    labels: Path,
    root: Path,
    *,
    intel: Intel,
    home_net: Iterable[str] | None = None,
) -> CorpusReport:
    data = json.loads(labels.read_text(encoding="utf-8"))
    files: list[FileScore] = []
    for name, entry in sorted(data["files"].items()):
        result = replay([str(root / name)], intel=intel, sinks=[],
                        home_net=home_net or DEFAULT_HOME_NET)
        fs = score_file(name, entry, result.alerts)
        fs.errors = result.errors
        files.append(fs)
    return CorpusReport(files)


def format_report(report: CorpusReport) -> str:
    lines = [f"{'file':48} {'labelled':>8} {'hit':>5} {'false':>5} {'alerts':>6}"]
    for f in report.files:
        lines.append(
            f"{f.name:48} {len(f.labelled):8d} {len(f.hits):5d} {len(f.false_alerts):5d} "
            f"{f.alerts:6d}"
        )
        lines.extend(f"    missed {m}" for m in sorted(f.missed))
        lines.extend(f"    false  {m}" for m in sorted(f.false_alerts))
        lines.extend(f"    error  {e}" for e in f.errors)
    recall = report.hits / report.labelled if report.labelled else 1.0
    lines.append(
        f"recall={recall:.4f} ({report.hits}/{report.labelled}) "
        f"false_alerts={report.false_alerts} errors={report.errors}"
    )
    return "\n".join(lines) + "\n"
