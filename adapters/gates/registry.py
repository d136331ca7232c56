"""The registry of executable gates.

``register`` validates a gate (``uok.domain.policies.gates.validate_gate``) and replaces
any gate with the same id; ``list`` returns them in registration order.
The ids and types are recorded in ``KernelEntered.flags["gates"]``, which
is how the pure kernel knows, deterministically and on replay, whether a
gate a task lists can run at all (an unknown id is fail-closed:
``manual-attention``).
"""

from __future__ import annotations

from uok.domain.config import Settings
from uok.domain.policies.gates import Gate, validate_gate


class GateRegistry:
    def __init__(self, gates: list[Gate] | tuple[Gate, ...] = ()):
        self._gates: dict[str, Gate] = {}
        for g in gates:
            self.register(g)

    def register(self, gate: Gate) -> None:
        validate_gate(gate)
        self._gates[gate.id] = gate

    def get(self, gate_id: str) -> Gate | None:
        return self._gates.get(gate_id)

    def list(self) -> list[Gate]:
        return list(self._gates.values())

    def types(self) -> dict[str, str]:
        """id -> type, as recorded for the kernel."""
        return {g.id: g.type for g in self._gates.values()}

    def __contains__(self, gate_id: object) -> bool:
        return gate_id in self._gates


def default_registry(settings: Settings | None = None) -> GateRegistry:
    """The built-in gates: ``verification`` and ``security``."""
    from uok.adapters.gates.security import SecurityGate
    from uok.adapters.gates.verification import VerificationGate

    settings = settings or Settings()
    return GateRegistry(
        [
            VerificationGate(),
            SecurityGate(
                timeout_seconds=settings.security_guard.timeout_seconds,
                files=tuple(settings.security_guard.files),
                unscannable=settings.security_guard.unscannable,
                max_file_bytes=settings.security_guard.max_file_bytes,
            ),
        ]
    )
