"""Training objectives of further architectures, one module each (see :mod:`sain.train.objective`).

Every module here is imported on the first objective lookup, so a new loss registers itself
with :func:`sain.train.objective.register_objective` without an edit anywhere else.
"""
