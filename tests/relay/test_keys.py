"""A box's key, stolen from the box, tried against the relay from the internet: it opens
that box's two reverse forwards and nothing else (OpenSSH 9.2 on the relay)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from wix_fleet import enrol

from tests.relay import topology as topo

pytestmark = [pytest.mark.relay, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(600)]

A, B = "wix-relay-a", "wix-relay-b"


def ssh(key: Path, user: str, *opts: str, cmd: tuple[str, ...] = (), timeout: float = 20) -> (
        subprocess.CompletedProcess[str]):
    argv = ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
            *opts, f"{user}@{topo.RELAY[1]}", *cmd]
    return subprocess.run(argv, text=True, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def stop(p: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """End an ssh we started; on a loaded machine it may not manage SIGTERM at once."""
    p.terminate()
    try:
        p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=10)


def remote_forward(key: Path, spec: str) -> subprocess.CompletedProcess[str] | None:
    """-R spec with ExitOnForwardFailure: the finished process if the relay refused it,
    None if the forward stood (the process is then ended)."""
    argv = ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
            "-o", "ExitOnForwardFailure=yes", "-N", "-R", spec, f"wixtunnel@{topo.RELAY[1]}"]
    p = subprocess.Popen(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=4)
        return subprocess.CompletedProcess(argv, p.returncode, out, err)
    except subprocess.TimeoutExpired:
        stop(p)
        return None


def test_stolen_box_key_opens_only_its_own_forwards(fleet: topo.Fleet) -> None:
    key_a = fleet.keys / A / "id_ed25519"
    since = fleet.relay.exec("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    a_http, a_ssh = fleet.ports(A)
    b_http, b_ssh = fleet.ports(B)

    # no shell, no command, no pty, no subsystem
    for opts, cmd in (((), ()), ((), ("id",)), (("-s",), ("sftp",))):
        r = ssh(key_a, "wixtunnel", *opts, cmd=cmd)
        assert r.returncode != 0 and "uid=" not in r.stdout, (opts, cmd, r)
        assert "not available" in r.stdout + r.stderr, r  # nologin answered, nothing else ran
    r = ssh(key_a, "wixtunnel", "-tt", cmd=("id",))
    assert r.returncode != 0 and "uid=" not in r.stdout and "PTY allocation request failed" in r.stderr, r

    # no local forwards: not to box B, not to A's own ports, not to the relay's sshd
    for port in (b_http, b_ssh, a_http, a_ssh, 22):
        r = ssh(key_a, "wixtunnel", "-W", f"127.0.0.1:{port}")
        assert r.returncode != 0 and "prohibited" in r.stderr, (port, r)
    local = topo.free_port()
    p = subprocess.Popen(["ssh", "-F", "/dev/null", "-i", str(key_a), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-N",
                          "-L", f"127.0.0.1:{local}:127.0.0.1:{b_http}", f"wixtunnel@{topo.RELAY[1]}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        topo.wait_port("127.0.0.1", local, 10)
        with socket.create_connection(("127.0.0.1", local), timeout=5) as s:
            s.sendall(b"GET /status HTTP/1.0\r\n\r\n")
            s.settimeout(5)
            try:
                answer = s.recv(100)
            except ConnectionResetError:
                answer = b""
            assert answer == b"", "-L reached box B's service"
    finally:
        stop(p)

    # the key is good for nothing but the tunnel account
    for user in ("root", "wixjump"):
        r = ssh(key_a, user, "-W", f"127.0.0.1:{b_ssh}")
        assert r.returncode == 255 and "Permission denied" in r.stderr, (user, r)

    # no remote forward on box B's ports, on another port, or on every address
    for spec in (f"127.0.0.1:{b_http}:127.0.0.1:9", f"127.0.0.1:{b_ssh}:127.0.0.1:9", "127.0.0.1:20999:127.0.0.1:9",
                 "0.0.0.0:20999:127.0.0.1:9", "20999:127.0.0.1:9", f"localhost:{b_http}:127.0.0.1:9"):
        r = remote_forward(key_a, spec)
        assert r is not None and "remote port forwarding failed" in r.stderr, (spec, r)

    # with A's own tunnel down (its ports free): not on every address, but on loopback,
    # exactly as the tunnel does (the positive control: the stolen key is a working key)
    fleet.boxes[A].exec("systemctl", "stop", "wix-tunnel")
    try:
        topo.wait(lambda: not fleet.relay_listening(a_http), 30, "A's ports to be free")
        r = remote_forward(key_a, f"0.0.0.0:{a_http}:127.0.0.1:9")
        assert r is not None and "remote port forwarding failed" in r.stderr, r
        assert not topo.can_connect(topo.RELAY[1], a_http)
        assert remote_forward(key_a, f"127.0.0.1:{a_http}:127.0.0.1:9") is None
    finally:
        fleet.boxes[A].exec("systemctl", "start", "wix-tunnel")
    topo.wait(lambda: fleet.relay_listening(a_http), 30, "A's tunnel back")
    log = fleet.relay.exec("journalctl", "-u", "ssh", "--since", since, "--no-pager").stdout
    refused_r, refused_l = log.count("but the request was denied"), log.count("refused local port forward")
    print(f"\nrelay sshd refused {refused_r} remote and {refused_l} local forwards of the stolen key")
    assert refused_r >= 7 and refused_l >= 6

    # what sshd itself says applies to the tunnel account
    eff = fleet.relay.exec("sshd", "-T", "-C", f"user=wixtunnel,host=x,addr={topo.GATEWAY}").stdout.lower()
    for line in ("allowtcpforwarding remote", "permittty no", "allowagentforwarding no", "x11forwarding no",
                 "allowstreamlocalforwarding no", "permittunnel no", "gatewayports no",
                 "forcecommand /usr/sbin/nologin", "permitopen none"):
        assert f"\n{line}\n" in f"\n{eff}", line


def test_jump_account_reaches_only_the_boxes_ssh_ports(fleet: topo.Fleet) -> None:
    a_http, _ = fleet.ports(A)
    r = ssh(topo.TEST_KEY, "wixjump", cmd=("id",))
    assert r.returncode != 0 and "uid=" not in r.stdout
    for port in (a_http, 22, 20999):
        r = ssh(topo.TEST_KEY, "wixjump", "-W", f"127.0.0.1:{port}")
        assert r.returncode != 0 and "prohibited" in r.stderr, (port, r)
    t0 = time.monotonic()
    r = subprocess.run(["ssh", "-F", str(fleet.inv / enrol.SSH_CONFIG), "-i", str(topo.TEST_KEY),
                        "-o", "BatchMode=yes", "-l", "root", A, "hostname"],
                       text=True, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout.strip() == A, r
    print(f"\nssh through the relay to {A}: {time.monotonic() - t0:.2f} s")
