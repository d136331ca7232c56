"""The kernel's decision rules, one concept per module.

Each module holds folds (``fold_*(state, event)``: how an event changes the
:class:`~uok.domain.kernel.state.KernelState`) and decisions (``on_*(ctx,
observation)`` and the helpers they call), written against the public
:class:`~uok.domain.kernel.context.Context` and the state: never against
the kernel object. Which fold and which handler serve which event, and in
what order, is listed once, in :data:`uok.domain.kernel.kernel.RULES`.

* ``runs``: what the kernel folds about runs, units and turns;
* ``entry``: a run enters (recover, compile, queue, resume);
* ``recovery``: close a dead run as ``recovered``, re-queue its units;
* ``execution``: a unit's command finished;
* ``outcome``: a turn's conclusion and a unit's retry budget;
* ``dispatch``: which units start now, blocking, caps, deadlock;
* ``intents``: units whose read/write intents overlap never run together;
* ``gating``, ``gate_history``, ``pricing``: the gates of a turn, the
  breakers and failure memory behind them, the cost guard;
* ``steering``, ``subagents``, ``chaos``, ``forking``: remote steering,
  sub-agents, chaos injections, forked logs;
* ``closeout``, ``shutdown``: waiting for turns to close out; how a run ends.
"""
