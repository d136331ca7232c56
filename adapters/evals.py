"""``uok eval``'s shell (behaviour §20): read a suite and its cases' plans,
expand the matrix into one prepared run per (case, variant, repetition),
run them one after another on the log, tagged, and read the recorded
results back through the ``evals`` read model.

Everything is read and compiled before the log is opened, so a bad suite,
case plan, prompt file or config writes nothing (exit 2).
"""

from __future__ import annotations

import os
import posixpath
import tomllib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from uok.adapters.planfiles import PlanSources, read_plan
from uok.domain.eval.suite import Case, Suite, Variant, case_document, cell_document, parse_suite, to_toml
from uok.domain.eval.summary import EvalRun

from uok.errors import InputError


class Cell(NamedTuple):
    case: str
    variant: str
    repetition: int
    prepared: Any  # uok.bootstrap.PreparedRun


class LoadedCase(NamedTuple):
    case: Case
    path: Path  # the plan file (for an inline task: the suite file; tasks run in its directory)
    doc: dict[str, Any]
    sources: PlanSources


def new_eval_id(now: datetime | None = None) -> str:
    return f"e{(now or datetime.now(UTC)):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"


def load_suite(path: Path) -> Suite:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such suite file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the suite: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    return parse_suite(doc, str(path))


def _load_case(suite_path: Path, case: Case) -> LoadedCase:
    if case.task is not None:
        doc = case_document(case)
        return LoadedCase(case, suite_path, doc, PlanSources(suite_path, "", {}, {}))
    assert case.plan is not None
    plan = suite_path.parent / case.plan
    sources = read_plan(plan)
    try:
        doc = tomllib.loads(sources.source)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{plan}: not valid TOML: {exc}") from None
    head = doc.get("plan")
    head = head if isinstance(head, dict) else {}
    doc["plan"] = {**head, "id": str(head.get("id", plan.stem))}
    return LoadedCase(case, plan, doc, sources)


def _prompt_files(suite_path: Path, loaded: LoadedCase, variant: Variant) -> dict[str, str]:
    files = dict(loaded.sources.files)
    for target, replacement in variant.prompt_files.items():
        key = posixpath.normpath(target)
        if key not in files:
            continue
        try:
            text = (suite_path.parent / replacement).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{suite_path}: variant {variant.id!r}: cannot read prompt file {replacement}: {exc}"
            ) from None
        files[key] = with_body(files[key], text)
    return files


def with_body(task_file: str, replacement: str) -> str:
    """A Markdown task file with ``replacement`` as its prompt: a replacement
    that has its own frontmatter replaces the whole file; a bare prompt keeps
    the task file's frontmatter (its command, writes ...) and replaces the body."""
    if replacement.startswith(("+++\n", "---\n")):
        return replacement
    lines = task_file.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") not in ("+++", "---"):
        return replacement
    fence = lines[0].rstrip("\r\n")
    for i, line in enumerate(lines[1:], 1):
        if line.rstrip("\r\n") == fence:
            return "".join(lines[: i + 1]) + replacement
    return replacement


def plan_cells(
    suite_path: Path,
    suite: Suite,
    eval_id: str,
    prepare: Callable[..., Any],
    *,
    config: os.PathLike[str] | None = None,
) -> list[Cell]:
    """Every cell of the matrix, prepared (plan compiled, config and gates
    resolved): repetition by repetition, each case under each variant in
    turn, so a drift in the machine's speed falls on every variant alike."""
    cases = [_load_case(suite_path, c) for c in suite.cases]
    for variant in suite.variants:
        for target in variant.prompt_files:
            if not any(posixpath.normpath(target) in lc.sources.files for lc in cases):
                raise InputError(
                    f"{suite_path}: variant {variant.id!r}: prompt_files names {target!r}, a task file no case reads"
                )
    cells = []
    for rep in range(1, suite.suite.repetitions + 1):
        for lc in cases:
            for variant in suite.variants:
                tags = {
                    "eval_id": eval_id,
                    "suite": suite.id,
                    "case": lc.case.id,
                    "variant": variant.id,
                    "repetition": rep,
                }
                env = {
                    "UOK_EVAL_ID": eval_id,
                    "UOK_EVAL_CASE": lc.case.id,
                    "UOK_EVAL_VARIANT": variant.id,
                    "UOK_EVAL_REPETITION": str(rep),
                }
                plan_id = f"{lc.doc['plan']['id']}.{eval_id}.{variant.id}.r{rep}"
                doc = cell_document(lc.doc, variant, plan_id=plan_id, tags=env)
                sources = PlanSources(lc.path, to_toml(doc), _prompt_files(suite_path, lc, variant), lc.sources.globs)
                flags: dict[str, Any] = {"eval": tags}
                if variant.work_mode is not None:
                    flags["work_mode"] = variant.work_mode
                if variant.model_mode is not None:
                    flags["model_mode"] = variant.model_mode
                prepared = prepare(lc.path, flags=flags, config=config, sources=sources)
                cells.append(Cell(lc.case.id, variant.id, rep, prepared))
    return cells


def eval_runs(states: dict[str, Any]) -> list[EvalRun]:
    """The tagged runs of the ``evals`` read model, in log order."""
    return sorted((r for r in states["evals"].values() if r.eval_id), key=lambda r: r.entered_position)


def pick_eval(runs: list[EvalRun], wanted: str | None, where: str) -> tuple[str, list[EvalRun]]:
    """The runs of eval ``wanted`` (an eval id, or None/'latest': the last
    one recorded); an unknown id is bad input naming the known ones."""
    ids = list(dict.fromkeys(r.eval_id for r in runs))
    if not ids:
        raise InputError(f"{where} holds no eval runs (run `uok eval SUITE.toml` first)")
    eval_id = ids[-1] if wanted in (None, "latest") else wanted
    if eval_id not in ids:
        raise InputError(f"{where} has no eval {wanted!r} (known: {', '.join(ids[-5:])})")
    return eval_id, [r for r in runs if r.eval_id == eval_id]
