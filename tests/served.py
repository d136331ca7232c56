"""A uok server (`uok serve`, `uok ui`) run as a real subprocess on
127.0.0.1 with ``--port 0``: ready once it prints the line naming its URL."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from tests.conftest import ROOT


class Served:
    def __init__(self, *args: str, ready: str):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("UOK_DB", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uok", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        line = self.proc.stdout.readline()  # blocks until the server says it listens (or exits)
        assert ready in line, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = line.split(" at ")[1].split()[0]

    def request(self, url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict, str]:
        """(status, headers with lower-case names, body)."""
        req = urllib.request.Request(url, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()

    def stop(self) -> int:
        """SIGTERM and its exit code; a server that ignores it is killed
        (never left running) and the test fails."""
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the server did not stop on SIGTERM within 30 s") from None
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.stop()
