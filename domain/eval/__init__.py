"""Evals over recorded runs (behaviour §20): a suite of cases × variants ×
repetitions, expanded into plans (:mod:`uok.domain.eval.suite`), and the
statistics that compare the variants' recorded outcomes
(:mod:`uok.domain.eval.stats`, :mod:`uok.domain.eval.summary`). Pure."""
