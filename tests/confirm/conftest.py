"""Fixtures for host confirmation: a fresh PKI from deploy/make-pki.sh, a real Mosquitto started
from deploy/mosquitto/ on a free loopback port, agent processes, configs and suspects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from netdetect.agent.protocol import Status, decode_status
from netdetect.agent.topics import MqttSettings, status_topic
from netdetect.model import Endpoint, Evidence, MinerFacts, PoolFacts, Suspect

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MOSQUITTO = Path("/usr/sbin/mosquitto")
SENSOR = "sensor-1"
TOKEN = "0123456789abcdef"  # a sensor process's report-topic token, for hand-made queries
HOSTS = ("web-01", "db-01")
READER = "siem-forwarder"  # an alert consumer's certificate (make-pki.sh -r)


@dataclass(frozen=True)
class Pki:
    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    def cert(self, name: str) -> tuple[Path, Path]:
        """The certificate and key made for `name`: the sensor, the reader or a host id, or
        ``role:id`` (host:sensor-1 is the host certificate of a host that shares the id)."""
        role, sep, ident = name.partition(":")
        if sep:
            sub, name = f"{role}s", ident
        else:
            sub = {SENSOR: "sensors", READER: "readers"}.get(name, "hosts")
        return self.root / sub / f"{name}.crt", self.root / sub / f"{name}.key"

    @property
    def signing_key(self) -> Path:
        return self.root / "sensors" / f"{SENSOR}-signing.key"

    @property
    def signing_pub(self) -> Path:
        return self.root / "sensors" / f"{SENSOR}-signing.pub"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    subprocess.run(
        [str(DEPLOY / "make-pki.sh"), "-o", str(root), "-d", "2", "-b", "127.0.0.1",
         "-b", "localhost", "-s", SENSOR, "-r", READER, *HOSTS, SENSOR],
        check=True, capture_output=True, timeout=120,
    )
    return Pki(root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snippet_lines(workdir: Path, port: int) -> list[str]:
    """deploy/mosquitto/mosquitto.conf with only its paths and listen address moved into tmp.

    Everything that makes the broker safe (no anonymous access, TLS, client certificates, CN
    as username, the ACL file) is used exactly as shipped.
    """
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    out: list[str] = []
    for line in conf.splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            out.append(f"listener {port} 127.0.0.1")
        elif key in {"cafile", "certfile", "keyfile", "acl_file"}:
            out.append(f"{key} {workdir / line.split()[-1].rsplit('/', 1)[-1]}")
        else:
            out.append(line)
    # The broker would drop to user "mosquitto", which cannot enter pytest's private tmp dirs.
    out.append("user root")
    return out


def broker_conf(pki: Pki, workdir: Path, port: int) -> Path:
    """The shipped snippet plus what Debian's /etc/mosquitto/mosquitto.conf sets around it."""
    out = snippet_lines(workdir, port)
    out.append("persistence true")
    out.append(f"persistence_location {workdir}/")
    out.append(f"pid_file {workdir / 'mosquitto.pid'}")
    path = workdir / "mosquitto.conf"
    path.write_text("\n".join(out) + "\n")
    copy_broker_files(pki, workdir)
    return path


def copy_broker_files(pki: Pki, workdir: Path) -> None:
    for name in ("ca.crt", "broker.crt", "broker.key"):
        (workdir / name).write_bytes((pki.root / name).read_bytes())
    (workdir / "acl").write_text((DEPLOY / "mosquitto" / "acl").read_text())


def wait_port(port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"broker did not listen on port {port} within {timeout}s")


class Broker:
    """One mosquitto process under test; killed by pid, restartable on the same port."""

    def __init__(self, pki: Pki, workdir: Path) -> None:
        if not MOSQUITTO.exists():
            raise RuntimeError(f"{MOSQUITTO} is missing: install the mosquitto package")
        self.pki = pki
        self.workdir = workdir
        self.port = free_port()
        self.conf = broker_conf(pki, workdir, self.port)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"

    def start(self) -> None:
        assert self.proc is None
        log = self.log.open("ab")
        self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(self.conf)], stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        try:
            wait_port(self.port, 10)
        except RuntimeError:
            self.kill()
            raise RuntimeError(self.log.read_text(errors="replace")) from None

    def stop(self) -> None:
        """Graceful stop: mosquitto saves its persistence file (sessions, retained messages)."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
            self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: the broker's sockets stay open but nothing is read or answered, as when
        the network between it and its clients silently drops packets."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def settings(self, cn: str, **kw: float) -> MqttSettings:
        cert, key = self.pki.cert(cn)
        return MqttSettings(host="127.0.0.1", port=self.port, ca=self.pki.ca, cert=cert, key=key,
                            keepalive=10, connect_timeout=5.0, reconnect_min=0.05,
                            reconnect_max=kw.get("reconnect_max", 0.5))


@pytest.fixture
def broker(pki: Pki, tmp_path: Path) -> Iterator[Broker]:
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Broker(pki, workdir)
    b.start()
    try:
        yield b
    finally:
        b.kill()


def tls(pki: Pki, cn: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    if cn is not None:
        cert, key = pki.cert(cn)
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


@contextlib.asynccontextmanager
async def mqtt_as(broker: Broker, cn: str | None, client_id: str, *,
                  session: bool = False) -> AsyncIterator[aiomqtt.Client]:
    """A raw MQTT v5 client authenticated with `cn`'s certificate (or none); with `session`,
    the broker keeps its subscriptions and queues QoS 1 messages while it is away."""
    props = None
    if session:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
    client = aiomqtt.Client("127.0.0.1", broker.port, identifier=client_id,
                            protocol=aiomqtt.ProtocolVersion.V5, tls_context=tls(broker.pki, cn),
                            timeout=5, clean_start=not session, properties=props)
    async with client:
        yield client


async def next_message(client: aiomqtt.Client, timeout: float) -> aiomqtt.Message | None:
    try:
        return await asyncio.wait_for(anext(aiter(client.messages)), timeout)
    except TimeoutError:
        return None


async def wait_status(broker: Broker, host_id: str, pred: Callable[[Status], bool],
                      timeout: float = 15.0) -> Status:
    """Watch `host_id`'s retained status (as the sensor may) until `pred` holds."""
    async with mqtt_as(broker, SENSOR, f"{SENSOR}-watch-{os.getpid()}-{time.monotonic_ns()}") as c:
        await c.subscribe(status_topic(host_id), qos=1)
        end = time.monotonic() + timeout
        last: Status | None = None
        while time.monotonic() < end:
            msg = await next_message(c, end - time.monotonic())
            if msg is None:
                break
            assert isinstance(msg.payload, bytes)
            last = decode_status(msg.payload)
            if pred(last):
                return last
    raise AssertionError(f"status of {host_id} never matched; last seen: {last}")


# --- configs ------------------------------------------------------------------------------


def write_agent_toml(path: Path, broker: Broker, host_id: str, **agent: object) -> Path:
    cert, key = broker.pki.cert(host_id)
    opts = {"status_interval": 0.2, "max_concurrent": 2, "clock_skew": 5.0,
            "max_query_ttl": 60.0, **agent}
    lines = ["[agent]", f'host_id = "{host_id}"', f'trusted_keys = ["{broker.pki.signing_pub}"]']
    lines += [f"{k} = {v}" for k, v in opts.items()]
    lines += ["", "[mqtt]", 'host = "127.0.0.1"', f"port = {broker.port}",
              f'ca = "{broker.pki.ca}"', f'cert = "{cert}"', f'key = "{key}"',
              "keepalive = 10", "reconnect_min = 0.05", "reconnect_max = 0.5"]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sensor_toml(path: Path, broker: Broker, inventory: Path, *, keepalive: int = 10,
                      **confirm: object) -> Path:
    cert, key = broker.pki.cert(SENSOR)
    # Generous: the tests share two CPUs with whatever else runs; a timeout only costs time
    # when something is already wrong.
    opts = {"timeout": 10.0, "cpu_window": 0.5, "query_ttl": 30.0, **confirm}
    lines = ["[sensor]", f'id = "{SENSOR}"', f'inventory = "{inventory}"', "",
             "[mqtt]", 'host = "127.0.0.1"', f"port = {broker.port}", f'ca = "{broker.pki.ca}"',
             f'cert = "{cert}"', f'key = "{key}"', f"keepalive = {keepalive}",
             "reconnect_min = 0.05", "reconnect_max = 0.5", "", "[confirm]",
             f'signing_key = "{broker.pki.signing_key}"']
    lines += [f"{k} = {v}" for k, v in opts.items()]
    # Test processes share two CPUs with whatever else runs: a busy loop was measured as low
    # as 11% of a core under load, while the idle 'miner' sleeps and measures 0%.
    lines += ["", "[correlate]", "cpu_threshold = 5.0"]
    path.write_text("\n".join(lines) + "\n")
    return path


INVENTORY = """
[[host]]
id = "web-01"
addresses = ["127.0.0.1"]
tags = ["web"]

[[host]]
id = "db-01"
addresses = ["127.0.0.2"]

[[host]]
id = "printer-2"
addresses = ["127.0.0.3"]
agent = false
"""


# --- processes ----------------------------------------------------------------------------

STUB = Path(__file__).with_name("agent_stub.py")


class AgentProcess:
    """The agent daemon in a real child process: `python -m netdetect.agent.daemon` with the
    real collectors, or agent_stub.py with the small psutil stand-in."""

    def __init__(self, config: Path, log: Path, *, real_collector: bool = False,
                 extra: tuple[str, ...] = ()) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        entry = ["-m", "netdetect.agent.daemon"] if real_collector else [str(STUB)]
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, *entry, "--config", str(config),
                                          "--log-level", "DEBUG", *extra], stdout=out,
                                         stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def spawn_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def spawn(config: Path, *, real_collector: bool = False,
              extra: tuple[str, ...] = ()) -> AgentProcess:
        agent = AgentProcess(config, tmp_path / f"agent-{len(started)}.log",
                             real_collector=real_collector, extra=extra)
        started.append(agent)
        return agent

    yield spawn
    for agent in started:
        agent.close()


MINER = """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(s.getsockname()[1], flush=True)
busy = sys.argv[2] == "busy"
while True:
    if busy:
        for _ in range(100000):
            pass
    else:
        time.sleep(0.5)
"""


class Miner:
    """A child process holding a TCP connection to a local 'pool', burning CPU or idling."""

    def __init__(self, pool_port: int, *, busy: bool, extra: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", MINER, str(pool_port),
                                      "busy" if busy else "idle", *extra],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.local_port = int(self.proc.stdout.readline())

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def pool() -> Iterator[socket.socket]:
    """A listening 'pool' on loopback; connections complete in its backlog."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s


@pytest.fixture
def miners(pool: socket.socket) -> Iterator[Callable[..., Miner]]:
    started: list[Miner] = []

    def start(busy: bool, extra: tuple[str, ...] = ()) -> Miner:
        m = Miner(pool.getsockname()[1], busy=busy, extra=extra)
        started.append(m)
        return m

    yield start
    for m in started:
        m.close()


WALLET = (
    "48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD"
)


def suspect(miner_ip: str, miner_port: int, pool_port: int, *, score: int = 90,
            login: str | None = WALLET + ".rig1",
            pool_host: str | None = "pool.supportxmr.com") -> Suspect:
    return Suspect(
        flow_id=1,
        ts=time.time(),
        first_ts=time.time() - 5,
        miner=Endpoint(miner_ip, miner_port),
        pool=Endpoint("127.0.0.1", pool_port),
        proto="TCP",
        app_proto="stratum",
        dialect="cryptonote",
        score=score,
        evidence=(Evidence("stratum-client-method", 60, 'method "login" from client', 0.0),),
        methods=("login",),
        pool_facts=PoolFacts(host=pool_host, host_source="login"),
        miner_facts=MinerFacts(login=login, agent_name="xmrig"),
    )
