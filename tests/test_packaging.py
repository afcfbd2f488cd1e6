"""What the package declares matches what it imports and ships."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from importlib.resources import files
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-")


def _imports() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "netdetect").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "netdetect"}


def test_every_third_party_import_is_declared() -> None:
    project = PYPROJECT["project"]
    # The base is the agent's; the sensor's own imports come with the `sensor` extra.
    declared = {_name(r) for r in project["dependencies"]}
    declared |= {_name(r) for r in project["optional-dependencies"]["sensor"]}
    dists = packages_distributions()
    missing = []
    for module in sorted(_imports()):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} (from {sorted(names)})")
    assert not missing, f"imported but declared neither in dependencies nor in sensor: {missing}"


def test_license_is_an_spdx_expression_with_its_text() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_eve_schema_is_package_data() -> None:
    schema = files("netdetect").joinpath("schemas", "netdetect-eve.schema.json")
    assert schema.is_file()


def test_cli_names_every_module_of_the_sensor_extra() -> None:
    """On an agent-only install the CLI turns a missing sensor module into one line naming the
    extra; it must know every top-level module that extra provides."""
    from netdetect.cli import SENSOR_MODULES

    wanted = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["sensor"]}
    provided = {module for module, dists in packages_distributions().items()
                if {d.lower().replace("_", "-") for d in dists} & wanted
                and not module.startswith("_")}
    assert provided
    assert provided == SENSOR_MODULES
