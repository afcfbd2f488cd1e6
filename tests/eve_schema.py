"""Every EVE line a test produces is checked against Suricata's own schema (read from
../shared, never copied: it is GPL-2.0) plus the package's schema of the `netdetect` object.

Suricata's schema forbids unknown top-level keys, so a record is validated without
`netdetect` against it, and `netdetect` alone against ours (the composition its MANIFEST
describes).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from netdetect.sinks.eve import netdetect_schema

SURICATA_SCHEMA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "schemas" / "suricata-eve.schema.json"
)


@cache
def _suricata() -> Any:
    assert SURICATA_SCHEMA.is_file(), f"Suricata EVE schema not found at {SURICATA_SCHEMA}"
    schema = json.loads(SURICATA_SCHEMA.read_text(encoding="utf-8"))
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@cache
def _ours() -> Draft202012Validator:
    schema = netdetect_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _messages(validator: Any, doc: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def check_record(record: dict[str, Any]) -> None:
    rest = {k: v for k, v in record.items() if k != "netdetect"}
    errors = _messages(_suricata(), rest)
    if "netdetect" in record:
        errors += [f"netdetect/{m}" for m in _messages(_ours(), record["netdetect"])]
    # flow_id must survive readers that hold numbers as doubles (Suricata masks to 51 bits).
    if "flow_id" in record and not 0 <= record["flow_id"] < 1 << 51:
        errors.append(f"flow_id: {record['flow_id']} is not within 51 bits")
    assert not errors, "EVE record breaks the schema:\n  " + "\n  ".join(errors)


def check_eve_text(text: str) -> list[dict[str, Any]]:
    """Validate every line (each must be one whole JSON object) and return the records."""
    records = []
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        assert line.endswith("\n"), f"line {n}: partial last line {line[:80]!r}"
        record = json.loads(line)
        check_record(record)
        records.append(record)
    return records
