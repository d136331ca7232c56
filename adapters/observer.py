"""Turn observers (behaviour §6 loop adapter) and what the runner does at turn boundaries.

The kernel decides turns (``TurnStarted``, ``PhaseResult``s, exactly one
``TurnFinished``); the shell then tells anyone interested. A
:class:`TurnObserver` gets

* ``on_turn_start(turn)``: the ``TurnStarted`` decision;
* ``on_phase_result(phase, action, data)``: each ``PhaseResult``; ``data``
  is the decision's data plus ``turn_id``, ``unit_id`` and ``unit_type``.
  The dispatch phase (``"dispatch", "dispatched", {"attempt": n}``) is
  told right after ``on_turn_start``, from the ``TurnStarted`` itself:
  runs with the ``dense_turns`` flag (issue 15) record no ``PhaseResult``
  for it, older ones did, right after their ``TurnStarted``. Likewise a
  ``TurnFinished`` ``completed``/``retry``/``failed`` whose turn recorded no
  finalize phase (``dense_turns`` 2) is preceded by the finalize phase it
  implies (``ev.implied_finalize``): every other run recorded one before
  such an ending. Observers see the same calls either way;
* ``on_turn_result(result)``: the ``TurnFinished`` decision.

:class:`TurnHooks` is the runner's side: for each decision, in log order,
it takes the turn's writer token at ``TurnStarted`` (before the unit's
process starts) and gives it back at ``TurnFinished``, and calls the
observers in between. An observer that raises is logged and skipped; it
never breaks the loop. Writer-token *acquisition* errors do propagate: a
turn must not run without its token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from uok.adapters.writer import Token, WriterTokens
from uok.domain import events as ev
from uok.domain.config import recorded_settings
from uok.domain.errors import UokError
from uok.domain.events import TurnClosed
from uok.domain.policies.writer import DEFAULT_TTL_SECONDS

log = logging.getLogger("uok.observer")


class TurnObserver(Protocol):
    def on_turn_start(self, turn: ev.TurnStarted) -> None: ...

    def on_phase_result(self, phase: str, action: str, data: dict[str, Any]) -> None: ...

    def on_turn_result(self, result: ev.TurnFinished) -> None: ...


class TurnHooks:
    """Writer tokens and observers, driven by the kernel's turn decisions."""

    def __init__(
        self,
        *,
        writer: WriterTokens | None = None,
        observers: Sequence[TurnObserver] = (),
        ttl_for: Callable[[str], float] | None = None,
        owner: str = "uok",
        record: Callable[[ev.Event], None] | None = None,
        clock: Callable[[], Any] | None = None,
        run_id: str = "",
    ):
        """``record`` (the runner's ``_step``) receives a ``TurnClosed`` after each
        turn's closeout; without it no closeout is recorded."""
        self.writer = writer
        self.record, self.clock, self.run_id = record, clock, run_id
        self.observers = list(observers)
        self.ttl_for = ttl_for or (lambda _unit_id: writer.default_ttl if writer else 0.0)
        self.owner = owner
        self.tokens: dict[str, Token] = {}  # turn id -> its token, while the turn runs
        self._turns: dict[str, ev.TurnStarted] = {}
        self.linger: Callable[[str], bool] = lambda _turn_id: False
        """Whether a finished turn's process is still running (a stopped task
        in its grace period): its closeout waits for :meth:`close_lingering`."""
        self._lingering: dict[str, ev.TurnFinished] = {}
        self._finalized: set[str] = set()  # turns whose finalize phase was recorded (and told)

    def on_decision(self, d: ev.Event) -> None:
        if type(d) is ev.UnitTransitioned:  # most decisions: nothing to do (issue 15, CPU per task)
            return
        if isinstance(d, ev.TurnStarted):
            self._turns[d.turn_id] = d
            if self.writer is not None:
                self.tokens[d.turn_id] = self.writer.acquire(d.turn_id, self.owner, ttl=self.ttl_for(d.unit_id))
            self._notify("on_turn_start", d)
            self._tell_phase(d.turn_id, *ev.implied_dispatch(d))
        elif isinstance(d, ev.PhaseResult):
            if d.phase == "dispatch":
                return  # told at its TurnStarted (above)
            if d.phase == "finalize":
                self._finalized.add(d.turn_id)
            self._tell_phase(d.turn_id, d.phase, d.action, d.data)
        elif isinstance(d, ev.TurnFinished):
            if d.turn_id not in self._finalized and (action := ev.implied_finalize(d)):
                self._tell_phase(d.turn_id, "finalize", action)  # a dense run's outcome: TurnFinished says it
            self._finalized.discard(d.turn_id)
            if self.linger(d.turn_id):  # its process still runs: the token stays held, the run waits
                self._lingering[d.turn_id] = d
                return
            self._close(d)

    def _tell_phase(self, turn_id: str, phase: str, action: str, data: Mapping[str, Any] | None = None) -> None:
        """``on_phase_result`` with ``data`` plus the turn's id and, when its
        start was seen, its unit's id and type."""
        if not self.observers:
            return
        told: dict[str, Any] = {**(data or {}), "turn_id": turn_id}
        turn = self._turns.get(turn_id)
        if turn is not None:
            told.update(unit_id=turn.unit_id, unit_type=turn.unit_type)
        self._notify("on_phase_result", phase, action, told)

    def close_lingering(self, turn_id: str) -> None:
        """The process of a turn that finished while it still ran is gone: close the turn out."""
        d = self._lingering.pop(turn_id, None)
        if d is not None:
            self._close(d)

    def _close(self, d: ev.TurnFinished) -> None:
        errors = released = 0
        try:
            errors = self._notify("on_turn_result", d)
        finally:
            self._turns.pop(d.turn_id, None)
            released = self._release(d.turn_id)
            if self.record is not None and self.clock is not None:
                # never swallowed: with turn_closeout the run's exit waits for it (uok.domain.kernel.rules.closeout)
                self.record(
                    TurnClosed(
                        run_id=self.run_id,
                        at=self.clock(),
                        turn_id=d.turn_id,
                        token_released=bool(released),
                        observer_errors=errors,
                    )
                )

    def forget(self) -> None:
        """An append failed: the writer tokens' fold reads the log again
        (:meth:`uok.adapters.writer.WriterTokens.forget`)."""
        if self.writer is not None:
            self.writer.forget()

    def release_all(self) -> None:
        """Give back every token still held (the runner's ``finally``)."""
        for turn_id in list(self.tokens):
            self._release(turn_id)

    def _release(self, turn_id: str) -> bool:
        token = self.tokens.pop(turn_id, None)
        if token is None or self.writer is None:
            return False
        try:
            return self.writer.release(token)
        except UokError as exc:  # the log refused it (a full disk, a lost lease): named, no traceback
            log.warning(
                "could not release writer token of turn %s (%s); it expires after %ss", turn_id, exc, token.ttl_seconds
            )
            return False
        except Exception:
            log.exception("could not release writer token of turn %s; it expires after %ss", turn_id, token.ttl_seconds)
            return False

    def _notify(self, method: str, *args: Any) -> int:
        """Call ``method`` on every observer; returns how many raised."""
        if not self.observers:
            return 0
        errors = 0
        for observer in self.observers:
            fn = getattr(observer, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:
                errors += 1
                log.exception("turn observer %s.%s failed", type(observer).__name__, method)
        return errors


def build_turn_hooks(
    *,
    log: Any,
    flags: dict[str, Any],
    root: Path,
    record: Callable[[ev.Event], None],
    clock: Callable[[], Any],
    run_id: str,
    unit_timeout: Callable[[str], float],
    observers: Sequence[TurnObserver] = (),
    exclude: Sequence[Path] = (),
    publisher: Any = None,
) -> TurnHooks:
    """The runner's hooks for one run, configured from its flags.

    * ``writer_ttl`` (seconds, default 300): a turn's token lives for this
      long or for the unit's timeout plus 30 s, whichever is longer, so a
      live unit never loses its token while a dead one's expires;
    * ``gitops`` (bool, default false): gitops runs only if this run flag is
      set (``uok run --gitops``) *and* the plan root is a git work tree. The
      config's ``[uok.gitops]`` table (resolved into ``flags["uok"]``) can
      veto it (``enabled = false``) and supplies ``turn_action`` unless the
      run flag ``gitops_turn_action`` overrides it. The config's default-on
      alone never starts committing to a repository.
      ``gitops_timeout`` (seconds, default 10) bounds each git call.
      With action ``commit``, ``publisher`` (:func:`gitops_action`,
      :mod:`uok.adapters.gitpublish`) commits through the ``gitops`` gate.
    """
    from uok.adapters.gitops import DEFAULT_TIMEOUT, GitOps

    ttl = float(flags.get("writer_ttl", DEFAULT_TTL_SECONDS))
    writer = WriterTokens(log, clock=clock, record=record, run_id=run_id, default_ttl=ttl)
    chain: list[TurnObserver] = []
    action = gitops_action(flags, root)
    if action is not None:
        timeout = float(flags.get("gitops_timeout", DEFAULT_TIMEOUT))
        chain.append(
            GitOps(
                root,
                record=record,
                clock=clock,
                run_id=run_id,
                timeout=timeout,
                action=action,
                exclude=exclude,
                publisher=publisher if action == "commit" else None,
            )
        )
    chain.extend(observers)
    return TurnHooks(
        writer=writer,
        observers=chain,
        ttl_for=lambda unit_id: max(ttl, unit_timeout(unit_id) + 30.0),
        record=record,
        clock=clock,
        run_id=run_id,
    )


def gitops_action(flags: dict[str, Any], root: Path) -> str | None:
    """The run's gitops turn action, or None when gitops does not run: the
    run flag ``gitops`` not set, vetoed by ``[uok.gitops] enabled = false``,
    or the plan root not a git work tree (a warning says so)."""
    from uok.adapters.gitops import DEFAULT_TIMEOUT, is_git_work_tree

    config = recorded_settings(flags.get("uok"))[0].gitops  # [uok.gitops], typed
    if flags.get("gitops") is not True or not config.enabled:
        return None
    if not is_git_work_tree(root, float(flags.get("gitops_timeout", DEFAULT_TIMEOUT))):
        log_msg = "gitops is enabled but %s is not a git work tree: no git transactions recorded"
        logging.getLogger("uok.gitops").warning(log_msg, root)
        return None
    return str(flags.get("gitops_turn_action") or config.turn_action)
