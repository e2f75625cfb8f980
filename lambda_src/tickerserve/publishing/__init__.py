"""Publisher-side library: writing versions, histories, listing version folders, demo models.

Used by the command line (and the monitor function); never shipped in the prediction
function's asset, which holds only what serving needs.
"""
