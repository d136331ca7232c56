"""One import name: a wheel built from the repository holds only ``uok``, and
installed into a fresh virtual environment that also has packages named
``domain`` and ``adapters`` (an application's own ports-and-adapters layout,
or the PyPI package ``adapters``), the ``uok`` command and the Python API
still work and leave those packages alone.

End-to-end tier: builds the wheel with pip (offline: no index, no build
isolation) and runs the installed console script in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "uok", "domain", "adapters", "projections", "replay")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "UOK_DB", "PYTHONHOME")}
    return {**env, **extra}


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or _clean_env(), capture_output=True, text=True)
    assert r.returncode == 0, f"{argv}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built by pip from a copy of the repository's sources (the
    work tree itself gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            # not the editable install's compiled extension: the wheel build compiles its own
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
        elif path.exists():
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheels")
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-q",
        "-w",
        out,
        src,
        cwd=src,
    )
    [whl] = out.glob("uok-*.whl")
    return whl


def test_the_wheel_holds_one_top_level_name(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
        dist_info = next(n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info"))
        top_level = (
            z.read(f"{dist_info}/top_level.txt").decode().split() if f"{dist_info}/top_level.txt" in names else []
        )
    assert top == {"uok"}
    assert top_level in ([], ["uok"])
    for module in ("uok/domain/kernel/kernel.py", "uok/adapters/cli/commands/run.py", "uok/projections/runs.py"):
        assert module in names, module
    assert not any(n.startswith("uok/tests/") for n in names)
    # the C chain check of the analytical copy is compiled into the wheel where
    # it can be (a C compiler and libcrypto, as here when the editable install built it)
    from uok.adapters.analytics import batches

    if batches.FIRST_BROKEN is not None:
        assert any(n.startswith("uok/adapters/analytics/_chain.") and n.endswith(".so") for n in names), names


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed, and with two foreign packages
    named ``domain`` and ``adapters``. uok's dependencies come from this test
    run's environment, appended to the venv's path (no index needed)."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    _run(sys.executable, "-m", "venv", "--without-pip", env_dir, cwd=env_dir.parent)
    python = env_dir / "bin" / "python"
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel, cwd=env_dir
    )
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=env_dir).stdout.strip()
    )
    for name in ("domain", "adapters"):
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(f'OWNER = "someone else\'s {name}"\n')
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")  # after the venv's own
    return env_dir


def test_the_installed_command_runs_the_demo_beside_foreign_domain_and_adapters(venv: Path, tmp_path: Path):
    shutil.copytree(ROOT / "fixtures" / "plans", tmp_path / "plans", ignore=shutil.ignore_patterns("out", "bad"))
    uok = venv / "bin" / "uok"
    from importlib.metadata import version

    assert _run(uok, "--version", cwd=tmp_path).stdout.strip() == f"uok {version('uok')}"
    r = _run(uok, "run", tmp_path / "plans" / "demo.toml", "--json", cwd=tmp_path)
    result = orjson.loads(r.stdout)
    assert (result["status"], result["units_completed"], result["exit_code"]) == ("ok", 12, 0)
    assert (tmp_path / ".uok" / "events.db").is_file()
    status = orjson.loads(_run(uok, "status", "--json", cwd=tmp_path / "plans").stdout)  # found upward
    assert status["plans"]["demo"]["by_state"] == {"completed": 12}
    assert "usage: uok" in _run(venv / "bin" / "python", "-m", "uok", "--help", cwd=tmp_path).stdout


def test_the_python_api_works_beside_foreign_domain_and_adapters(venv: Path, tmp_path: Path):
    shutil.copytree(ROOT / "fixtures" / "plans", tmp_path / "plans", ignore=shutil.ignore_patterns("out", "bad"))
    script = textwrap.dedent(
        """
        import json, sys
        import domain, adapters
        import uok

        result = uok.run_plan("plans/demo.toml", db="api.db")
        status = uok.status("api.db")
        with uok.read_models("api.db") as rm:
            head = rm.head()
        try:
            uok.run_plan("plans/missing.toml", db="api.db")
        except uok.InputError as e:
            refused = str(e)
        from uok.adapters.analytics import batches

        print(json.dumps({
            "uok": uok.__file__, "domain": domain.OWNER, "adapters": adapters.OWNER,
            "c_check": getattr(batches.FIRST_BROKEN, "__module__", None),
            "status": result.status, "completed": result.units_completed,
            "by_state": status["plans"]["demo"]["by_state"], "head": head, "refused": refused,
        }))
        """
    )
    out = orjson.loads(_run(venv / "bin" / "python", "-c", script, cwd=tmp_path).stdout)
    assert Path(out["uok"]).is_relative_to(venv)  # the installed wheel, not the work tree
    assert out["domain"] == "someone else's domain" and out["adapters"] == "someone else's adapters"
    assert (out["status"], out["completed"], out["by_state"]) == ("ok", 12, {"completed": 12})
    assert out["head"] > 0 and "no such plan file" in out["refused"]
    from uok.adapters.analytics import batches

    if batches.FIRST_BROKEN is not None:  # built here, so built into the wheel and loaded from it
        assert out["c_check"] == "uok.adapters.analytics._chain"
