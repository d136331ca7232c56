"""The kernel: the decision core that turns observations into decisions.

Import it from here (``from uok.domain.kernel import Kernel``): its state,
decision context and rules (the modules inside this package) are its
internals, and nothing outside the package imports them (a test checks).
``snapshot`` is public: the kernel's state as durable snapshot parts.
"""

from uok.domain.kernel import snapshot
from uok.domain.kernel.kernel import Kernel
from uok.domain.kernel.state import KernelState, RunInfo, TurnInfo

__all__ = ["Kernel", "KernelState", "RunInfo", "TurnInfo", "snapshot"]
