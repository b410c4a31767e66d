"""Parsing time of circuit files as they grow: OpenQASM and JSON must scale linearly
(issue 12 section 6: QASM took 14 s for 0.8 MB and 54 s for 1.6 MB).

    python benchmarks/bench_parse.py [--megabytes 0.4 0.8 1.6]

Prints seconds per size and the ratio to the previous size (2.0 for linear parsing
when sizes double; timings on a shared machine are noisy, the ratios less so).
"""

from __future__ import annotations

import argparse
import time

import pennylane as qml

from qstore_pl.circuits import from_openqasm, tape_from_json, tape_to_json

_HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[8];\n'


def qasm_text(megabytes: float) -> str:
    lines, size, i = [], len(_HEADER), 0
    while size < megabytes * 1e6:
        line = f"rx({i / 7:.12f}) q[{i % 8}];\ncx q[{i % 8}],q[{(i + 1) % 8}];\n"
        lines.append(line)
        size += len(line)
        i += 1
    return _HEADER + "".join(lines)


def seconds(fn, text: str) -> float:
    start = time.perf_counter()
    fn(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, nargs="+", default=[0.4, 0.8, 1.6])
    args = parser.parse_args()
    print(f"{'format':<8} {'MB':>6} {'seconds':>8} {'ratio':>6}")
    for name in ("qasm", "json"):
        previous = None
        for megabytes in args.megabytes:
            text = qasm_text(megabytes)
            if name == "json":
                text = tape_to_json(qml.tape.QuantumScript(from_openqasm(text).operations))
                fn = tape_from_json
            else:
                fn = from_openqasm
            took = seconds(fn, text)
            ratio = f"{took / previous:6.2f}" if previous else ""
            print(f"{name:<8} {len(text) / 1e6:6.2f} {took:8.2f} {ratio}")
            previous = took


if __name__ == "__main__":
    main()
