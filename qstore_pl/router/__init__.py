"""The router device ``qstore.router`` and everything only it uses.

- :mod:`~qstore_pl.router.device`: the PennyLane device;
  :mod:`~qstore_pl.router.config`, :mod:`~qstore_pl.router.purpose`,
  :mod:`~qstore_pl.router.explain`, :mod:`~qstore_pl.router.report` (the routing log) around it;
- :mod:`~qstore_pl.router.preprocessing`: user circuits into ones every backend runs;
- :mod:`~qstore_pl.router.routing`: workload features, backend descriptions, policies;
- :mod:`~qstore_pl.router.registry`: the backends the router knows how to build;
- :mod:`~qstore_pl.router.calibration`: measuring backends and fitting time models;
- :mod:`~qstore_pl.router.execution`: adapters, executors (serial, Dask), tape packing;
- :mod:`~qstore_pl.router.money`: quotes, budgets, the spending ledger, cost reports.

Imports flow one way: the router uses :mod:`qstore_pl.devices`, never the reverse.
"""
