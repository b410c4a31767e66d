"""The root of every qstore_pl exception, in a module that imports nothing.

:mod:`qstore_pl.exceptions` derives some errors from PennyLane's and so loads
PennyLane, seconds of start-up. The state database's errors derive from this root
alone, so that a state recorder's delivery process, which raises them, starts
without PennyLane (:mod:`qstore_pl.db.delivery_child`). ``qstore_pl.exceptions``
re-exports it: catch ``qstore_pl.QstoreError`` as before.
"""

from __future__ import annotations


class QstoreError(Exception):
    """Base class of every error raised by qstore_pl."""


QstoreError.__module__ = "qstore_pl.exceptions"  # where users import it from
