"""What survives an operating-system crash, checked where it can be checked here.

A power loss cannot be produced on this machine; what can be checked is that the
system calls that put data on stable storage happen, on the right files, in the right
order, through a real file system: the spool traced with strace in a subprocess
(SQLite's own fsyncs are invisible from Python), the store's fsyncs recorded in
process. The guarantee then rests on fsync meaning what POSIX says (a disk that
honours cache flushes).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pennylane as qml
import pytest
from pennylane.tape import QuantumScript

from qstore_pl.callbacks import ExecutionRecord
from qstore_pl.db import StateRecorder, open_store
from qstore_pl.db.spool import Spool

STRACE = shutil.which("strace")
ROOT = Path(__file__).resolve().parents[2]

#: For each sync mode, appends three calls to a new spool (in directories it creates),
#: marking each step with an access() of a path that cannot exist, which the trace
#: shows in order (one interpreter for both: importing PennyLane takes seconds).
SPOOL_SCRIPT = """
import os, sys
from pathlib import Path
import numpy as np
from qstore_pl.db.spool import CircuitEntry, Spool

def mark(label):
    os.access("/qstore-mark/" + label, os.F_OK)

for sync in ("full", "normal"):
    mark(f"{sync}-open")
    spool = Spool(Path(sys.argv[1]) / sync / "dir" / "spool.sqlite", sync=sync)
    for call in range(3):
        mark(f"{sync}-append{call}")
        amplitudes = np.ones((2, 4), np.complex64)
        spool.append([], [CircuitEntry(str(call), 2, b"tape", {}, amplitudes)])
    mark(f"{sync}-checkpoint")
    spool.checkpoint()
    mark(f"{sync}-end")
"""


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """The paths fsynced (or fdatasynced) after each mark of SPOOL_SCRIPT, by mark."""
    if STRACE is None:
        pytest.skip("tracing system calls needs strace")
    root = tmp_path_factory.mktemp("spools")
    trace = root / "trace"
    syscalls = "trace=fsync,fdatasync,access,faccessat,faccessat2"
    command = [STRACE, "-f", "--seccomp-bpf", "-y", "-o", str(trace), "-e", syscalls]
    subprocess.run(
        [*command, sys.executable, "-c", SPOOL_SCRIPT, str(root)],
        check=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    segments: dict[str, list[str]] = {}
    current = None
    for line in trace.read_text().splitlines():
        if "/qstore-mark/" in line:
            current = line.split("/qstore-mark/")[1].split('"')[0]
            segments[current] = []
        elif current and ("fsync(" in line or "fdatasync(" in line):
            segments[current].append(line.split("<", 1)[1].split(">", 1)[0])
    return root, segments


def test_full_sync_puts_each_call_on_disk_before_append_returns(synced):
    root, segments = synced
    spool = root / "full" / "dir" / "spool.sqlite"
    for call in range(3):
        assert f"{spool}-wal" in segments[f"full-append{call}"]
    # a new spool file: the file, its folder and the folders created for it
    assert {str(spool), str(spool.parent), str(spool.parent.parent), str(root)} <= set(
        segments["full-open"]
    )


def test_normal_sync_leaves_calls_to_the_checkpoint_which_syncs_the_log(synced):
    """The default does not wait for the disk on the training thread; the delivery's
    checkpoint after each round is what puts the calls on disk."""
    root, segments = synced
    spool = root / "normal" / "dir" / "spool.sqlite"
    for call in range(3):
        assert segments[f"normal-append{call}"] == []
    assert {f"{spool}-wal", str(spool)} <= set(segments["normal-checkpoint"])


def test_the_store_is_on_disk_before_the_spool_forgets_its_states(tmp_path, monkeypatch):
    """Delivery fsyncs the embedded store's files (points, log, collection metadata
    and their folders) after writing a batch and before the acknowledgement that
    removes the batch from the spool: after flush() every state is on stable storage."""
    events: list[str] = []
    fsync = os.fsync

    def recorded_fsync(descriptor: int) -> None:
        events.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        fsync(descriptor)

    def recorded(forget):
        def acknowledge(self, *args) -> None:
            events.append("ack")
            forget(self, *args)

        return acknowledge

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    # encoded states leave by position, calls (a circuit's states) by id
    monkeypatch.setattr(Spool, "ack_through", recorded(Spool.ack_through))
    monkeypatch.setattr(Spool, "forget_calls", recorded(Spool.forget_calls))
    store = open_store(path=tmp_path / "store")
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite", delivery="thread")
    tape = QuantumScript([qml.RX(np.linspace(0, 1, 4), 0), qml.CNOT([0, 1])], [qml.probs()])
    recorder.on_execution(ExecutionRecord(tape, None, "execute", "lightning.qubit", None, 0))
    recorder.flush(timeout=60)
    recorder.close()
    store.close()
    first_ack = events.index("ack")
    synced = set(events[:first_ack])
    collection = tmp_path / "store" / "collection" / "qstore_pure-2q"
    assert {
        str(collection / "storage.sqlite"),
        str(collection / "storage.sqlite-wal"),
        str(tmp_path / "store" / "meta.json"),
        str(collection),
        str(tmp_path / "store"),
    } <= synced
