"""The pure core of uok: events, decisions, policies. No I/O, no clock, no
randomness, no environment: time, ids and outcomes arrive as observations.

Sub-packages, each depending only on those listed before it:

* :mod:`uok.domain.errors`: the three kinds of failure and their exit codes;
* :mod:`uok.domain.plan`: the plan file format, its compiler and graph algorithms;
* :mod:`uok.domain.events`: the event vocabulary (every msgspec Struct uok records);
* :mod:`uok.domain.log`: the codec, the hash chain and the store port;
* :mod:`uok.domain.policies`: unit lifecycle, gates, breakers, costs, modes,
  the writer token, diagnosis;
* :mod:`uok.domain.config`: the settings of a run (``[uok]`` in ``uok.toml``);
* :mod:`uok.domain.kernel`: the decision core and its rules.
"""
