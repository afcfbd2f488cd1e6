"""Mining-pool intelligence: signature files, list importers and the pool address DB."""

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
