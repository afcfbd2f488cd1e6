"""Mining-pool intelligence: signature files, list importers and the pool address DB.

The names below load their modules when first used, so that importing a light part of the
package (`netdetect.intel.formats`, which the command line reads for `signatures import`)
does not load the signature loader for every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netdetect.intel.mmdb import GeoFacts, IpMatch, compile_ip_sets
    from netdetect.intel.store import (
        AgentMatch,
        DomainMatch,
        Intel,
        Sanctioned,
        SanctionedEntry,
        SignatureLoadError,
        TlsMatch,
        check_signatures,
        compile_signatures,
        load_intel,
    )

_WHERE = {
    "GeoFacts": "mmdb",
    "IpMatch": "mmdb",
    "compile_ip_sets": "mmdb",
    "AgentMatch": "store",
    "DomainMatch": "store",
    "Intel": "store",
    "Sanctioned": "store",
    "SanctionedEntry": "store",
    "SignatureLoadError": "store",
    "TlsMatch": "store",
    "check_signatures": "store",
    "compile_signatures": "store",
    "load_intel": "store",
}

__all__ = [
    "AgentMatch",
    "DomainMatch",
    "GeoFacts",
    "Intel",
    "IpMatch",
    "Sanctioned",
    "SanctionedEntry",
    "SignatureLoadError",
    "TlsMatch",
    "check_signatures",
    "compile_ip_sets",
    "compile_signatures",
    "load_intel",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__ rather than importlib.import_module: the import statement's own path,
    # which `python -X importtime` reports.
    value = getattr(__import__(f"{__name__}.{where}", fromlist=[name]), name)
    globals()[name] = value
    return value
