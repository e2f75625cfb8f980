"""Publisher-side library: writing versions, promotion, version folders, demo models, and
``conversion`` (estimators -> pickle-free members).

Used by the command line (and the monitor function, to promote); never shipped in the
prediction function's asset. May import ``serving`` (to load a version exactly as the function
does before promoting it), ``baselines``, ``storage`` and below.
"""
