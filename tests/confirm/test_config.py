"""Config and inventory loading: values, defaults, and every error carrying path:line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netdetect.config import load_agent_config, load_sensor_config
from netdetect.errors import ConfigError
from netdetect.hosts import Inventory

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def errors_of(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return str(exc.value).splitlines()


def write_cert(path: Path, cn: str) -> None:
    """A self-signed PEM certificate whose subject CN is `cn` (only the CN is read here)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("ca.crt", "c.key", "sign.key", "sign.pub"):
        (tmp_path / name).write_text("x")
    write_cert(tmp_path / "c.crt", "host:web-01")
    write_cert(tmp_path / "s.crt", "sensor:sensor-1")
    for name in ("c.key", "sign.key"):
        (tmp_path / name).chmod(0o600)
    return tmp_path


AGENT = """\
[agent]
host_id = "web-01"
trusted_keys = ["sign.pub"]

[mqtt]
host = "broker"
ca = "ca.crt"
cert = "c.crt"
key = "c.key"
"""


def test_agent_config_defaults_and_relative_paths(files: Path) -> None:
    path = files / "agent.toml"
    path.write_text(AGENT)
    cfg = load_agent_config(path)
    assert cfg.host_id == "web-01"
    assert cfg.trusted_keys == (files / "sign.pub",)
    assert cfg.mqtt.port == 8883
    assert cfg.mqtt.ca == files / "ca.crt"
    assert cfg.max_concurrent == 32
    assert cfg.clock_skew == 30.0


def test_toml_syntax_error_has_the_parser_line(files: Path) -> None:
    path = files / "agent.toml"
    path.write_text(AGENT.replace('host = "broker"', "host = broker"))
    with pytest.raises(ConfigError) as exc:
        load_agent_config(path)
    assert errors_of(exc) == [f"{path}:6: Invalid value"]


def test_schema_errors_point_at_the_key_and_are_all_reported(files: Path) -> None:
    path = files / "agent.toml"
    text = AGENT.replace('host_id = "web-01"', 'host_id = "web/01"\nmax_concurrent = "two"')
    text = text.replace('key = "c.key"', 'key = "missing.key"\nport = 70000\ncolour = "blue"')
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_agent_config(path)
    errs = errors_of(exc)
    lines = path.read_text().splitlines()
    for err in errs:
        m = re.match(rf"{re.escape(str(path))}:(\d+): ", err)
        assert m, err
    by_key = {e.split(": ", 2)[1]: int(e.split(":")[1]) for e in errs}
    for key, text_start in [("agent.host_id", "host_id"), ("agent.max_concurrent", "max_conc"),
                            ("mqtt.key", "key ="), ("mqtt.port", "port"),
                            ("mqtt.colour", "colour")]:
        assert lines[by_key[key] - 1].startswith(text_start), (key, by_key)
    assert len(errs) == 5


def test_missing_required_table_and_key(files: Path) -> None:
    path = files / "agent.toml"
    path.write_text('[agent]\nhost_id = "h"\n')
    with pytest.raises(ConfigError) as exc:
        load_agent_config(path)
    errs = errors_of(exc)
    assert f"{path}:1: agent.trusted_keys: missing required key" in errs
    assert any(e.startswith(f"{path}:") and "mqtt: missing required table" in e for e in errs)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml:0: cannot read"):
        load_sensor_config(tmp_path / "nope.toml")


def test_booleans_are_not_numbers(files: Path) -> None:
    path = files / "agent.toml"
    path.write_text(AGENT + "port = true\n")
    with pytest.raises(ConfigError, match=r"agent\.toml:10: mqtt\.port: expected an integer"):
        load_agent_config(path)


def test_sensor_config_full(files: Path) -> None:
    path = files / "sensor.toml"
    path.write_text(f"""\
[sensor]
id = "sensor-1"

[mqtt]
host = "broker"
ca = "ca.crt"
cert = "s.crt"
key = "c.key"

[confirm]
signing_key = "sign.key"
timeout = 4

[alerts]
mqtt = true

[allowlist]
tags = ["lab"]
sha256 = ["{"AB" * 32}"]
pool_domains = [".Pool.Example."]
""")
    cfg = load_sensor_config(path)
    assert cfg.confirm is not None
    assert cfg.confirm.timeout == 4.0
    assert cfg.alerts.mqtt
    assert cfg.allowlist.tags == frozenset({"lab"})
    assert cfg.allowlist.sha256 == frozenset({"ab" * 32})
    assert cfg.allowlist.pool_domains == ("pool.example",)
    assert cfg.correlate.cpu_threshold == 50.0
    assert (cfg.confirm.ask_threshold, cfg.confirm.ask_per_host, cfg.confirm.ask_budget,
            cfg.confirm.ask_period) == (25, 4, 60, 60.0)
    assert (cfg.correlate.confirm_score, cfg.correlate.ask_confirm_score) == (30, 50)
    path.write_text(path.read_text().replace("timeout = 4\n", "timeout = 4\nask_threshold = 0\n"
                                             "ask_per_host = 1\n[correlate]\n"
                                             "ask_confirm_score = 80\n"))
    cfg = load_sensor_config(path)
    assert cfg.confirm is not None
    assert (cfg.confirm.ask_threshold, cfg.confirm.ask_per_host) == (0, 1)
    assert cfg.correlate.ask_confirm_score == 80
    path.write_text(path.read_text().replace("ask_threshold = 0", "ask_threshold = 101"))
    with pytest.raises(ConfigError, match=r"confirm\.ask_threshold"):
        load_sensor_config(path)


def test_sensor_config_cross_checks(files: Path) -> None:
    path = files / "sensor.toml"
    path.write_text("""\
[sensor]
id = "sensor-1"

[confirm]
signing_key = "sign.key"
timeout = 1.0
cpu_window = 2.0

[alerts]
mqtt = true
topic = "netdetect/#"

[allowlist]
sha256 = ["zz"]
exes = ["xmrig"]
""")
    with pytest.raises(ConfigError) as exc:
        load_sensor_config(path)
    errs = errors_of(exc)
    assert f"{path}:4: confirm: host confirmation needs an [mqtt] table" in errs
    assert f"{path}:7: confirm.cpu_window: must be shorter than confirm.timeout" in errs
    assert f"{path}:10: alerts.mqtt: publishing alerts over MQTT needs an [mqtt] table" in errs
    assert f"{path}:11: alerts.topic: must be a topic name without wildcards" in errs
    assert f"{path}:14: allowlist.sha256[0]: 'zz' is not a SHA-256 hex digest" in errs
    assert f"{path}:15: allowlist.exes[0]: 'xmrig' is not an absolute path" in errs


def test_shipped_samples_only_miss_their_files() -> None:
    """deploy/*.toml are valid apart from the PKI files an installation provides."""
    for loader, name in ((load_sensor_config, "sensor.toml"), (load_agent_config, "agent.toml")):
        path = DEPLOY / name
        with pytest.raises(ConfigError) as exc:
            loader(path)
        errs = errors_of(exc)
        assert errs
        assert all(e.startswith(f"{path}:") and e.endswith("does not exist") for e in errs), errs
    inv = Inventory.load(DEPLOY / "inventory.toml")
    assert len(inv) == 4


def test_inventory_errors_carry_lines(tmp_path: Path) -> None:
    path = tmp_path / "inventory.toml"
    path.write_text("""\
[[host]]
id = "a"
addresses = ["10.0.0.1"]

[[host]]
id = "b"
addresses = ["10.0.0.1"]

[[host]]
id = "c"
addresses = ["10.0.0.300"]
role = "web"

[[host]]
id = "a"
addresses = ["10.1.0.0/16"]
""")
    with pytest.raises(ConfigError) as exc:
        Inventory.load(path)
    errs = errors_of(exc)
    assert errs == [
        f"{path}:7: host[1].addresses: 10.0.0.1 already belongs to a",
        f"{path}:12: host[2].role: unknown key",
        (f"{path}:11: host[2].addresses: '10.0.0.300' does not appear to be an IPv4 or IPv6 "
        "network"),
        f"{path}:16: host[3].addresses: duplicate host id 'a'",
    ]


def test_private_keys_readable_by_others_are_refused(files: Path) -> None:
    (files / "c.key").chmod(0o644)
    (files / "sign.key").chmod(0o640)
    path = files / "agent.toml"
    path.write_text(AGENT)
    with pytest.raises(ConfigError) as exc:
        load_agent_config(path)
    want = (f"{path}:9: mqtt.key: {files / 'c.key'} is readable by group or others "
            "(mode 0644); run chmod 600 on it")
    assert errors_of(exc) == [want]
    sensor = files / "sensor.toml"
    sensor.write_text('[sensor]\nid = "sensor-1"\n\n[mqtt]\nhost = "b"\nca = "ca.crt"\n'
                      'cert = "s.crt"\nkey = "c.key"\n\n[confirm]\nsigning_key = "sign.key"\n')
    with pytest.raises(ConfigError) as exc:
        load_sensor_config(sensor)
    assert [e.split(": ", 2)[1] for e in errors_of(exc)] == ["mqtt.key", "confirm.signing_key"]


def test_agent_root_is_relative_to_the_config_and_must_exist(files: Path) -> None:
    (files / "tree").mkdir()
    path = files / "agent.toml"
    path.write_text(AGENT.replace('trusted_keys = ["sign.pub"]',
                                  'trusted_keys = ["sign.pub"]\nroot = "tree"'))
    assert load_agent_config(path).root == str(files / "tree")
    path.write_text(AGENT.replace('trusted_keys = ["sign.pub"]',
                                  'trusted_keys = ["sign.pub"]\nroot = "missing"'))
    with pytest.raises(ConfigError) as exc:
        load_agent_config(path)
    assert errors_of(exc) == [f"{path}:4: agent.root: {files / 'missing'} does not exist"]


def test_client_certificate_must_carry_the_role_and_id_the_acl_expects(files: Path) -> None:
    """The broker ACL gives host rights to CN host:<id> and sensor rights to sensor:<id>; a
    certificate for another role or id (or one made before roles were in the CN) would only
    show up as refused subscriptions, so the config loader names it."""
    path = files / "agent.toml"
    for cn in ("web-01", "host:db-01", "sensor:web-01"):
        write_cert(files / "c.crt", cn)
        path.write_text(AGENT)
        with pytest.raises(ConfigError) as exc:
            load_agent_config(path)
        want = (f"{path}:8: mqtt.cert: {files / 'c.crt'} is issued to CN {cn!r}, but the broker "
                "ACL gives this id's rights only to CN 'host:web-01' "
                "(deploy/make-pki.sh issues it)")
        assert errors_of(exc) == [want]
    write_cert(files / "c.crt", "host:web-01")
    assert load_agent_config(path).host_id == "web-01"
    sensor = files / "sensor.toml"
    sensor.write_text('[sensor]\nid = "sensor-1"\n\n[mqtt]\nhost = "b"\nca = "ca.crt"\n'
                      'cert = "c.crt"\nkey = "c.key"\n')
    with pytest.raises(ConfigError, match=r"issued to CN 'host:web-01'.*'sensor:sensor-1'"):
        load_sensor_config(sensor)
    (files / "c.crt").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"mqtt\.cert: .*c\.crt is not a PEM certificate"):
        load_sensor_config(sensor)
