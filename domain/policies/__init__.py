"""Pure policies the kernel and the read models consult: the unit lifecycle
(:mod:`~uok.domain.policies.lifecycle`), the gate retry matrix
(:mod:`~uok.domain.policies.gates`), circuit breakers, the cost table and
cost guard, work/model modes and permission profiles, the writer token, and
the doctor's diagnosis. Each is a function of its arguments and of folded
events: no clock, no I/O."""
