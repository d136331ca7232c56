"""Helpers for the web view's tests: a demo run's log, `uok ui` as a real
server process on 127.0.0.1, and headless Chromium (Debian's, driven by
Playwright; never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import FIXTURES, ROOT, uok

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def demo_run(root: Path) -> Path:
    """The demo plan run once into ``root/events.db`` (flaky fails once and is retried)."""
    shutil.copytree(FIXTURES / "plans", root / "plan", ignore=shutil.ignore_patterns("out", "bad"))
    db = root / "events.db"
    r = uok("run", str(root / "plan" / "demo.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    return db


class UiServer:
    """`uok ui --port 0` in a subprocess; ``url`` is the address it printed."""

    def __init__(self, db: Path):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("UOK_DB", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uok", "ui", "--db", str(db), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        line = self.proc.stdout.readline()
        assert "serving uok ui" in line, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = line.split(" at ")[1].split()[0].rstrip("/")

    def get(self, path: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict, str]:
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()

    def __enter__(self) -> UiServer:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.stop()


def screenshot_dir(tmp_path: Path) -> Path:
    """Where browser tests leave their screenshots: ``UOK_UI_SCREENSHOTS``
    (``docs/ui`` to refresh the documentation's pictures), else a temp dir."""
    target = os.environ.get("UOK_UI_SCREENSHOTS")
    path = Path(target) if target else tmp_path / "shots"
    path.mkdir(parents=True, exist_ok=True)
    return path
