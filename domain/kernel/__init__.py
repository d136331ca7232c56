"""The kernel: the decision core that turns observations into decisions.

Import the kernel from here (``from uok.domain.kernel import Kernel``); the
modules inside this package are its internals.
"""

from uok.domain.kernel.kernel import Kernel, RunInfo, TurnInfo

__all__ = ["Kernel", "RunInfo", "TurnInfo"]
