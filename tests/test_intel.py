"""Tests for the signature files and the Intel lookups built from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import maxminddb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmdb_writer import MMDBWriter
from netaddr import IPNetwork, IPSet

from netdetect.errors import SignatureError
from netdetect.intel import (
    AgentMatch,
    Intel,
    SignatureLoadError,
    check_signatures,
    compile_ip_sets,
    compile_signatures,
    load_intel,
)
from netdetect.intel.mmdb import IpEntry, IpSetDb, Network
from netdetect.intel.store import REQUIRED, parse_network

REPO_SIGS = Path(__file__).resolve().parents[1] / "signatures"

XMRIG_JA3 = "c34a54599a1fbaf1786aa6d633545a60"
XMRIG_JA4 = "t13i310900_e8f1e7e78f70_5ac7197df9d2"


@pytest.fixture(scope="module")
def intel() -> Intel:
    return load_intel(REPO_SIGS)


def make_sigs(tmp_path: Path, **files: str) -> Path:
    """A copy of the repository's signatures with some files replaced (name_txt=content)."""
    dest = tmp_path / "sigs"
    shutil.copytree(REPO_SIGS, dest, ignore=shutil.ignore_patterns("*.mmdb", "imported"))
    for key, content in files.items():
        name = key.replace("__", "/").removesuffix("_txt") + ".txt"
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return dest


HEADER = "# test file\n"


# --- the repository's own signature files ---------------------------------------------------


def test_repo_signatures_load_without_errors(intel: Intel) -> None:
    assert check_signatures(REPO_SIGS) == []
    counts = intel.counts()
    assert counts["domains"] >= 150
    assert counts["domains_browser_miner"] >= 20
    assert counts["domains_proxy"] >= 1
    assert counts["miner_agents"] >= 30
    assert counts["tls_fingerprints"] >= 2
    assert counts["pool_ports"] >= 20
    assert counts["web_ports"] >= 4


@pytest.mark.parametrize("name", sorted(p.name for p in REPO_SIGS.glob("*.txt")))
def test_every_signature_file_documents_itself(name: str) -> None:
    text = (REPO_SIGS / name).read_text(encoding="utf-8")
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    joined = "\n".join(header)
    assert header, f"{name} has no header"
    assert "Format:" in joined, f"{name} header does not give the line format"
    assert "Sources:" in joined, f"{name} header does not say where its facts come from"


def test_repo_has_every_required_file() -> None:
    for name in REQUIRED:
        assert (REPO_SIGS / name).is_file(), name


POOL_NAMES = [
    "supportxmr.com",
    "pool.supportxmr.com",
    "gulf.moneroocean.stream",
    "xmr-eu1.nanopool.org",
    "etc.2miners.com",
    "stratum.slushpool.com",
    "stratum.antpool.com",
    "btc.f2pool.com",
    "rx.unmineable.com",
    "de.zephyr.herominers.com",
    "pool.hashvault.pro",
    "auto.c3pool.com",
    "eu1.ethermine.org",
    "xmrpool.eu",
    "zec.suprnova.cc",
    "mint.bitminter.com",
    "stratum.braiins.com",
    "pool.binance.com",
    "daggerhashimoto.eu.nicehash.com",
]


@pytest.mark.parametrize("name", POOL_NAMES)
def test_well_known_pools_match(intel: Intel, name: str) -> None:
    match = intel.match_domain(name)
    assert match is not None, name
    assert name == match.domain or name.endswith("." + match.domain)
    assert match.source == "pool_domains.txt"


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("coinhive.com", "browser-miner"),
        ("ws001.coinhive.com", "browser-miner"),
        ("authedmine.com", "browser-miner"),
        ("crypto-loot.com", "browser-miner"),
        ("www.jsecoin.com", "browser-miner"),
        ("nicehash.com", "proxy"),
        ("supportxmr.com", "pool"),
    ],
)
def test_categories(intel: Intel, name: str, category: str) -> None:
    match = intel.match_domain(name)
    assert match is not None
    assert match.category == category


@pytest.mark.parametrize(
    "name",
    [
        "evilsupportxmr.com",  # suffix match only on a label boundary
        "supportxmr.com.evil.net",
        "supportxmr.co",
        "upportxmr.com",
        "xsupportxmr.com",
        "nanopool.org.example",
        "com",
        "",
        ".",
        "..",
    ],
)
def test_suffix_match_is_on_label_boundaries(intel: Intel, name: str) -> None:
    assert intel.match_domain(name) is None


@pytest.mark.parametrize(
    "name",
    ["SupportXMR.com", "POOL.SUPPORTXMR.COM", "pool.supportxmr.com.", "Pool.SupportXmr.Com."],
)
def test_case_and_trailing_dot_are_ignored(intel: Intel, name: str) -> None:
    match = intel.match_domain(name)
    assert match is not None
    assert match.domain == "supportxmr.com"


def test_most_specific_entry_wins(tmp_path: Path) -> None:
    sigs = make_sigs(
        tmp_path,
        pool_domains_txt=HEADER + "example-pool.net\tpool\tparent\n"
        "web.example-pool.net\tbrowser-miner\tchild\n",
    )
    intel = load_intel(sigs)
    child = intel.match_domain("a.web.example-pool.net")
    parent = intel.match_domain("stratum.example-pool.net")
    assert child is not None
    assert child.domain == "web.example-pool.net"
    assert child.category == "browser-miner"
    assert parent is not None
    assert parent.domain == "example-pool.net"


BIG_NAMES = [
    "google.com",
    "googleapis.com",
    "gstatic.com",
    "youtube.com",
    "cloudflare.com",
    "cloudflare.net",
    "amazonaws.com",
    "amazon.com",
    "cloudfront.net",
    "akamaihd.net",
    "akamaiedge.net",
    "fastly.net",
    "azure.com",
    "azurewebsites.net",
    "microsoft.com",
    "windows.net",
    "apple.com",
    "icloud.com",
    "facebook.com",
    "github.com",
    "github.io",
    "githubusercontent.com",
    "gitlab.com",
    "digitaloceanspaces.com",
    "ovh.net",
    "hetzner.com",
    "herokuapp.com",
    "jsdelivr.net",
    "unpkg.com",
    "wordpress.com",
    "blogspot.com",
    "duckdns.org",
    "ddns.net",
    "no-ip.org",
    "now.sh",
]


@pytest.mark.parametrize("big", BIG_NAMES)
def test_pool_list_holds_no_shared_infrastructure(intel: Intel, big: str) -> None:
    assert intel.match_domain(big) is None
    assert intel.match_domain("www." + big) is None
    assert intel.match_domain("some-tenant." + big) is None


def test_pool_list_entries_are_not_parents_of_big_names() -> None:
    entries = [
        line.split("\t")[0]
        for line in (REPO_SIGS / "pool_domains.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    for entry in entries:
        for big in BIG_NAMES:
            assert big != entry
            assert not big.endswith("." + entry), (entry, big)


def test_repo_allowlist_keeps_pool_hosts_of_exchanges(intel: Intel) -> None:
    assert intel.match_domain("www.binance.com") is None
    assert intel.match_domain("binance.com") is None
    assert intel.match_domain("pool.binance.com") is not None
    assert intel.match_domain("pool.btc.com") is not None
    assert intel.match_domain("btc.com") is None
    assert intel.match_domain("downloads.getmonero.org") is None


def test_allowlist_wins(tmp_path: Path) -> None:
    sigs = make_sigs(
        tmp_path,
        pool_domains_txt=HEADER + "example-pool.net\tpool\tn\n"
        "deep.allowed-parent.org\tpool\tn\n"
        "exact.example\tpool\tn\n",
        allow_domains_txt=HEADER + "safe.example-pool.net\tsuffix\tour own proxy\n"
        "allowed-parent.org\tsuffix\tparent allowed\n"
        "exact.example\texact\tonly the apex\n",
    )
    intel = load_intel(sigs)
    assert intel.match_domain("stratum.example-pool.net") is not None
    assert intel.match_domain("safe.example-pool.net") is None
    assert intel.match_domain("x.safe.example-pool.net") is None
    # An allow entry beats a more specific pool entry below it.
    assert intel.match_domain("deep.allowed-parent.org") is None
    assert intel.match_domain("a.deep.allowed-parent.org") is None
    # "exact" covers the name only.
    assert intel.match_domain("exact.example") is None
    sub = intel.match_domain("www.exact.example")
    assert sub is not None
    assert sub.domain == "exact.example"


def test_idn_names(tmp_path: Path) -> None:
    sigs = make_sigs(
        tmp_path, pool_domains_txt=HEADER + "xn--bcher-kva.example\tpool\tIDN pool\n"
    )
    intel = load_intel(sigs)
    assert intel.match_domain("pool.bücher.example") is not None
    assert intel.match_domain("pool.xn--bcher-kva.example") is not None
    assert intel.match_domain("\udcff.example") is None  # not encodable: no match, no raise


# --- agents ---------------------------------------------------------------------------------

AGENTS = [
    ("XMRig/6.16.0 (Linux x86_64) libuv/1.42.0 gcc/9.3.0", "xmrig", "6.16.0"),
    ("XMRig/6.21.0 (Windows NT 10.0; Win64; x64) libuv/1.44.2 msvc/2019", "xmrig", "6.21.0"),
    ("xmrig-proxy/6.18.0 (Linux x86_64) libuv/1.44.1 gcc/11.2.0", "xmrig-proxy", "6.18.0"),
    ("XMRig-CUDA/6.17.0", "xmrig", "6.17.0"),
    ("cgminer/3.7.2", "cgminer", "3.7.2"),
    ("cgminer/4.10.0", "cgminer", "4.10.0"),
    ("bfgminer/5.2.0", "bfgminer", "5.2.0"),
    ("sgminer/5.6.1", "sgminer", "5.6.1"),
    ("bmminer/2.0.0", "bmminer", "2.0.0"),
    ("xmr-stak-cpu/1.3.0-1.5.0", "xmr-stak-cpu", "1.3.0-1.5.0"),
    ("xmr-stak/2.10.8/e6e4fb1/master/lin/nvidia-amd-cpu/0", "xmr-stak", "2.10.8"),
    ("EWBF/0.3.4b", "ewbf", "0.3.4b"),
    ("ethminer/0.19.0", "ethminer", "0.19.0"),
    ("ethminer 0.19.0+commit.7f9d4fde", "ethminer", "0.19.0+commit.7f9d4fde"),
    ("xmr/1.0", "xmr", "1.0"),
    ("cpuminer/2.5.1", "cpuminer", "2.5.1"),
    ("cpuminer-multi/1.3.7", "cpuminer-multi", "1.3.7"),
    ("cpuminer-opt/3.8.8.1", "cpuminer-opt", "3.8.8.1"),
    ("ccminer/2.3.1", "ccminer", "2.3.1"),
    ("PhoenixMiner/5.5c", "phoenixminer", "5.5c"),
    ("T-Rex/0.26.8", "t-rex", "0.26.8"),
    ("TeamRedMiner/0.10.5", "teamredminer", "0.10.5"),
    ("NBMiner/42.2", "nbminer", "42.2"),
    ("lolMiner/1.77", "lolminer", "1.77"),
    ("GMiner/3.44", "gminer", "3.44"),
    ("nanominer/3.8.5", "nanominer", "3.8.5"),
    ("SRBMiner-MULTI/2.4.4", "srbminer", "2.4.4"),
    ("WildRig-Multi/0.36.6", "wildrig", "0.36.6"),
    ("nheqminer/0.5c", "nheqminer", "0.5c"),
    ("equihashminer/1.0", "equihashminer", "1.0"),
    ("bminer/16.4.11", "bminer", "16.4.11"),
    ("xmr-node-proxy/0.0.3", "xmr-node-proxy", "0.0.3"),
    ("MinerGate/7.2", "minergate", "7.2"),
    ("Claymore's CryptoNote CPU Miner v4.0", "claymore", "4.0"),
    ("kawpowminer/1.2.4", "kawpowminer", "1.2.4"),
    ("excavator/v1.7.1", "excavator", "1.7.1"),
]


@pytest.mark.parametrize(("text", "name", "version"), AGENTS)
def test_agents_match_real_strings(intel: Intel, text: str, name: str, version: str) -> None:
    assert intel.match_agent(text) == AgentMatch(name=name, version=version)


@pytest.mark.parametrize(
    "text",
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36"
        ),
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
        ),
        "curl/8.5.0",
        "Wget/1.21.3",
        "python-requests/2.31.0",
        "Python-urllib/3.11",
        "Go-http-client/1.1",
        "okhttp/4.12.0",
        "Debian APT-HTTP/1.3 (2.6.1)",
        "Prometheus/2.48.0",
        "notxmrig/6.16.0",  # a match must start on a name boundary
        "myxmr/1.0",
        "xmrig",  # a name without a version is not an agent string
        "",
    ],
)
def test_ordinary_agents_do_not_match(intel: Intel, text: str) -> None:
    assert intel.match_agent(text) is None


def test_agent_version_keeps_original_case(intel: Intel) -> None:
    match = intel.match_agent("XMRig/6.16.0-MO1 (Linux x86_64)")
    assert match == AgentMatch("xmrig", "6.16.0-MO1")


def test_agent_in_non_ascii_text(intel: Intel) -> None:
    assert intel.match_agent("Ünïcode XMRig/6.1.0 ✓") == AgentMatch("xmrig", "6.1.0")
    assert intel.match_agent("Ünïcode browser ✓") is None


# --- TLS, ports -----------------------------------------------------------------------------


def test_xmrig_tls_fingerprints_are_weak(intel: Intel) -> None:
    by_ja3 = intel.match_tls(XMRIG_JA3, None)
    by_ja4 = intel.match_tls(None, XMRIG_JA4)
    assert by_ja3 is not None
    assert by_ja4 is not None
    for match in (by_ja3, by_ja4):
        assert "XMRig" in match.label
        assert "OpenSSL 1.1.1" in match.label
        assert 0 < match.weight <= 20
    assert by_ja3.kind == "ja3"
    assert by_ja4.kind == "ja4"
    both = intel.match_tls(XMRIG_JA3, XMRIG_JA4)
    assert both is not None
    assert both.kind == "ja4"
    assert intel.match_tls(XMRIG_JA3.upper(), None) == by_ja3


def test_unknown_tls_fingerprints(intel: Intel) -> None:
    assert intel.match_tls(None, None) is None
    assert intel.match_tls("0" * 32, "t13d1516h2_8daaf6152771_e5627efa2ab1") is None
    assert intel.match_tls("", "") is None


@pytest.mark.parametrize("port", [3333, 4444, 5555, 7777, 14444, 45560])
def test_pool_ports(intel: Intel, port: int) -> None:
    assert intel.is_pool_port(port)
    assert not intel.is_web_port(port)


@pytest.mark.parametrize("port", [80, 443, 8080, 8443])
def test_web_ports(intel: Intel, port: int) -> None:
    assert intel.is_web_port(port)
    assert not intel.is_pool_port(port)


@pytest.mark.parametrize("port", [22, 53, 123, 0, 65535])
def test_other_ports(intel: Intel, port: int) -> None:
    assert not intel.is_pool_port(port)
    assert not intel.is_web_port(port)


def test_port_ranges(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, pool_ports_txt=HEADER + "10001-10010\tMoneroOcean plain ports\n")
    intel = load_intel(sigs)
    assert intel.is_pool_port(10001)
    assert intel.is_pool_port(10010)
    assert not intel.is_pool_port(10011)
    assert intel.counts()["pool_ports"] == 10


# --- addresses ------------------------------------------------------------------------------

POOL_IPS = (
    HEADER
    + "198.51.100.7\tpool\t3333,5555\tsingle address\n"
    + "203.0.113.0/24\tpool\t-\twhole network\n"
    + "203.0.113.128/25\tbrowser-miner\t443\tmore specific half\n"
    + "2001:db8:77::/48\tpool\t-\tv6 network\n"
    + "192.0.2.0/24\tproxy\t-\tnetwork with an allowed hole\n"
)
ALLOW_IPS = HEADER + "192.0.2.64/26\tour sanctioned relay\n198.51.100.0/24\tcovers a pool /32\n"


def test_ip_lookups(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, pool_ips_txt=POOL_IPS)
    intel = load_intel(sigs)
    single = intel.match_ip("198.51.100.7")
    assert single is not None
    assert single.network == "198.51.100.7/32"
    assert single.ports == frozenset({3333, 5555})
    assert single.port_listed(3333)
    assert not single.port_listed(80)
    assert single.source == "pool_ips.txt"
    assert single.note == "single address"
    wide = intel.match_ip("203.0.113.9")
    assert wide is not None
    assert wide.network == "203.0.113.0/24"
    assert wide.ports == frozenset()
    assert wide.port_listed(1234)
    half = intel.match_ip("203.0.113.200")
    assert half is not None
    assert half.network == "203.0.113.128/25"
    assert half.category == "browser-miner"
    v6 = intel.match_ip("2001:db8:77:1::5")
    assert v6 is not None
    assert v6.network == "2001:db8:77::/48"
    mapped = intel.match_ip("::ffff:198.51.100.7")
    assert mapped is not None
    assert mapped.network == "198.51.100.7/32"
    for miss in ("198.51.100.8", "8.8.8.8", "2001:db8:78::1", "::1", "not an ip", ""):
        assert intel.match_ip(miss) is None, miss
    assert intel.counts()["pool_networks"] == 5


def test_allowed_networks_beat_pool_networks(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, pool_ips_txt=POOL_IPS, allow_ips_txt=ALLOW_IPS)
    intel = load_intel(sigs)
    assert intel.match_ip("192.0.2.10") is not None
    assert intel.match_ip("192.0.2.70") is None  # inside the allowed /26 hole
    assert intel.match_ip("192.0.2.130") is not None
    assert intel.match_ip("198.51.100.7") is None  # pool /32 inside an allowed /24
    assert intel.counts()["allow_networks"] == 2


def test_compiled_db_is_used_when_fresh(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, pool_ips_txt=POOL_IPS)
    mmdb = compile_signatures(sigs)
    assert mmdb == sigs / "pool_ips.mmdb"
    assert load_intel(sigs).counts()["pool_ip_db_cached"] == 1
    # An edited list makes the compiled file stale: the loader compiles privately instead
    # of answering from old data, and leaves the directory untouched.
    with (sigs / "pool_ips.txt").open("a") as fh:
        fh.write("100.24.0.0/16\tpool\t-\tadded later\n")
    before = sorted(p.name for p in sigs.iterdir())
    stale_bytes = mmdb.read_bytes()
    intel = load_intel(sigs)
    assert intel.counts()["pool_ip_db_cached"] == 0
    assert intel.match_ip("100.24.1.1") is not None
    assert sorted(p.name for p in sigs.iterdir()) == before
    assert mmdb.read_bytes() == stale_bytes


def test_private_compile_is_cached_per_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sigs = make_sigs(tmp_path, pool_ips_txt=POOL_IPS)
    cache = tmp_path / "cache"
    monkeypatch.setenv("NETDETECT_CACHE_DIR", str(cache))
    before = sorted(p.name for p in sigs.iterdir())
    assert load_intel(sigs).match_ip("198.51.100.7") is not None
    compiled = list(cache.glob("pool_ips-*.mmdb"))
    assert len(compiled) == 1
    stamp = compiled[0].stat().st_mtime_ns
    # The next start reads the cached DB instead of compiling again.
    assert load_intel(sigs).match_ip("198.51.100.7") is not None
    assert compiled[0].stat().st_mtime_ns == stamp
    assert sorted(p.name for p in sigs.iterdir()) == before
    # Edited lists get their own entry; a corrupt entry is compiled again.
    with (sigs / "pool_ips.txt").open("a") as fh:
        fh.write("100.24.0.0/16\tpool\t-\tadded later\n")
    assert load_intel(sigs).match_ip("100.24.1.1") is not None
    assert len(list(cache.glob("pool_ips-*.mmdb"))) == 2
    for p in cache.glob("pool_ips-*.mmdb"):
        p.write_bytes(b"truncated")
    assert load_intel(sigs).match_ip("100.24.1.1") is not None
    assert not list(cache.glob("*.tmp"))


def test_unwritable_cache_falls_back_to_a_private_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sigs = make_sigs(tmp_path, pool_ips_txt=POOL_IPS)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("NETDETECT_CACHE_DIR", str(blocker / "cache"))
    assert load_intel(sigs).match_ip("198.51.100.7") is not None
    monkeypatch.setenv("NETDETECT_CACHE_DIR", "")
    assert load_intel(sigs).match_ip("198.51.100.7") is not None


def test_db_without_lists_is_used(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, pool_ips_txt=POOL_IPS)
    compile_signatures(sigs)
    (sigs / "pool_ips.txt").unlink()
    (sigs / "allow_ips.txt").unlink()
    intel = load_intel(sigs)
    assert intel.counts()["pool_ip_db_cached"] == 1
    assert intel.match_ip("198.51.100.7") is not None


def test_foreign_db_is_an_error(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path)
    (sigs / "pool_ips.txt").unlink()
    (sigs / "allow_ips.txt").unlink()
    (sigs / "pool_ips.mmdb").write_bytes(b"not a maxmind db")
    with pytest.raises(SignatureError, match=r"pool_ips\.mmdb:0: "):
        load_intel(sigs)


def test_corrupt_db_next_to_lists_is_replaced_privately(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, pool_ips_txt=POOL_IPS)
    (sigs / "pool_ips.mmdb").write_bytes(b"truncated")
    intel = load_intel(sigs)
    assert intel.counts()["pool_ip_db_cached"] == 0
    assert intel.match_ip("198.51.100.7") is not None


def test_no_addresses_means_no_db(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path)
    (sigs / "pool_ips.txt").unlink()
    (sigs / "allow_ips.txt").unlink()
    intel = load_intel(sigs)
    assert intel.match_ip("198.51.100.7") is None


def test_compile_ip_sets_round_trip(tmp_path: Path) -> None:
    entries = [
        IpEntry(_net("10.1.0.0/16"), "a.txt", "pool", "outer", frozenset()),
        IpEntry(_net("10.1.2.0/24"), "b.txt", "pool", "inner", frozenset({3333})),
        IpEntry(_net("10.1.2.0/24"), "c.txt", "pool", "inner again", frozenset({4444})),
        IpEntry(_net("2001:db8::/32"), "a.txt", "pool", "v6", frozenset()),
        IpEntry(_net("10.1.9.0/24"), "allow.txt", "allow", "hole", frozenset()),
    ]
    path = tmp_path / "x.mmdb"
    assert compile_ip_sets(entries, path, digest="abc") == 4  # the two /24 lines merge
    assert IpSetDb.digest_of(path) == "abc"
    db = IpSetDb.open(path)
    inner = db.lookup("10.1.2.3")
    assert inner is not None
    assert inner.ports == frozenset({3333, 4444})
    assert inner.source == "b.txt, c.txt"
    outer = db.lookup("10.1.3.3")
    assert outer is not None
    assert outer.note == "outer"
    assert db.lookup("10.1.9.9") is None
    assert db.lookup("2001:db8:1::1") is not None
    db.close()


def _net(text: str) -> Network:
    net = parse_network(text)
    assert not isinstance(net, str)
    return net


# --- geo enrichment -------------------------------------------------------------------------


def _geo_dbs(tmp_path: Path) -> tuple[str, str]:
    asn = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    asn.insert_network(
        IPSet([IPNetwork("198.51.100.0/24")]),
        {"autonomous_system_number": 16276, "autonomous_system_organization": "OVH SAS"},
    )
    city = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    city.insert_network(
        IPSet([IPNetwork("198.51.100.0/24")]), {"country": {"iso_code": "FR"}}
    )
    city.insert_network(
        IPSet([IPNetwork("203.0.113.0/24")]), {"registered_country": {"iso_code": "DE"}}
    )
    asn_path, city_path = tmp_path / "asn.mmdb", tmp_path / "city.mmdb"
    asn.to_db_file(str(asn_path))
    city.to_db_file(str(city_path))
    return str(asn_path), str(city_path)


def test_enrich_from_geolite_dbs(tmp_path: Path) -> None:
    asn, city = _geo_dbs(tmp_path)
    intel = load_intel(REPO_SIGS, geo_asn=asn, geo_city=city)
    facts = intel.enrich("198.51.100.9")
    assert facts is not None
    assert (facts.asn, facts.as_org, facts.country) == (16276, "OVH SAS", "FR")
    only_country = intel.enrich("203.0.113.1")
    assert only_country is not None
    assert (only_country.asn, only_country.country) == (None, "DE")
    assert intel.enrich("192.0.2.1") is None
    assert intel.enrich("garbage") is None
    assert intel.counts()["geo"] == 1
    intel.close()


def test_enrich_without_geo_dbs(intel: Intel) -> None:
    assert intel.enrich("198.51.100.9") is None


def test_bad_geo_paths_are_reported(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(SignatureLoadError, match=r"missing\.mmdb:0: GeoLite2-ASN"):
        load_intel(REPO_SIGS, geo_asn=str(tmp_path / "missing.mmdb"))
    with pytest.raises(SignatureLoadError, match=r"bogus\.mmdb:0: not a readable MaxMind DB"):
        load_intel(REPO_SIGS, geo_city=str(bogus))


# --- errors ---------------------------------------------------------------------------------

BROKEN = {
    "pool_domains_txt": HEADER
    + "good.example\tpool\tfine\n"  # 2
    + "bad.example\tminer\tunknown category\n"  # 3
    + "localhost\tpool\tsingle label\n"  # 4
    + "Upper.Example\tpool\tupper case\n"  # 5
    + "192.0.2.1\tpool\tan address\n"  # 6
    + "spaces.example pool note\n"  # 7
    + "good.example\tpool\tduplicate\n"  # 8
    + "bad_-.-label.example\tpool\tbad label\n"  # 9
    + "bücher.example\tpool\tnon-ascii\n",  # 10
    "allow_domains_txt": HEADER + "ok.example\tsuffix\tfine\nok2.example\twide\tbad scope\n",
    "pool_ports_txt": HEADER
    + "3333\tfine\n"  # 2
    + "abc\tnot a number\n"  # 3
    + "70000\tout of range\n"  # 4
    + "5000-4000\tempty range\n"  # 5
    + "1-65535\ttoo wide\n"  # 6
    + "3333\tduplicate\n",  # 7
    "miner_agents_txt": HEADER
    + "good/(\\d+)\tgood\n"  # 2
    + "bad(/(\\d+)\tbadregex\n"  # 3
    + "x*\tempty\n"  # 4
    + "Upper/(\\d+)\tupper\n"  # 5
    + "fine/(\\d+)\tBad Name\n"  # 6
    + "only-one-column\n",  # 7
    "tls_fingerprints_txt": HEADER
    + f"ja3\t{XMRIG_JA3}\tfine\t10\tnote\n"  # 2
    + "ja5\tabc\tlabel\t10\n"  # 3
    + "ja3\tnothex\tlabel\t10\n"  # 4
    + "ja4\tt13i310900_short\tlabel\t10\n"  # 5
    + f"ja4\t{XMRIG_JA4}\tlabel\t101\n"  # 6
    + "ja3\t00000000000000000000000000000000\t\t5\n",  # 7
    "pool_ips_txt": HEADER
    + "192.0.2.0/24\tpool\t-\tfine\n"  # 2
    + "192.0.2.1/24\tpool\t-\thost bits\n"  # 3
    + "192.0.2.300\tpool\t-\tbad address\n"  # 4
    + "198.51.100.1\tminer\t-\tbad category\n"  # 5
    + "198.51.100.2\tpool\t3333,x\tbad ports\n"  # 6
    + "::ffff:198.51.100.3\tpool\t-\tmapped\n",  # 7
    "allow_ips_txt": HEADER + "2001:db8::/129\tbad prefix\n",
    "web_ports_txt": "443\tno header\n",
    "imported__junk_txt": HEADER + "whatever\n",
}

EXPECTED = [
    ("pool_domains.txt", 3, "unknown category 'miner'"),
    ("pool_domains.txt", 4, "single label"),
    ("pool_domains.txt", 5, "not lower-case"),
    ("pool_domains.txt", 6, "is an address"),
    ("pool_domains.txt", 7, "TAB-separated"),
    ("pool_domains.txt", 8, "duplicate of line 2"),
    ("pool_domains.txt", 9, "invalid label"),
    ("pool_domains.txt", 10, "non-ASCII"),
    ("allow_domains.txt", 3, "unknown scope 'wide'"),
    ("pool_ports.txt", 3, "bad port 'abc'"),
    ("pool_ports.txt", 4, "out of range"),
    ("pool_ports.txt", 5, "empty port range"),
    ("pool_ports.txt", 6, "wider than"),
    ("pool_ports.txt", 7, "duplicate of line 2"),
    ("miner_agents.txt", 3, "bad regex"),
    ("miner_agents.txt", 4, "matches the empty string"),
    ("miner_agents.txt", 5, "upper-case"),
    ("miner_agents.txt", 6, "bad miner name"),
    ("miner_agents.txt", 7, "TAB-separated"),
    ("tls_fingerprints.txt", 3, "unknown fingerprint kind 'ja5'"),
    ("tls_fingerprints.txt", 4, "bad JA3 hash"),
    ("tls_fingerprints.txt", 5, "bad JA4 fingerprint"),
    ("tls_fingerprints.txt", 6, "bad weight '101'"),
    ("tls_fingerprints.txt", 7, "empty label"),
    ("pool_ips.txt", 3, "host bits set"),
    ("pool_ips.txt", 4, "not an address or network"),
    ("pool_ips.txt", 5, "unknown category 'miner'"),
    ("pool_ips.txt", 6, "bad port 'x'"),
    ("pool_ips.txt", 7, "IPv4-mapped"),
    ("allow_ips.txt", 2, "not an address or network"),
    ("web_ports.txt", 1, "missing '#' header"),
    ("imported/junk.txt", 0, "unknown imported file"),
]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, **BROKEN)
    errors = check_signatures(sigs)
    for name, line, fragment in EXPECTED:
        prefix = f"{sigs / name}:{line}: "
        hits = [e for e in errors if e.startswith(prefix) and fragment in e]
        assert hits, f"no error {prefix}...{fragment} in:\n" + "\n".join(errors)
    # Nothing else: the good lines of each broken file raise no error.
    assert len(errors) == len(EXPECTED), "\n".join(errors)
    with pytest.raises(SignatureLoadError) as info:
        load_intel(sigs)
    assert list(info.value.errors) == errors
    assert str(info.value).startswith(f"{sigs / 'pool_domains.txt'}:3: ")
    assert isinstance(info.value, SignatureError)


def test_file_level_errors(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path)
    (sigs / "miner_agents.txt").unlink()
    (sigs / "pool_domain.txt").write_text(HEADER)  # a typo of pool_domains.txt
    (sigs / "pool_ports.txt").write_bytes(b"# header\n3333\tok\n\xff\xfe\tbad\n")
    errors = check_signatures(sigs)
    assert f"{sigs / 'miner_agents.txt'}:0: missing required signature file" in errors
    typo = f"{sigs / 'pool_domain.txt'}:0: unknown signature file"
    assert any(e.startswith(typo) for e in errors)
    assert any(e.startswith(f"{sigs / 'pool_ports.txt'}:3: not UTF-8") for e in errors)
    nowhere = tmp_path / "nowhere"
    assert check_signatures(nowhere) == [f"{nowhere}:0: not a signatures directory"]


def test_compile_reports_address_errors(tmp_path: Path) -> None:
    sigs = make_sigs(tmp_path, pool_ips_txt=HEADER + "192.0.2.1/24\tpool\t-\tx\n")
    with pytest.raises(SignatureLoadError, match=r"pool_ips\.txt:2: network .* host bits"):
        compile_signatures(sigs)


# --- the empty Intel and robustness ---------------------------------------------------------


def test_empty_intel() -> None:
    empty = Intel.empty()
    assert empty.match_domain("supportxmr.com") is None
    assert empty.match_ip("198.51.100.7") is None
    assert empty.match_agent("XMRig/6.16.0") is None
    assert empty.match_tls(XMRIG_JA3, XMRIG_JA4) is None
    assert not empty.is_pool_port(3333)
    assert not empty.is_web_port(443)
    assert empty.enrich("198.51.100.7") is None
    assert empty.counts() == {}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_lookups_never_raise_on_arbitrary_text(text: str) -> None:
    intel = _SHARED.get()
    match = intel.match_domain(text)
    if match is not None:
        norm = text.removesuffix(".").lower()
        if norm.isascii():
            assert norm == match.domain or norm.endswith("." + match.domain)
    intel.match_agent(text)
    intel.match_ip(text)
    intel.match_tls(text, text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=4
    ).map(".".join)
)
def test_any_name_below_a_listed_domain_matches(prefix: str) -> None:
    intel = _SHARED.get()
    match = intel.match_domain(f"{prefix}.supportxmr.com")
    assert match is not None
    assert match.domain == "supportxmr.com"
    assert intel.match_domain(f"{prefix}supportxmr.com") is None


class _Shared:
    """One loaded Intel for hypothesis tests (fixtures do not mix with @given)."""

    def __init__(self) -> None:
        self._intel: Intel | None = None

    def get(self) -> Intel:
        if self._intel is None:
            self._intel = load_intel(REPO_SIGS)
        return self._intel


_SHARED = _Shared()


def test_maxminddb_c_extension_is_used(tmp_path: Path) -> None:
    # Lookups in the hot path rely on the C reader; the pure-Python one is ~20x slower.
    sigs = make_sigs(tmp_path, pool_ips_txt=POOL_IPS)
    path = compile_signatures(sigs)
    reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    assert type(reader).__module__ == "maxminddb.extension"
    reader.close()


# --- numbers are ASCII digits only ----------------------------------------------------------

UNICODE_DIGITS = {
    "pool_ports_txt": HEADER + "3333\tfine\n" + "²\tsuperscript two\n" + "3³33-4000\trange\n",
    "tls_fingerprints_txt": HEADER + f"ja3\t{XMRIG_JA3}\tlabel\t²\n"
    + "ja4\tt13i\u0663\u06610900_e8f1e7e78f70_5ac7197df9d2\tlabel\t10\n",
    "pool_ips_txt": HEADER + "198.51.100.2\tpool\t3333,²\tunicode port\n",
}


def test_unicode_digits_are_errors_with_a_line_not_tracebacks(tmp_path: Path) -> None:
    # '²'.isdigit() is True and int('²') raises: each must be a path:line error, all at once.
    sigs = make_sigs(tmp_path, **UNICODE_DIGITS)
    errors = check_signatures(sigs)
    for name, line, fragment in [
        ("pool_ports.txt", 3, "bad port '²'"),
        ("pool_ports.txt", 4, "bad port '3³33-4000'"),
        ("tls_fingerprints.txt", 2, "bad weight '²'"),
        ("tls_fingerprints.txt", 3, "bad JA4 fingerprint"),
        ("pool_ips.txt", 2, "bad port '²'"),
    ]:
        prefix = f"{sigs / name}:{line}: "
        assert any(e.startswith(prefix) and fragment in e for e in errors), (prefix, errors)
    with pytest.raises(SignatureError, match=r"pool_ports\.txt:3: bad port"):
        load_intel(sigs)
