"""Tests for the importers of public pool lists, run on the real lists in ../shared/lists."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdetect.errors import SignatureError
from netdetect.intel import check_signatures, load_intel
from netdetect.intel.formats import FORMATS
from netdetect.intel.importers import _PARSERS, ImportResult, _Collector, import_list

REPO_SIGS = Path(__file__).resolve().parents[1] / "signatures"
LISTS = Path(__file__).resolve().parents[1].parent / "shared" / "lists"
TODAY = dt.date(2025, 1, 31)


def _manifest_entries() -> dict[str, int]:
    """file name -> the leading entry count in MANIFEST.md's table."""
    manifest = LISTS / "MANIFEST.md"
    assert manifest.is_file(), f"list samples missing: {manifest}"
    counts: dict[str, int] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 8 and (LISTS / cells[1]).is_file():
            m = re.match(r"(\d+)", cells[7])
            if m:
                counts[cells[1]] = int(m.group(1))
    return counts


MANIFEST = _manifest_entries()


@pytest.fixture
def sigs(tmp_path: Path) -> Path:
    dest = tmp_path / "sigs"
    shutil.copytree(REPO_SIGS, dest, ignore=shutil.ignore_patterns("*.mmdb", "imported"))
    return dest


def run(fmt: str, name: str, sigs: Path) -> ImportResult:
    src = LISTS / name
    assert src.is_file(), f"list sample missing: {src}"
    result = import_list(fmt, src, sigs, today=TODAY)
    # Every accepted indicator is new, a duplicate, or merged into an earlier one.
    assert result.entries == result.added + result.duplicates + result.merged
    assert result.mmdb == sigs / "pool_ips.mmdb"
    assert result.mmdb.is_file()
    assert check_signatures(sigs) == []
    return result


def test_manifest_was_read() -> None:
    assert MANIFEST["maltrail__crypto_mining.txt"] == 1185
    assert len(MANIFEST) >= 14


def test_maltrail(sigs: Path) -> None:
    r = run("maltrail", "maltrail__crypto_mining.txt", sigs)
    assert r.records == MANIFEST["maltrail__crypto_mining.txt"] == 1185
    assert r.entries == 1185
    assert r.skipped == ()
    # 739 address lines (721 IP:port + 18 bare) over fewer distinct addresses.
    assert 0 < r.networks < 739
    assert r.domains < 446
    intel = load_intel(sigs)
    supportxmr = intel.match_ip("192.110.160.114")
    assert supportxmr is not None
    assert 5555 in supportxmr.ports
    assert supportxmr.source == "imported/maltrail__crypto_mining.ips.txt"
    assert supportxmr.note.startswith("maltrail__crypto_mining.txt:")
    # A URL trail "http://185.141.25.35" yields its host.
    assert intel.match_ip("185.141.25.35") is not None
    mixed_case = intel.match_domain("minexmr.com")
    assert mixed_case is not None
    domain_lines = [
        line
        for line in (LISTS / "maltrail__crypto_mining.txt").read_text().splitlines()
        if line and not line.startswith("#") and not line[0].isdigit() and "://" not in line
    ]
    for line in domain_lines:
        assert intel.match_domain("x." + line) is not None, line


@pytest.mark.parametrize(
    "name",
    [
        "coinblockerlists__list.txt",
        "coinblockerlists__list_browser.txt",
        "coinblockerlists__list_optional.txt",
    ],
)
def test_coinblocker_domains(sigs: Path, name: str) -> None:
    r = run("coinblocker-domains", name, sigs)
    assert r.entries + len(r.skipped) == MANIFEST[name]
    assert r.duplicates == 0
    assert r.domains == r.entries
    intel = load_intel(sigs)
    first = next(
        line.strip()
        for line in (LISTS / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    match = intel.match_domain(first)
    assert match is not None
    assert match.source.startswith("imported/")


def test_coinblocker_malformed_and_idn_lines(sigs: Path) -> None:
    r = run("coinblocker-domains", "coinblockerlists__list.txt", sigs)
    skipped = {(s.line, s.text) for s in r.skipped}
    assert skipped == {
        (2049, "hashbag.cc:8688"),
        (3727, "server.com:1234"),
        (5568, "xmr.-eu1.nanopool.org"),
    }
    assert r.skipped_by_reason() == {"invalid domain": 3}
    intel = load_intel(sigs)
    # Non-ASCII names are stored in the punycode form DNS and SNI carry.
    idn = "myètherwället.com".encode("idna").decode()
    assert intel.match_domain(idn) is not None
    assert intel.match_domain("myètherwället.com") is not None


def test_coinblocker_ips(sigs: Path) -> None:
    name = "coinblockerlists__MiningServerIPList.txt"
    r = run("coinblocker-ips", name, sigs)
    assert r.networks == MANIFEST[name] == 1026
    assert r.ignored == 7  # the '#' header
    intel = load_intel(sigs)
    # pool.eth.pp.ua in the corpus: only this list has its address.
    match = intel.match_ip("88.198.15.41")
    assert match is not None
    assert match.network == "88.198.15.41/32"
    assert match.note.startswith(name + ":")
    assert intel.match_ip("178.32.196.217") is not None
    assert intel.counts()["pool_ip_db_cached"] == 1


@pytest.mark.parametrize(
    ("name", "distinct"),
    [
        ("anudeep__CoinMiner.txt", 5830),
        ("blocklistproject__crypto.txt", 1274),
        ("nocoin__hosts.txt", 313),
    ],
)
def test_hosts_files(sigs: Path, name: str, distinct: int) -> None:
    r = run("hosts", name, sigs)
    assert r.entries == MANIFEST[name]
    assert r.domains == distinct
    assert r.duplicates == MANIFEST[name] - distinct
    intel = load_intel(sigs)
    last = (LISTS / name).read_text().split()[-1]
    assert intel.match_domain(last) is not None


def test_adblock(sigs: Path) -> None:
    name = "nocoin__nocoin.txt"
    r = run("adblock", name, sigs)
    assert r.records + len(r.skipped) == MANIFEST[name] == 317
    reasons = r.skipped_by_reason()
    assert reasons["exception rule"] == 8
    assert reasons["URL pattern"] > 50
    assert reasons["wildcard host"] == 1
    texts = {s.text for s in r.skipped}
    assert "||ddns.net^*=ws://$third-party" in texts
    intel = load_intel(sigs)
    # Host rules with and without the ^ separator and $ options are imported...
    for host in ("2miners.com", "coinimp.net", "freecontent.date"):
        match = intel.match_domain(host)
        assert match is not None, host
        assert match.category == "browser-miner" or match.source == "pool_domains.txt"
    # ...URL patterns on shared hosts are not.
    assert intel.match_domain("ddns.net") is None
    assert intel.match_domain("someone.now.sh") is None
    # ||23.83.114.131^ is an address rule.
    assert intel.match_ip("23.83.114.131") is not None


def test_ndpi(sigs: Path) -> None:
    name = "ndpi__mining_hosts.txt"
    r = run("ndpi", name, sigs)
    assert r.entries == MANIFEST[name] == 246
    assert r.domains == 245
    assert r.duplicates == 1
    intel = load_intel(sigs)
    match = intel.match_domain("cnhv.co")
    assert match is not None
    assert match.category == "browser-miner"


def test_smashed_csv(sigs: Path) -> None:
    name = "smashed__pool_servers_2018-05.csv"
    r = run("smashed-csv", name, sigs)
    assert r.records == MANIFEST[name] == 431
    # 183 server names, one of which (137.74.40.81) is an address; 309 distinct addresses.
    assert r.domains == 182
    assert r.networks == 309
    intel = load_intel(sigs)
    assert intel.match_ip("137.74.40.81") is not None
    slush = intel.match_ip("52.18.177.202")
    assert slush is not None
    assert {3333, 9500} <= slush.ports
    assert "SlushPool" in slush.note
    # All of the corpus's Stratum pools but two are in this catalogue.
    for ip in ("178.32.196.217", "192.110.160.114"):
        assert intel.match_ip(ip) is not None, ip
    server = intel.match_domain("stratum_ltc.bw.com")
    assert server is not None
    assert "ports" in server.note
    text = (sigs / "imported" / "smashed__pool_servers_2018-05.ips.txt").read_text()
    assert "\n52.18.177.202\tpool\t3333,9500\t" in text


def test_takeshi_ip_list(sigs: Path) -> None:
    name = "takeshi__mining-pool-blacklist.txt"
    r = run("ip-list", name, sigs)
    assert r.entries == MANIFEST[name] == 403
    assert r.networks == 156
    assert r.duplicates == 247
    intel = load_intel(sigs)
    v6 = intel.match_ip("2a01:4f8:13b:129f::2")
    assert v6 is not None
    assert v6.network == "2a01:4f8:13b:129f::2/128"
    assert intel.match_ip("178.63.211.58") is not None


def test_allowlists(sigs: Path) -> None:
    r1 = run("allow-domains", "coinblockerlists__white_list.txt", sigs)
    r2 = run("allow-ips", "coinblockerlists__white_list_IPs.txt", sigs)
    assert r1.domains == MANIFEST["coinblockerlists__white_list.txt"] == 15
    assert r2.networks == MANIFEST["coinblockerlists__white_list_IPs.txt"] == 15
    assert r1.outputs == (sigs / "imported" / "coinblockerlists__white_list.allow_domains.txt",)
    assert r2.outputs == (sigs / "imported" / "coinblockerlists__white_list_ips.allow_ips.txt",)
    # An allowed address beats the same address imported as a pool.
    pool_list = sigs.parent / "pools.txt"
    pool_list.write_text("104.24.108.138\n45.9.20.200\n")
    import_list("ip-list", pool_list, sigs, today=TODAY)
    intel = load_intel(sigs)
    assert intel.match_ip("104.24.108.138") is None
    assert intel.counts()["allow_networks"] == 15


def test_allowlist_beats_imported_domain(sigs: Path, tmp_path: Path) -> None:
    pools = tmp_path / "pools.txt"
    pools.write_text("evil-pool.example\nhans.pr0gramm.com\n")
    import_list("coinblocker-domains", pools, sigs, today=TODAY)
    import_list("allow-domains", LISTS / "coinblockerlists__white_list.txt", sigs, today=TODAY)
    intel = load_intel(sigs)
    assert intel.match_domain("evil-pool.example") is not None
    assert intel.match_domain("hans.pr0gramm.com") is None


def test_imported_file_header(sigs: Path) -> None:
    r = run("ndpi", "ndpi__mining_hosts.txt", sigs)
    (out,) = r.outputs
    assert out == sigs / "imported" / "ndpi__mining_hosts.domains.txt"
    head = out.read_text().splitlines()[:6]
    assert head[0].startswith("# netdetect imported list, in the format of pool_domains.txt")
    assert "ndpi__mining_hosts.txt" in head[1]
    assert "format ndpi" in head[1]
    assert head[2].startswith("# Source sha256: 3eb5f7c39a62d743")
    assert head[3] == "# Imported on: 2025-01-31"


def test_malformed_lines_are_reported_not_fatal(sigs: Path, tmp_path: Path) -> None:
    src = tmp_path / "trail.txt"
    src.write_bytes(
        b"# comment\n"
        b"good-pool.example\n"  # 2
        b"45.9.20.9:3333\n"  # 3
        b"45.9.20.9:99999\n"  # 4 bad port
        b"10.0.0.1:3333\n"  # 5 private
        b"http://bad-url.example/path/x.js\n"  # 6
        b"bad..name\n"  # 7
        b"\xff\xfe\n"  # 8 not UTF-8
        b"localhost\n"  # 9 single label
        b"[2001:db8::1]:4444\n"  # 10 documentation range: not public
        b"[2a01:4f8::1]:4444\n"  # 11
        b"192.0.2.0/24\n"  # 12 documentation range
        b"1.2.3.4/24\n"  # 13 host bits
    )
    r = import_list("maltrail", src, sigs, today=TODAY)
    got = {(s.line, s.reason) for s in r.skipped}
    assert got == {
        (4, "bad port"),
        (5, "not a public address"),
        (6, "URL with path"),
        (7, "invalid domain"),
        (8, "not UTF-8"),
        (9, "single-label name"),
        (10, "not a public address"),
        (12, "not a public address"),
        (13, "host bits set"),
    }
    assert r.domains == 1
    assert r.networks == 2
    intel = load_intel(sigs)
    assert intel.match_domain("good-pool.example") is not None
    v6 = intel.match_ip("2a01:4f8::1")
    assert v6 is not None
    assert v6.ports == frozenset({4444})


def test_hosts_boilerplate_and_multi_names(sigs: Path, tmp_path: Path) -> None:
    src = tmp_path / "hosts"
    src.write_text(
        "127.0.0.1 localhost\n::1 ip6-localhost ip6-loopback\n"
        "0.0.0.0 a-pool.example b-pool.example # two names\n"
        "just-a-name.example\n"
        "not-an-address a.example\n"
    )
    r = import_list("hosts", src, sigs, today=TODAY)
    assert r.domains == 3
    assert r.ignored == 3
    assert [(s.line, s.reason) for s in r.skipped] == [(5, "not a hosts line")]


def test_reimport_replaces_and_removes_stale_files(sigs: Path, tmp_path: Path) -> None:
    src = tmp_path / "mine.txt"
    src.write_text("old-pool.example\n45.9.20.10:3333\n")
    first = import_list("maltrail", src, sigs, today=TODAY)
    assert len(first.outputs) == 2
    src.write_text("new-pool.example\n")
    second = import_list("maltrail", src, sigs, today=TODAY)
    assert second.outputs == (sigs / "imported" / "mine.domains.txt",)
    assert not (sigs / "imported" / "mine.ips.txt").exists()
    intel = load_intel(sigs)
    assert intel.match_domain("old-pool.example") is None
    assert intel.match_domain("new-pool.example") is not None
    assert intel.match_ip("45.9.20.10") is None


def test_category_override(sigs: Path, tmp_path: Path) -> None:
    src = tmp_path / "browser.txt"
    src.write_text("miner-script.example\n")
    import_list("coinblocker-domains", src, sigs, category="browser-miner", today=TODAY)
    match = load_intel(sigs).match_domain("miner-script.example")
    assert match is not None
    assert match.category == "browser-miner"
    with pytest.raises(ValueError, match="does not apply"):
        import_list("allow-domains", src, sigs, category="pool")
    with pytest.raises(ValueError, match="does not apply"):
        import_list("coinblocker-domains", src, sigs, category="miner")


def test_bad_inputs_raise(sigs: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown list format"):
        import_list("csv", LISTS / "maltrail__crypto_mining.txt", sigs)
    with pytest.raises(SignatureError, match=r"missing\.txt:0: cannot read"):
        import_list("maltrail", tmp_path / "missing.txt", sigs)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(SignatureError, match=r"bad\.csv:1: not a sMaSheD CSV"):
        import_list("smashed-csv", bad_csv, sigs)


def test_every_sample_imports_into_one_directory(sigs: Path) -> None:
    plan = [
        ("maltrail", "maltrail__crypto_mining.txt"),
        ("coinblocker-domains", "coinblockerlists__list.txt"),
        ("coinblocker-domains", "coinblockerlists__list_browser.txt"),
        ("coinblocker-domains", "coinblockerlists__list_optional.txt"),
        ("coinblocker-ips", "coinblockerlists__MiningServerIPList.txt"),
        ("allow-domains", "coinblockerlists__white_list.txt"),
        ("allow-ips", "coinblockerlists__white_list_IPs.txt"),
        ("hosts", "anudeep__CoinMiner.txt"),
        ("hosts", "blocklistproject__crypto.txt"),
        ("hosts", "nocoin__hosts.txt"),
        ("adblock", "nocoin__nocoin.txt"),
        ("ndpi", "ndpi__mining_hosts.txt"),
        ("smashed-csv", "smashed__pool_servers_2018-05.csv"),
        ("ip-list", "takeshi__mining-pool-blacklist.txt"),
    ]
    assert {fmt for fmt, _ in plan} == set(FORMATS)
    for fmt, name in plan:
        import_list(fmt, LISTS / name, sigs, today=TODAY)
    assert check_signatures(sigs) == []
    intel = load_intel(sigs)
    counts = intel.counts()
    assert counts["domains"] > 10000
    assert counts["pool_networks"] > 1500
    assert counts["pool_ip_db_cached"] == 1
    # Corpus pools (MANIFEST "Coverage"): in the lists, except the two named as missing.
    for ip in ("178.32.196.217", "88.198.15.41", "192.110.160.114"):
        assert intel.match_ip(ip) is not None, ip
    for ip in ("185.71.66.39", "91.121.222.33"):
        assert intel.match_ip(ip) is None, ip
    for name in ("authedmine.com", "coinhive.com", "bitminter.com", "pool.eth.pp.ua"):
        assert intel.match_domain(name) is not None, name
    # The curated entry keeps precedence over imported copies of the same name.
    supportxmr = intel.match_domain("supportxmr.com")
    assert supportxmr is not None
    assert supportxmr.source == "pool_domains.txt"


LINE_FORMATS = sorted(f for f in FORMATS if f != "smashed-csv")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(LINE_FORMATS), st.binary(max_size=300))
def test_parsers_survive_arbitrary_bytes(fmt: str, data: bytes) -> None:
    col = _Collector("fuzz.txt")
    _PARSERS[fmt](data, col)
    assert col.entries == (
        len(col.domains) + len(col.networks) + col.duplicates + col.merged
    )
    for skipped in col.skipped:
        assert skipped.line >= 1


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abc,;\"\n", max_size=8),
            st.from_regex(r"[a-z]{1,6}\.[a-z]{2,3}", fullmatch=True),
            st.integers(min_value=-5, max_value=70000),
            st.lists(st.ip_addresses(v=4).map(str), max_size=3),
        ),
        max_size=5,
    )
)
def test_smashed_parser_survives_odd_rows(
    rows: list[tuple[str, str, int, list[str]]],
) -> None:
    header = "pool_name,pool_url,server_fqdn,port,coin,resolved_ipv4_2018\n"
    body = "".join(
        f'"{pool}",https://x,{fqdn},{port},XMR,{";".join(ips)}\n'
        for pool, fqdn, port, ips in rows
    )
    col = _Collector("fuzz.csv")
    _PARSERS["smashed-csv"]((header + body).encode(), col)
    assert col.entries == len(col.domains) + len(col.networks) + col.duplicates + col.merged


def test_unicode_digit_ports_are_skipped_not_fatal(sigs: Path, tmp_path: Path) -> None:
    # '²'.isdigit() is True but int('²') raises ValueError: that must stay one skipped line.
    src = tmp_path / "trail.txt"
    src.write_text("good-pool.example\n45.9.20.9:²\n45.9.20.10:3333\n", encoding="utf-8")
    r = import_list("maltrail", src, sigs, today=TODAY)
    assert {(s.line, s.reason) for s in r.skipped} == {(2, "bad port")}
    assert r.networks == 1
    nd = tmp_path / "ndpi.txt"
    nd.write_text("pool-two.example\t²\n", encoding="utf-8")
    r = import_list("ndpi", nd, sigs, today=TODAY)
    assert r.domains == 0
    assert [s.line for s in r.skipped] == [1]
