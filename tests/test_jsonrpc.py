"""Tests for JSON-RPC dialect classification: all dialects, hard negatives, hostile JSON, corpus."""

from __future__ import annotations

import collections
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from coreparse import HttpDecoder
from test_tls import tcp_directions

from netdetect.decoders.events import HttpMessage, StratumMessage
from netdetect.decoders.jsonrpc import MAX_DEPTH, MAX_TEXT, classify, parse_json_messages
from netdetect.decoders.stratum import LineDecoder
from netdetect.errors import DecodeError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def one(line: str | bytes) -> StratumMessage:
    raw = line.encode() if isinstance(line, str) else line
    msgs = parse_json_messages(raw)
    assert len(msgs) == 1, msgs
    return msgs[0]


# --- Stratum v1 -------------------------------------------------------------------------------


def test_v1_subscribe_spaced_json_from_cpuminer() -> None:
    m = one('{"id": 1, "method": "mining.subscribe", "params": []}')
    assert (m.dialect, m.kind, m.method, m.msg_id) == (
        "stratum-v1",
        "request",
        "mining.subscribe",
        "1",
    )
    assert m.mining
    assert m.client_side is True
    assert m.agent is None


@pytest.mark.parametrize(
    ("line", "agent", "host"),
    [
        (
            '{"id":1,"method":"mining.subscribe","params":["cgminer/4.10.0"]}',
            "cgminer/4.10.0",
            None,
        ),
        (
            '{"id": 1, "method": "mining.subscribe", "params": ["bfgminer/5.2.0", "1a2b"]}',
            "bfgminer/5.2.0",
            None,
        ),
        (
            (
                '{"id":1,"method":"mining.subscribe",'
                '"params":["EWBF 0.3.4b",null,"eu1-zcash.example.org","3333"]}'
            ),
            "EWBF 0.3.4b",
            "eu1-zcash.example.org",
        ),
    ],
)
def test_v1_subscribe_agent_and_host(line: str, agent: str, host: str | None) -> None:
    m = one(line)
    assert m.dialect == "stratum-v1"
    assert m.mining
    assert m.client_side is True
    assert m.agent == agent
    assert m.host == host


def test_v1_authorize_splits_wallet_and_worker() -> None:
    m = one('{"id":2,"method":"mining.authorize","params":["t1fAhZF5aUJdY7CikGULHmeYk.rig4","x"]}')
    assert m.mining
    assert m.client_side is True
    assert (m.login, m.worker, m.password) == ("t1fAhZF5aUJdY7CikGULHmeYk", "rig4", "x")


def test_v1_authorize_user_without_worker_and_email_login() -> None:
    assert one('{"id":2,"method":"mining.authorize","params":["alice","pw"]}').login == "alice"
    m = one('{"id":2,"method":"mining.authorize","params":["ops@example.com","pw"]}')
    assert (m.login, m.worker) == ("ops@example.com", None)


def test_v1_submit_and_notify_carry_job_id() -> None:
    sub = one(
        '{"params": ["slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"], "id": 4, '
        '"method": "mining.submit"}'
    )
    assert sub.mining
    assert sub.client_side is True
    assert (sub.job_id, sub.login, sub.worker) == ("bf", "slush", "miner1")
    notify = one(
        '{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",'
        '"01000000010000", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64'
        'a7a9688ef9903327048ed988ac00000000",'
        '[], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}'
    )
    assert (notify.dialect, notify.kind, notify.job_id) == ("stratum-v1", "notification", "bf")
    assert notify.mining
    assert notify.client_side is False
    assert notify.msg_id is None


def test_v1_difficulty_target_and_pool_pushes() -> None:
    d = one('{"id":null,"method":"mining.set_difficulty","params":[65536]}')
    assert d.difficulty == 65536.0
    assert d.client_side is False
    assert d.mining
    t = one(
        '{"id":null,"method":"mining.set_target","params":["0004189374bc6a7ef9db22d0e5604189"]}'
    )
    assert t.target == "0004189374bc6a7ef9db22d0e5604189"
    assert t.mining
    assert t.client_side is False
    for line, side in [
        ('{"id":null,"method":"client.show_message","params":["Authorised, welcome"]}', False),
        ('{ "id": 9876, "method": "client.get_version", "params": []}', False),
        ('{"id":null,"method":"client.reconnect","params":["pool.example.org",3333,0]}', False),
        ('{"id":null,"method":"mining.set_extranonce","params":["08000002",4]}', False),
        ('{"id":3,"method":"mining.extranonce.subscribe","params":[]}', True),
        ('{"id":5,"method":"mining.configure","params":[["version-rolling"],{}]}', True),
        ('{"id":6,"method":"mining.suggest_difficulty","params":[1024]}', True),
        ('{"id":7,"method":"mining.suggest_target","params":["00000000ffff"]}', True),
        (
            '{"params": ["274d-13"], "id": "txlist274d-13", "method": "mining.get_transactions"}',
            True,
        ),
        ('{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}', False),
        ('{"id":8,"method":"mining.multi_version","params":[4]}', True),
        ('{"params":[],"id":42,"method":"mining.ping"}', None),
        ('{"id":null,"method":"client.add_peers","params":[["10.0.0.1",3333]]}', False),
    ]:
        m = one(line)
        assert m.dialect == "stratum-v1", line
        assert m.mining, line
        assert m.client_side is side, line


def test_v1_subscribe_result_is_pool_side_mining() -> None:
    m = one(
        '{"id":1,"result":[[["mining.set_difficulty","b4b6693b"],["mining.notify","ae6812eb"]],'
        '"08000002",4],"error":null}'
    )
    assert (m.dialect, m.kind, m.mining, m.client_side) == ("stratum-v1", "response", True, False)


def test_plain_true_result_and_error_are_generic() -> None:
    ok = one('{"id":2,"result":true,"error":null}')
    assert (ok.dialect, ok.kind, ok.mining, ok.client_side) == ("jsonrpc", "response", False, None)
    err = one('{"id":4,"result":null,"error":[21,"Job not found",null]}')
    assert (err.kind, err.mining) == ("error", False)


# --- CryptoNote -------------------------------------------------------------------------------

XMRIG_LOGIN = (
    '{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4BMDGDu8KXcgGAchjZ1wJ2vY",'
    '"pass":"x","agent":"XMRig/6.16.0 (Linux x86_64) libuv/1.42.0 gcc/9.3.0","rigid":"lab01",'
    '"algo":["cn/0","cn/r","rx/0","rx/wow"],"algo-perf":{"rx/0":100.0}}}'
)


def test_cryptonote_login_facts() -> None:
    m = one(XMRIG_LOGIN)
    assert (m.dialect, m.kind, m.method, m.msg_id) == ("cryptonote", "request", "login", "1")
    assert m.mining
    assert m.client_side is True
    assert m.agent == "XMRig/6.16.0 (Linux x86_64) libuv/1.42.0 gcc/9.3.0"
    assert (m.login, m.password, m.worker) == ("4BMDGDu8KXcgGAchjZ1wJ2vY", "x", "lab01")
    assert m.algos == ("cn/0", "cn/r", "rx/0", "rx/wow")


def test_cryptonote_login_older_agents_and_algo_perf_only() -> None:
    m = one(
        '{"method":"login","params":{"login":"47mr7j","pass":"x","agent":"xmr-stak-cpu/1.3.0-1.5.0"},"id":1}'
    )
    assert m.agent == "xmr-stak-cpu/1.3.0-1.5.0"
    assert m.mining
    m = one(
        '{"method": "login", "params": {"login": "47mr7j", "pass": "x", '
        '"agent": "xmr/1.0"}, "id": 1}'
    )
    assert m.agent == "xmr/1.0"
    m = one('{"id":1,"method":"login","params":{"login":"w","pass":"x","algo-perf":{"cn/r":1.0}}}')
    assert m.algos == ("cn/r",)


def test_cryptonote_login_result_and_job_push() -> None:
    res = one(
        '{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"7816b31b","job":{"blob":"1010d7c0a9",'
        '"job_id":"FYYd4vnV","target":"0d74da00","algo":"rx/0","height":3300003,'
        '"seed_hash":"b8bd6f15"},"extensions":["algo","nicehash","connect","tls","keepalive"],"status":"OK"}}'
    )
    assert (res.dialect, res.kind, res.mining, res.client_side) == (
        "cryptonote",
        "response",
        True,
        False,
    )
    assert (res.job_id, res.target, res.algos) == ("FYYd4vnV", "0d74da00", ("rx/0",))
    job = one(
        '{"jsonrpc":"2.0","method":"job","params":{"blob":"0405efe1f3","job_id":"6775","target":"69ba0000"}}'
    )
    assert (job.kind, job.client_side, job.job_id, job.target) == (
        "notification",
        False,
        "6775",
        "69ba0000",
    )
    getjob_res = one('{"id":5,"jsonrpc":"2.0","result":{"blob":"0405","job_id":"9","target":"ff"}}')
    assert getjob_res.dialect == "cryptonote"
    assert getjob_res.mining


def test_cryptonote_submit_keepalived_getjob() -> None:
    sub = one(
        '{"id":2,"jsonrpc":"2.0","method":"submit","params":{"id":"7816b31b","job_id":"GiSESN",'
        '"nonce":"24000000","result":"fb1531","algo":"rx/0"}}'
    )
    assert (sub.dialect, sub.job_id, sub.client_side, sub.mining) == (
        "cryptonote",
        "GiSESN",
        True,
        True,
    )
    ka = one('{"id":3,"jsonrpc":"2.0","method":"keepalived","params":{"id":"7816b31b"}}')
    assert ka.dialect == "cryptonote"
    assert ka.mining
    assert ka.client_side is True
    gj = one('{"id":4,"jsonrpc":"2.0","method":"getjob","params":{"id":"7816b31b"}}')
    assert gj.dialect == "cryptonote"
    assert gj.mining


@pytest.mark.parametrize(
    "line",
    [
        '{"id":1,"method":"login","params":["user","pass"]}',  # not a CryptoNote params object
        '{"id":1,"method":"login","params":{"username":"bob","password":"x"}}',
        '{"id":1,"method":"submit","params":{"form":"contact"}}',
        '{"id":1,"method":"submit","params":["a","b","c"]}',
        '{"id":1,"method":"job","params":{"name":"backup","schedule":"daily"}}',
        '{"id":1,"method":"getjob","params":{"a":1,"b":2,"c":3,"d":4,"e":5}}',
    ],
)
def test_cryptonote_names_with_wrong_shape_are_not_mining(line: str) -> None:
    m = one(line)
    assert (m.dialect, m.mining, m.client_side) == ("jsonrpc", False, None)


# --- Ethereum ---------------------------------------------------------------------------------


def test_eth_proxy_login_with_top_level_worker() -> None:
    m = one(
        '{"worker": "eth1.0", "jsonrpc": "2.0", '
        '"params": ["0x0fccfff9e61a230ff380530c6827caf4759337c6.rig2", "x"], '
        '"id": 2, "method": "eth_submitLogin"}'
    )
    assert (m.dialect, m.mining, m.client_side) == ("eth-proxy", True, True)
    assert (m.login, m.worker, m.password) == (
        "0x0fccfff9e61a230ff380530c6827caf4759337c6",
        "eth1.0",
        "x",
    )


def test_eth_proxy_work_methods_and_getwork_result() -> None:
    for line in [
        '{"worker": "", "jsonrpc": "2.0", "params": [], "id": 3, "method": "eth_getWork"}',
        '{"id":1,"jsonrpc":"2.0","method":"eth_getWork"}',
        '{"id":4,"method":"eth_submitWork","params":["0xdd9707281644bea0","0x1069e1b5","0x11a2d31c"]}',
        '{"id":6,"jsonrpc":"2.0","method":"eth_submitHashrate","params":["0x375198a","0x0000016526810"]}',
    ]:
        m = one(line)
        assert (m.dialect, m.mining, m.client_side) == ("eth-proxy", True, True), line
    res = one(
        '{"id":1,"jsonrpc":"2.0","result":["0xd49408f639581e7c4daffd1b20ee981139ca96694a7e6460dad17a9bb45efcf6",'
        '"0x71a56feffb6f10ea9d76e1a9464eb0abd86e4349ae98fb794923a65b650282a3",'
        '"0x000000005ba03f80cf23190f76455c5b50637575fe8f983eab6727314d04c63e"]}'
    )
    assert (res.dialect, res.kind, res.mining, res.client_side) == (
        "eth-proxy",
        "response",
        True,
        False,
    )
    assert res.target == "0x000000005ba03f80cf23190f76455c5b50637575fe8f983eab6727314d04c63e"


def test_three_short_strings_result_is_not_getwork() -> None:
    m = one('{"id":1,"jsonrpc":"2.0","result":["a","b","c"]}')
    assert not m.mining
    assert m.dialect == "jsonrpc"


def test_ethereumstratum_1() -> None:
    sub = one(
        '{"id": 1, "method": "mining.subscribe", '
        '"params": ["ethminer 0.15.0", "EthereumStratum/1.0.0"]}'
    )
    assert (sub.dialect, sub.protocol, sub.agent) == (
        "ethereumstratum-1",
        "EthereumStratum/1.0.0",
        "ethminer 0.15.0",
    )
    res = one(
        '{"id": 1, "result": [["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f", '
        '"EthereumStratum/1.0.0"], '
        '"080c"], "error": null}'
    )
    assert (res.dialect, res.protocol, res.client_side) == (
        "ethereumstratum-1",
        "EthereumStratum/1.0.0",
        False,
    )
    notify = one(
        '{"id": null, "method": "mining.notify", "params": ["bf0488aa", '
        '"abad8f99f3918bf903c6a909d9bbc0fdfa5a2f4b9cb1196175ec825c6610126c", '
        '"645cf20198c2f3861e947d4f67e3ab63b7b2e24dcc9095bd9123e7b33371f6cc", true]}'
    )
    assert (notify.dialect, notify.job_id, notify.client_side) == (
        "ethereumstratum-1",
        "bf0488aa",
        False,
    )


def test_ethereumstratum_2_hello_and_gzip_result() -> None:
    hello = one(
        '{"id":0,"method":"mining.hello","params":{"agent":"ethminer-0.17","host":"pool.example.org",'
        '"port":"4d2","proto":"EthereumStratum/2.0.0"}}'
    )
    assert (hello.dialect, hello.client_side, hello.agent, hello.host, hello.protocol) == (
        "ethereumstratum-2",
        True,
        "ethminer-0.17",
        "pool.example.org",
        "EthereumStratum/2.0.0",
    )
    res = one(
        '{"id":0,"result":{"proto":"EthereumStratum/2.0.0","encoding":"gzip","resume":"1",'
        '"timeout":"b4","maxerrors":"5","node":"Geth/v1.8.18"}}'
    )
    assert (res.dialect, res.encoding, res.client_side, res.mining) == (
        "ethereumstratum-2",
        "gzip",
        False,
        True,
    )
    plain = one('{"id":0,"result":{"proto":"EthereumStratum/2.0.0","encoding":"plain"}}')
    assert plain.encoding == "plain"


def test_ethereumstratum_2_session_methods() -> None:
    cases = [
        ('{"method":"mining.bye"}', None),
        ('{"id":50,"method":"mining.noop"}', True),
        ('{"id":1,"method":"mining.subscribe","params":"s-12345"}', True),
        ('{"id":2,"method":"mining.authorize","params":["0xabc.rig1","x"]}', True),
        ('{"id":16,"method":"mining.hashrate","params":["500000","w-123"]}', True),
        (
            '{"method":"mining.hashrate","params":{"interval":60,"hr":"500000","accepted":[3692,20],"rejected":0}}',
            False,
        ),
        (
            '{"method":"mining.reconnect","params":{"host":"other.example.org","port":"d80","resume":"1"}}',
            False,
        ),
    ]
    for line, side in cases:
        m = one(line)
        assert m.mining, line
        assert m.client_side is side, line
    st = one(
        '{"method":"mining.set","params":{"epoch":"dc","target":"0112e0be826d694b2e62d01511f12a6061fbaec8bc02357593e70e52ba",'
        '"algo":"ethash","extranonce":"af4c"}}'
    )
    assert (st.dialect, st.algos, st.client_side) == ("ethereumstratum-2", ("ethash",), False)
    assert st.target == "0112e0be826d694b2e62d01511f12a6061fbaec8bc02357593e70e52ba"
    n2 = one(
        '{"method":"mining.notify","params":["bf0488aa","6526d5","645cf20198c2f3861e947d4f67e3ab63","0"]}'
    )
    assert (n2.dialect, n2.job_id) == ("ethereumstratum-2", "bf0488aa")
    sub = one('{"id":31,"method":"mining.submit","params":["bf0488aa","68765fccd712","w-123"]}')
    assert sub.mining
    assert sub.client_side is True


# --- HTTP mining methods ----------------------------------------------------------------------


def test_getwork_and_getblocktemplate_dialects() -> None:
    gw = one('{"method": "getwork", "params": [], "id":0}')
    assert (gw.dialect, gw.mining, gw.client_side) == ("getwork", True, True)
    gw_submit = one('{"method": "getwork", "params": ["0000000109a78d37"], "id":1}')
    assert gw_submit.dialect == "getwork"
    assert gw_submit.mining
    gbt = one(
        '{"id": 0, "method": "getblocktemplate", '
        '"params": [{"capabilities": ["coinbasetxn", "workid", '
        '"coinbase/append"], "rules": ["segwit"]}]}'
    )
    assert (gbt.dialect, gbt.mining, gbt.client_side) == ("getblocktemplate", True, True)
    sb = one('{"id": 2, "method": "submitblock", "params": ["0000002001ab"]}')
    assert (sb.dialect, sb.mining) == ("getblocktemplate", True)
    work = one(
        '{"id":0,"error":null,"result":{"data":"00000001c5","target":"ffffffffffff","midstate":"ab"}}'
    )
    assert (work.dialect, work.client_side, work.target) == ("getwork", False, "ffffffffffff")
    tmpl = one(
        '{"id":0,"error":null,"result":{"previousblockhash":"000000000000","coinbasevalue":625000000,'
        '"target":"00000000ffff","bits":"1d00ffff","transactions":[]}}'
    )
    assert (tmpl.dialect, tmpl.mining, tmpl.target) == ("getblocktemplate", True, "00000000ffff")


def test_getwork_with_junk_params_is_not_mining() -> None:
    assert not one('{"method":"getwork","params":[{"a":1}],"id":0}').mining
    assert not one('{"method":"getblocktemplate","params":["x"],"id":0}').mining
    assert not one('{"method":"submitblock","params":[],"id":0}').mining


# --- hard negatives ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "method"),
    [
        (
            '{"id": 0, "method": "server.version", "params": ["electrum/4.1.5", "1.4"]}',
            "server.version",
        ),
        (
            '{"jsonrpc": "1.0", "id": "curltest", "method": "getblockchaininfo", "params": []}',
            "getblockchaininfo",
        ),
        ('{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":83}', "eth_blockNumber"),
        (
            '{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x407d73d8a49eeb85d32cf465507dd71d507100c1","latest"],"id":1}',
            "eth_getBalance",
        ),
        ('{"jsonrpc": "2.0", "method": "echo", "params": ["Testing!"], "id": "ca08159b"}', "echo"),
        (
            '{"jsonrpc":"2.0","method":"zabbix.status","params":{"favobj":"timeline"},"id":3}',
            "zabbix.status",
        ),
        ('{"jsonrpc":"2.0","method":"system.listMethods","id":1}', "system.listMethods"),
        ('{"jsonrpc":"2.0","method":"mining.frobnicate","params":[],"id":1}', "mining.frobnicate"),
    ],
)
def test_hard_negatives_are_generic_jsonrpc(line: str, method: str) -> None:
    m = one(line)
    assert (m.dialect, m.method, m.mining, m.client_side) == ("jsonrpc", method, False, None)


def test_generic_result_is_not_mining() -> None:
    m = one('{"jsonrpc":"2.0","id":1,"result":{"chain":"main","blocks":840000,"headers":840000}}')
    assert (m.dialect, m.mining) == ("jsonrpc", False)


# --- hostile / odd input ----------------------------------------------------------------------


def test_invalid_json_raises_with_cause() -> None:
    with pytest.raises(DecodeError) as info:
        parse_json_messages(b'{"id": 1, "method": ')
    assert info.value.__cause__ is not None
    with pytest.raises(DecodeError):
        parse_json_messages(b"")
    with pytest.raises(DecodeError):
        parse_json_messages(b"\xff\xfe{}")
    with pytest.raises(DecodeError):
        parse_json_messages(b'{"id":1,"method":"\x80"}')  # invalid UTF-8 inside a string


def test_deep_nesting_is_capped() -> None:
    fine = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json_messages(fine) == []
    deep = b'{"id":1,"method":"x","params":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(DecodeError, match="nests deeper"):
        parse_json_messages(deep)
    # Brackets inside strings are not nesting.
    text = b'{"id":1,"method":"echo","params":["' + b"[" * 200 + b'"]}'
    assert parse_json_messages(text)[0].method == "echo"


def test_huge_numbers_are_held() -> None:
    m = one(
        '{"id":' + "9" * 5000 + ',"method":"mining.set_difficulty","params":[' + "9" * 400 + "]}"
    )
    assert m.method == "mining.set_difficulty"
    assert m.difficulty is None  # beyond float range: no usable difficulty, but no crash
    assert m.msg_id == "<huge>" or (m.msg_id is not None and len(m.msg_id) <= MAX_TEXT)
    m = one('{"id":1,"method":"mining.set_difficulty","params":[1e999]}')
    assert m.difficulty is None
    m = one('{"id":123456789012345678901234567890,"result":true}')
    assert m.msg_id == "123456789012345678901234567890"


def test_non_dict_values_and_non_string_methods() -> None:
    assert parse_json_messages(b"42") == []
    assert parse_json_messages(b'"mining.subscribe"') == []
    assert parse_json_messages(b"null") == []
    assert parse_json_messages(b'{"foo": 1}') == []
    assert parse_json_messages(b'{"id":1,"method":5,"params":[]}') == []
    assert parse_json_messages(b'{"id":1,"method":["mining.subscribe"]}') == []
    assert parse_json_messages(b'{"id":1,"method":null,"params":[]}') == []
    assert classify([1, 2]) is None
    assert classify("x") is None
    m = one('{"id":{"nested":1},"method":"mining.subscribe","params":[123]}')
    assert m.msg_id is None
    assert m.agent is None
    assert m.kind == "notification"


def test_long_strings_are_clipped() -> None:
    m = one('{"id":1,"method":"mining.subscribe","params":["' + "A" * 10000 + '"]}')
    assert m.agent is not None
    assert len(m.agent) == MAX_TEXT


def test_batch_array() -> None:
    msgs = parse_json_messages(
        b'[{"id":1,"method":"getblocktemplate","params":[]},{"id":2,"method":"getblockcount"},'
        b'7,{"id":3,"result":true}]'
    )
    assert [(m.method, m.mining) for m in msgs] == [
        ("getblocktemplate", True),
        ("getblockcount", False),
        (None, False),
    ]


def test_msgspec_and_json_paths_agree_on_facts() -> None:
    # The fallback parser (taken for >64-bit ints) must classify identically.
    base = json.loads(XMRIG_LOGIN)
    base["id"] = 10**30
    a = one(json.dumps(base))
    b = one(XMRIG_LOGIN)
    assert (a.login, a.agent, a.algos, a.worker) == (b.login, b.agent, b.algos, b.worker)


# --- corpus: every labelled method is classified mining; benign files carry none -------------


def tcp_streams(path: Path) -> dict[tuple[str, int, str, int], bytes]:
    """Each TCP direction of a capture, reassembled by sequence number, retransmissions dropped
    (one entry per 4-tuple: a reused 4-tuple's connections are joined)."""
    out: dict[tuple[str, int, str, int], bytes] = {}
    for d in tcp_directions(path):
        key = (d.src, d.sport, d.dst, d.dport)
        out[key] = out.get(key, b"") + d.data
    return out


def decode_stream(data: bytes, chunk: int = 1460) -> list[StratumMessage]:
    """Run a reassembled direction through the decoder its first bytes call for."""
    start = data.lstrip()[:5]
    dec: LineDecoder | HttpDecoder
    if start[:1] in (b"{", b"["):
        dec = LineDecoder()
    elif start[:4] in (b"POST", b"GET ", b"HTTP"):
        dec = HttpDecoder()
    else:
        return []
    events = []
    try:
        for i in range(0, len(data), chunk):
            events += dec.feed(data[i : i + chunk])
    except DecodeError:
        pass
    events += dec.close()
    msgs: list[StratumMessage] = []
    for ev in events:
        if isinstance(ev, HttpMessage):
            msgs.extend(ev.rpc)
        elif isinstance(ev, StratumMessage):
            msgs.append(ev)
    return msgs


@cache
def labels() -> dict[str, Any]:
    path = CORPUS / "labels.json"
    assert path.is_file(), f"corpus missing at {CORPUS}"
    files: dict[str, Any] = json.loads(path.read_text())["files"]
    return files


MINING_FILES = [
    "ndpi__ethereum_2018.pcap",
    "ndpi__mining.pcapng",
    "nesfit__cgminer.g0.pcapng",
    "nesfit__cgminer.s0.pcapng",
    "nesfit__cgminer.s1.pcapng",
    "nesfit__eth-eu1.nanopool.org.pcapng",
    "nesfit__pool.eth.pp.ua.pcapng",
    "nesfit__xmr-eu1.nanopool.org.pcapng",
    "nesfit__zec-eu.suprnova.cc.pcapng",
    "zeekcm__bitcoin-mining.pcap",
    "zeekcm__coinhive-stratum.pcap",
    "lab__xmrig-plain.pcap",
]


@pytest.mark.corpus
@pytest.mark.parametrize("name", MINING_FILES)
def test_corpus_method_counts_are_all_mining(name: str) -> None:
    label = labels()[f"mining/{name}"]
    mining: collections.Counter[str] = collections.Counter()
    other: collections.Counter[str] = collections.Counter()
    for data in tcp_streams(CORPUS / "mining" / name).values():
        for m in decode_stream(data):
            if m.method is not None:
                (mining if m.mining else other)[m.method] += 1
    assert dict(mining) == label["method_counts"]
    assert not other, f"mining methods classified as generic: {other}"


@pytest.mark.corpus
def test_corpus_pool_results_are_recognised() -> None:
    # The CryptoNote login result and eth_getWork results are pool-side mining facts.
    streams = tcp_streams(CORPUS / "mining" / "nesfit__xmr-eu1.nanopool.org.pcapng")
    results = [m for d in streams.values() for m in decode_stream(d) if m.kind == "response"]
    assert any(m.dialect == "cryptonote" and m.mining and m.job_id for m in results)
    streams = tcp_streams(CORPUS / "mining" / "nesfit__pool.eth.pp.ua.pcapng")
    results = [m for d in streams.values() for m in decode_stream(d) if m.kind == "response"]
    assert sum(1 for m in results if m.dialect == "eth-proxy" and m.client_side is False) >= 30


@pytest.mark.corpus
def test_corpus_benign_files_have_no_mining_messages() -> None:
    benign = sorted(k for k in labels() if k.startswith("benign/"))
    assert len(benign) >= 30
    seen_generic = collections.Counter[str]()
    for key in benign:
        for data in tcp_streams(CORPUS / key).values():
            for m in decode_stream(data):
                assert not m.mining, (key, m)
                if m.method:
                    seen_generic[m.method] += 1
    # The JSON-RPC hard negative is seen and left alone.
    assert seen_generic["zabbix.status"] == 1
    assert seen_generic["echo"] == 1
