"""Target boards through Dask distributed: measure on the board, build on the workstation (issue 17).

A board runs ``edgeopt device serve`` (a Dask worker tagged with a resource for its kind,
one task at a time); the workstation sends the model bytes and the timing settings, and
the board's runtime times it there (:mod:`edgeopt.device.runner`, the sweep's runner).
"""
