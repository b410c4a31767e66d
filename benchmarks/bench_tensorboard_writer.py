"""Writing TensorBoard scalars: qstore_pl's EventWriter against tensorboard's
EventFileWriter and torch's SummaryWriter (issue 13: use the tensorboard package
unless a measured reason says otherwise).

    python benchmarks/bench_tensorboard_writer.py [--scalars 10000] [--rounds 3]

Each way runs in a fresh process (imports are part of the cost), the ways interleaved
round by round, and TensorBoard's ``EventAccumulator`` reads every scalar back.
Prints, per way, the median over rounds of: seconds to import the writer, to build it
(tensorboard's writers import TensorFlow here when it is installed), to write and
flush the scalars, whether TensorFlow got imported, and whether all scalars read back.
Timings on a shared machine are noisy; compare ways within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

WAYS = ("qstore_pl EventWriter", "tensorboard EventFileWriter", "torch SummaryWriter")

_CHILD = r"""
import json, sys, time
way, n, log_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import numpy, pennylane  # a qstore_pl user has both loaded: not the writer's cost
start = time.perf_counter()
if way == "qstore_pl EventWriter":
    from qstore_pl.tensorboard.event_writer import EventWriter
    imported = time.perf_counter()
    writer = EventWriter(log_dir)
    built = time.perf_counter()
    for i in range(n):
        writer.add_scalar("loss", i * 0.5, i)
    writer.flush()
elif way == "tensorboard EventFileWriter":
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    imported = time.perf_counter()
    writer = EventFileWriter(log_dir, max_queue_size=n + 10)
    built = time.perf_counter()
    for i in range(n):
        value = Summary.Value(tag="loss", simple_value=i * 0.5)
        writer.add_event(Event(wall_time=time.time(), step=i, summary=Summary(value=[value])))
    writer.close()
else:
    from torch.utils.tensorboard import SummaryWriter
    imported = time.perf_counter()
    writer = SummaryWriter(log_dir, max_queue=n + 10)
    built = time.perf_counter()
    for i in range(n):
        writer.add_scalar("loss", i * 0.5, i)
    writer.close()
written = time.perf_counter()
tensorflow = "tensorflow" in sys.modules
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
events = EventAccumulator(log_dir, size_guidance={SCALARS: 0})
events.Reload()
scalars = events.Scalars("loss")
read_back = len(scalars) == n and all(
    s.step == i and s.value == i * 0.5 for i, s in enumerate(scalars)
)
print(json.dumps({"import": imported - start, "build": built - imported,
                  "write": written - built, "tensorflow": tensorflow, "read_back": read_back}))
"""


def run(way: str, scalars: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_tb_") as log_dir:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, way, str(scalars), log_dir],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scalars", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way in WAYS:
            results[way].append(run(way, args.scalars))
    print(f"{args.scalars} scalars, median of {args.rounds} interleaved rounds (seconds)")
    print(f"{'writer':<28} {'import':>7} {'build':>7} {'write':>7} {'TF imported':>12} read back")
    for way, runs in results.items():
        median = {k: statistics.median(r[k] for r in runs) for k in ("import", "build", "write")}
        tensorflow = "yes" if any(r["tensorflow"] for r in runs) else "no"
        read_back = "all" if all(r["read_back"] for r in runs) else "MISSING"
        print(
            f"{way:<28} {median['import']:7.3f} {median['build']:7.3f} "
            f"{median['write']:7.3f} {tensorflow:>12} {read_back}"
        )


if __name__ == "__main__":
    main()
