"""Shared fixtures: where the third-party corpus lives, and the loaded signatures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from netdetect.intel import Intel, load_intel

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
LISTS = SHARED / "lists"
PCAPS = REPO / "pcaps"


def pytest_configure(config: pytest.Config) -> None:
    # Compiled address lists are cached per user; the suite keeps its own cache (inherited
    # by every process it starts) rather than the home directory's.
    if "NETDETECT_CACHE_DIR" not in os.environ:
        os.environ["NETDETECT_CACHE_DIR"] = tempfile.mkdtemp(prefix="netdetect-test-cache-")


@pytest.fixture(scope="session")
def intel() -> Intel:
    return load_intel(REPO / "signatures")


@pytest.fixture(scope="session")
def corpus() -> Path:
    # The corpus is part of the test environment (../shared beside the clone): a missing
    # corpus is a broken environment, so fail loudly rather than skip.
    assert (CORPUS / "labels.json").is_file(), f"corpus not found at {CORPUS}"
    return CORPUS
