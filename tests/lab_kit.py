"""The lab's disguised-miner kit (deploy/lab/disguise.py), loaded for tests with types."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

LAB = Path(__file__).resolve().parents[1] / "deploy" / "lab"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab_disguise", LAB / "disguise.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_DISGUISE = _load()
# build(outdir) -> {"miner", "hider", "busy"}: compiled (miner UPX-packed) from deploy/lab.
build: Callable[[Path], dict[str, Path]] = _DISGUISE.build
# write_config(dir, url, threads_hint=, scratch_mb=, share_interval=, nice=) -> config.json
write_config: Callable[..., Path] = _DISGUISE.write_config
