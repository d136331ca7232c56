"""Workers on several hosts (issue 16, acceptance): four ``uok worker``
processes on one PostgreSQL run, two of them on other "hosts": each in its
own network namespace (``ip netns``, a veth pair, its own addresses) and its
own UTS namespace (its own host name), reaching PostgreSQL over the virtual
network. PostgreSQL listens on 127.0.0.1 only, so a small TCP forwarder in
the root namespace, bound to the host side of each veth, relays to it: every
byte between those workers and the server crosses the veth.

Needs root and iproute2 (``.ci/run`` installs it); where a namespace cannot
be made the test is skipped saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from uok.domain import events as ev

from tests.workers_support import (
    completions,
    create_log,
    events_of,
    finish,
    parallel_plan,
    start_run,
    start_worker,
    uok_env,
    wait_for,
)

UNITS = 12


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _why_no_netns() -> str:
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root, as .ci/run does"
    if shutil.which("ip") is None:
        return "iproute2 is not installed (no `ip`): apt-get install iproute2 (.ci/run does)"
    if shutil.which("unshare") is None:
        return "util-linux's unshare is missing: a worker's own host name needs it"
    probe = f"uokp{uuid.uuid4().hex[:8]}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"`ip netns add` fails here: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return ""


class Host:
    """A network namespace joined to the root one by a veth pair (a /30)."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.ns, self.outer, self.inner = f"uokw{tag}", f"uo{tag}", f"ui{tag}"  # link names <= 15 chars
        n = int(tag[:4], 16) % 16000
        self.net = f"10.{200 + n // 256 % 50}.{n % 256}"  # 10.200-249.x.0/30, unique enough per test
        self.gateway, self.address = f"{self.net}.1", f"{self.net}.2"
        self.hostname = f"host-{tag[:6]}"

    def up(self) -> None:
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        _ip("link", "set", self.inner, "netns", self.ns)
        _ip("addr", "add", f"{self.gateway}/30", "dev", self.outer)
        _ip("link", "set", self.outer, "up")
        _ip("-n", self.ns, "addr", "add", f"{self.address}/30", "dev", self.inner)
        _ip("-n", self.ns, "link", "set", self.inner, "up")
        _ip("-n", self.ns, "link", "set", "lo", "up")

    def down(self) -> None:
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True, timeout=30)  # gone with the ns, usually

    def prefix(self) -> list[str]:
        """Run a command in this namespace under this host's own name."""
        return [
            "ip",
            "netns",
            "exec",
            self.ns,
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname {self.hostname} && exec "$@"',
            "-",
        ]


class Forwarder:
    """Relays TCP from ``listen`` (an address of the root namespace) to ``target``."""

    def __init__(self, listen: str, target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server((listen, 0))
        self.port = self.server.getsockname()[1]
        self.relayed = 0  # connections relayed: proof that the workers came over the veth
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=30)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.relayed += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop = True
        self.server.close()


def _via(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@{host}:{port}" if parts.username else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_four_workers_two_on_other_hosts_run_every_unit_exactly_once(pg_server, tmp_path: Path):
    why = _why_no_netns()
    if why:
        pytest.skip(why)
    target = pg_server.schema_url()
    create_log(target)
    pg = urlsplit(target)
    out = tmp_path / "out"
    out.mkdir()
    plan = parallel_plan(tmp_path / "plan.toml", UNITS)
    env = uok_env(out)
    hosts = [Host(), Host()]
    forwarders: list[Forwarder] = []
    procs: list[subprocess.Popen[str]] = []
    try:
        for h in hosts:
            h.up()
            forwarders.append(Forwarder(h.gateway, (pg.hostname or "127.0.0.1", pg.port or 5432)))
        run = start_run(target, plan, env)
        procs.append(run)
        local = [start_worker(target, env, tmp_path, lease=10) for _ in range(2)]  # no lease should run out
        remote = [
            start_worker(_via(target, h.gateway, f.port), env, tmp_path, lease=10, prefix=h.prefix())
            for h, f in zip(hosts, forwarders, strict=True)
        ]
        procs += local + remote
        # every worker holds a unit before any task may finish: all four run some
        wait_for(lambda: len(list(out.glob("started-*"))) >= 4, "each of the four workers to start a unit")
        # uok status shows the four workers, each holding one live lease, the remote ones under their host names
        status = subprocess.run(
            [sys.executable, "-m", "uok", "--db", target, "status", "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)["workers"]
        assert sorted(len(w["leases"]) for w in rows) == [1, 1, 1, 1], rows
        assert {h.hostname for h in hosts} <= {w["host"] for w in rows}
        assert not any(lease["expired"] for w in rows for lease in w["leases"])
        (out / "release").touch()
        code, stdout, stderr = finish(run)
        assert code == 0, stdout + stderr
        served = [finish(w) for w in local + remote]
        assert [c for c, _, _ in served] == [0, 0, 0, 0], served
        assert all(f.relayed > 0 for f in forwarders)  # the remote workers' connections crossed the veths
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=30)
        for f in forwarders:
            f.close()
        for h in hosts:
            h.down()

    assert sorted(p.name for p in out.glob("done-*")) == sorted(f"done-u{i}" for i in range(UNITS))
    events = events_of(target)
    assert completions(events) == {f"u{i}": 1 for i in range(UNITS)}
    joined = {e.worker: e for _, e in events if isinstance(e, ev.WorkerJoined)}
    assert len(joined) == 4
    names = {h.hostname for h in hosts}
    assert names <= {e.host for e in joined.values()}, joined  # each remote worker names its own host
    reported: dict[str, int] = {}
    for _, e in events:
        if isinstance(e, ev.WorkerReported):
            reported[e.host] = reported.get(e.host, 0) + 1
    assert all(reported.get(n, 0) >= 1 for n in names), reported
    assert sum(reported.values()) == UNITS
    replay = subprocess.run(
        [sys.executable, "-m", "uok", "--db", target, "replay", "--all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
