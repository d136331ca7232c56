"""Executable gates (the shell side of the gate runner, behaviour §2/§10).

``registry`` holds the gates this process can execute; ``host`` runs one
requested attempt and turns whatever happens into a ``GateEvaluated``
observation; ``verification`` and ``security`` are the built-in gates. The
decisions about them (retries, breakers, the unit's outcome) are pure and
live in ``domain/kernel/rules/gating.py``.
"""
