"""The list formats `signatures import` reads: name -> (what it is, default category).

Apart from the importers so that building the command line does not load them."""

from __future__ import annotations

FORMATS: dict[str, tuple[str, str]] = {
    "maltrail": ("Maltrail trail file: IP:port, bare IPs, domains, URLs", "pool"),
    "coinblocker-domains": ("one domain per line (CoinBlockerLists list*.txt)", "pool"),
    "coinblocker-ips": ("one IPv4 address per line (CoinBlockerLists IP lists)", "pool"),
    "hosts": ("hosts file: '0.0.0.0 domain' lines", "pool"),
    "adblock": ("Adblock Plus filters: ||domain^ rules (NoCoin)", "browser-miner"),
    "ndpi": ("nDPI category file: domain<TAB>category", "browser-miner"),
    "smashed-csv": (
        "sMaSheD CSV: pool_name,pool_url,server_fqdn,port,coin,resolved_ipv4_2018",
        "pool",
    ),
    "ip-list": ("one address per line, [IPv6] allowed, # comments", "pool"),
    "allow-domains": ("allowlist: one domain per line, # comments", "allow"),
    "allow-ips": ("allowlist: one address per line, # comments", "allow"),
}
