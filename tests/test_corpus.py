"""Every labelled mining flow in the real corpus alerts; nothing else does."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from netdetect.evaluate import evaluate_corpus, format_report
from netdetect.intel import Intel


def test_corpus_files_are_the_labelled_ones(corpus: Path) -> None:
    labels = json.loads((corpus / "labels.json").read_text())
    assert len(labels["files"]) >= 50
    for name, entry in labels["files"].items():
        digest = hashlib.sha256((corpus / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], name


@pytest.mark.corpus
def test_full_recall_and_no_false_alerts(corpus: Path, intel: Intel) -> None:
    report = evaluate_corpus(corpus / "labels.json", corpus, intel=intel)
    text = format_report(report)
    assert report.labelled >= 748, text
    assert report.errors == 0, text
    assert report.false_alerts == 0, text
    assert report.hits == report.labelled, text
