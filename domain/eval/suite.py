"""An eval suite: cases × variants × repetitions, and how one cell of that
matrix becomes a plan (behaviour §20).

A *case* is a piece of work (a plan file, or one inline task); a *variant*
is a way of doing it (a model, a work or model mode, prompt files, any task
field). Each (case, variant, repetition) is one ordinary run of an
ordinary plan: the case's plan with the variant's changes applied, under a
plan id of its own (so a repetition never resumes an earlier one), tagged
in ``KernelEntered.flags["eval"]``. The plan's text is what the run records
(``plan_source``), so a replay compiles exactly what the cell ran.

Pure: the shell reads the files and hands their text and parsed documents in.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

import msgspec
from uok.domain.errors import InputError
from uok.domain.plan.model import ID_PATTERN

MAX_REPETITIONS = 1000


class SuiteError(InputError):
    """A suite that cannot run: ``str()`` names the file and the problem."""


class SuiteHead(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    title: str = ""
    repetitions: int = 1
    workers: int = 1  # parallel units inside each run; the runs themselves go one after another


class Case(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What to do: ``plan`` (a plan file, relative to the suite) or ``task``
    (the fields of one task, as in a plan's ``[[milestones.slices.tasks]]``)."""

    id: str
    title: str = ""
    plan: str | None = None
    task: dict[str, Any] | None = None


class Variant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to do it. ``task`` overrides every task's fields (``env`` and
    ``metadata`` are merged, the rest replaced); ``env`` is added to every
    task's environment; ``model`` is handed as ``UOK_MODEL``; ``work_mode``
    and ``model_mode`` are the run's modes; ``prompt_files`` maps a task
    file of the case's plan to the file that replaces it (a prompt variant)."""

    id: str
    title: str = ""
    model: str | None = None
    work_mode: str | None = None
    model_mode: str | None = None
    env: dict[str, str] = {}
    task: dict[str, Any] = {}
    prompt_files: dict[str, str] = {}


class Suite(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    suite: SuiteHead
    cases: tuple[Case, ...]
    variants: tuple[Variant, ...]

    @property
    def id(self) -> str:
        return self.suite.id


def parse_suite(doc: Mapping[str, Any], filename: str) -> Suite:
    """The suite a parsed TOML document describes; every problem is a
    :class:`SuiteError` naming ``filename`` and the key."""
    try:
        suite = msgspec.convert(dict(doc), Suite)
    except msgspec.ValidationError as exc:
        raise SuiteError(f"{filename}: {exc}") from None

    def fail(problem: str) -> SuiteError:
        return SuiteError(f"{filename}: {problem}")

    def ident(value: str, what: str) -> None:
        if not ID_PATTERN.fullmatch(value):
            raise fail(f"{what} {value!r} must match {ID_PATTERN.pattern}")

    ident(suite.suite.id, "[suite] id")
    if not 1 <= suite.suite.repetitions <= MAX_REPETITIONS:
        raise fail(f"[suite] repetitions must be 1..{MAX_REPETITIONS}, got {suite.suite.repetitions}")
    if suite.suite.workers < 1:
        raise fail(f"[suite] workers must be >= 1, got {suite.suite.workers}")
    for what, items in (("case", suite.cases), ("variant", suite.variants)):
        if not items:
            raise fail(f"a suite needs at least one [[{what}s]]")
        seen: set[str] = set()
        for item in items:
            ident(item.id, f"{what} id")
            if item.id in seen:
                raise fail(f"duplicate {what} id {item.id!r}")
            seen.add(item.id)
    for case in suite.cases:
        if (case.plan is None) == (case.task is None):
            raise fail(f"case {case.id!r}: give exactly one of plan (a plan file) or task (one inline task)")
        if case.task is not None and "id" in case.task:
            raise fail(f"case {case.id!r}: an inline task takes the case's id; remove task.id")
    for variant in suite.variants:
        if "id" in variant.task:
            raise fail(f"variant {variant.id!r}: task.id cannot be overridden")
    return suite


def case_document(case: Case) -> dict[str, Any]:
    """The plan document of an inline-task case: one milestone, one slice, one task."""
    assert case.task is not None
    task = {"id": case.id, **copy.deepcopy(case.task)}
    return {"plan": {"id": case.id}, "milestones": [{"id": "eval", "slices": [{"id": case.id, "tasks": [task]}]}]}


def cell_document(doc: Mapping[str, Any], variant: Variant, *, plan_id: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The case's plan document with ``variant`` applied, under ``plan_id``.

    Tasks written in the plan's TOML take the variant's ``task`` fields and
    environment (with ``UOK_MODEL`` and the eval ``tags``); tasks read from
    Markdown files keep their frontmatter (a variant changes them through
    ``prompt_files``)."""
    out = copy.deepcopy(dict(doc))
    head = out.get("plan")
    out["plan"] = {**(head if isinstance(head, dict) else {}), "id": plan_id}
    extra_env = dict(variant.env)
    if variant.model is not None:
        extra_env["UOK_MODEL"] = variant.model
    extra_env.update(tags)
    for milestone in _tables(out.get("milestones")):
        for slice_ in _tables(milestone.get("slices")):
            for task in _tables(slice_.get("tasks")):
                if "file" in task:
                    continue
                for key, value in copy.deepcopy(variant.task).items():
                    old = task.get(key)
                    if key in ("env", "metadata") and isinstance(old, dict) and isinstance(value, dict):
                        task[key] = {**old, **value}
                    else:
                        task[key] = value
                env = task.get("env", {})
                task["env"] = (
                    {**env, **extra_env} if isinstance(env, dict) else env
                )  # a bad env stays bad: the compiler says so
    return out


def _tables(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# ------------------------------------------------------------------ TOML out


def _key(key: str) -> str:
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return _string(key)


def _string(value: str) -> str:
    # JSON's escapes are TOML's, except that TOML wants DEL escaped too
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(doc: Mapping[str, Any]) -> str:
    """``doc`` as TOML text, one top-level key per line (inline tables):
    ``tomllib.loads(to_toml(d)) == d`` for every document a plan can hold."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in doc.items())
