"""The delivery process's side (``python -m qstore_pl.db.delivery_child``): open the
embedded store, deliver the spool with a :class:`~qstore_pl.db.recorder.StateRecorder`
on a thread, and answer the training process's store calls (see
:mod:`qstore_pl.db.delivery`, which starts it)."""

from __future__ import annotations

import json
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from qstore_pl.db.delivery import STOP_WAIT
from qstore_pl.db.errors import StoreError

#: Seconds between looks at the spool for calls the training process added.
_POLL = 0.1
#: How much lower than training this process runs (``nice``) once it has delivered
#: what was spooled before it started: where both want a core, training wins it and
#: delivery takes what is left; the spool holds the difference until it is sent. The
#: leftovers of a killed run (a replay, which the new run's flush waits for) go out at
#: normal priority: at nice 10 beside busy processes a replay got a tenth of a core.
_NICENESS = 10
#: The store methods a training process may call here.
_BACKEND_METHODS = frozenset({"upsert", "query", "fetch", "delete", "counts", "page", "sync"})


def _portable(err: Exception) -> Exception:
    """The exception itself if it pickles, else a StoreError that names it."""
    try:
        pickle.dumps(err)
    except Exception:
        return StoreError(f"{type(err).__name__}: {err}")
    return err


def _exit_with_parent(death_read: int) -> None:
    os.read(death_read, 1)  # returns when the training process closes or loses the pipe
    os._exit(0)  # as if killed: what is not acknowledged waits in the spool


def _lower_priority() -> None:
    """Run every thread of this process at :data:`_NICENESS` (or lower, if it was
    started lower). Linux applies nice to one thread, so each is set by its id; where
    there is no ``/proc``, ``os.nice`` applies to the process."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        os.nice(max(0, _NICENESS - os.nice(0)))
        return
    for tid in threads:
        try:
            current = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, max(current, _NICENESS))
        except OSError:  # the thread has ended
            pass


def main(argv: Sequence[str]) -> int:
    """Run a delivery process: ``options_json rpc_fd death_fd``."""
    options = json.loads(argv[0])
    connection = Connection(int(argv[1]))
    threading.Thread(target=_exit_with_parent, args=(int(argv[2]),), daemon=True).start()
    try:
        from qstore_pl.db.open import open_store
        from qstore_pl.db.recorder import StateRecorder

        store = open_store(path=options["store"])
        recorder = StateRecorder(
            store,
            spool=options["spool"],
            delivery="thread",
            sync=options["sync"],
            batch_size=options["batch_size"],
            max_delay=options["max_delay"],
            max_backoff=options["max_backoff"],
        )
    except Exception as err:
        connection.send(("error", _portable(err)))
        return 1
    connection.send(("ready", None))

    def flush(timeout: float | None) -> None:
        recorder.reload_counts()  # the calls spooled before this request
        recorder.flush(timeout)

    handlers: dict[str, Callable[..., Any]] = {"flush": flush, "stats": recorder.stats}
    looked = time.monotonic()
    lowered = False
    while True:
        if time.monotonic() - looked >= _POLL:
            recorder.reload_counts()
            looked = time.monotonic()
            if not lowered and not recorder.stats().waiting:  # the leftovers are out
                _lower_priority()
                lowered = True
        if not connection.poll(_POLL):
            continue
        try:
            op, args = connection.recv()
        except EOFError:
            os._exit(0)
        if op == "stop":
            stopper = threading.Thread(target=recorder._stop)
            stopper.start()
            stopper.join(STOP_WAIT)
            if not stopper.is_alive():
                store.close()
            connection.send(("ok", None))
            os._exit(0)
        try:
            if op == "backend" and args[0] in _BACKEND_METHODS:
                value = getattr(store.backend, args[0])(*args[1:])
            else:
                value = handlers[op](*args)
        except Exception as err:
            connection.send(("error", _portable(err)))
        else:
            connection.send(("ok", value))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
