"""Helpers for the web view's tests: a demo run's log, `uok ui` as a real
server process on 127.0.0.1, and headless Chromium (Debian's, driven by
Playwright; never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import FIXTURES, uok
from tests.served import Served

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


class UiServer(Served):
    """`uok ui` on a free port; ``url`` without the trailing slash."""

    def __init__(self, db: Path):
        super().__init__("ui", "--db", str(db), ready="serving uok ui")
        self.url = self.url.rstrip("/")

    def get(self, path: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict, str]:
        return self.request(self.url + path, headers, method)


def demo_log(root: Path) -> tuple[Path, str, list]:
    """The demo run's log, its run id and its events."""
    from uok.domain import events as ev

    from tests.run_support import read_events

    db = demo_run(root)
    events = read_events(db)
    return db, next(e.run_id for _, e in events if isinstance(e, ev.KernelEntered)), events


def screenshot_dir(tmp_path: Path) -> Path:
    """Where browser tests leave their screenshots: ``UOK_UI_SCREENSHOTS``
    (``docs/ui`` to refresh the documentation's pictures), else a temp dir."""
    target = os.environ.get("UOK_UI_SCREENSHOTS")
    path = Path(target) if target else tmp_path / "shots"
    path.mkdir(parents=True, exist_ok=True)
    return path
