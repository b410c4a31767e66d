"""The ``qstore-pl`` command.

Parsing imports nothing heavy: PennyLane and the frameworks load only inside the
command that needs them, so ``--help``, ``--version`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qstore_pl.cli.args import (
    Parser,
    fail,
    non_negative_float,
    non_negative_int,
    port,
    positive_int,
)

#: What the ``explain`` command routes, named as in the README's benchmarks.
W1 = (
    "W1 is the training workload of the README's benchmarks: angle encoding of the inputs, "
    "hardware-efficient layers (RY, RZ on every qubit and a ring of CNOTs), <Z> on every "
    "qubit, a batch of inputs per call"
)


def _quickstart(args: argparse.Namespace) -> int:
    from qstore_pl.cli.quickstart import main

    main(
        n_qubits=args.qubits,
        n_layers=args.layers,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        config=args.config,
        progress=not args.quiet,
    )
    return 0


def _explain(args: argparse.Namespace) -> int:
    import numpy as np
    import pennylane as qml
    from pennylane import numpy as pnp

    from qstore_pl.templates import HardwareEfficientAnsatz

    n = args.qubits
    dev = qml.device("qstore.router", wires=n, router_config=args.config, precision=args.precision)

    @qml.qnode(dev, device_vjp=args.vjp)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(n), rotation="X")
        HardwareEfficientAnsatz(weights, wires=range(n))
        return [qml.expval(qml.Z(i)) for i in range(n)]

    rng = np.random.default_rng(0)
    inputs = rng.uniform(0, np.pi, (args.batch, n)) if args.batch > 1 else rng.uniform(0, 1, n)
    weights = pnp.array(
        rng.uniform(0, 2 * np.pi, HardwareEfficientAnsatz.shape(args.layers, n)),
        requires_grad=not args.forward,
    )
    step = "forward pass" if args.forward else "training step"
    print(f"W1 workload: {n} qubits, {args.layers} layers, batch {args.batch}, {step}")
    print(dev.explain(circuit, inputs, weights))
    return 0


def _backends(args: argparse.Namespace) -> int:
    import pennylane as qml

    dev = qml.device("qstore.router", wires=1, router_config=args.config)
    rows = [("backend", "device", "dtype", "max wires", "derivatives")]
    for spec in dev.backends:
        caps = spec.capabilities
        methods = ", ".join(caps.derivatives) or "-"
        rows.append((spec.name, spec.device_name, str(caps.dtype), str(caps.max_wires), methods))
    print(format_table(rows, right=(3,)))
    return 0


def format_table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Rows as aligned columns (two spaces apart); ``right``: columns aligned right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _calibrate(args: argparse.Namespace) -> int:
    from qstore_pl.router.calibration.measure import calibrate_and_save, select_for_calibration
    from qstore_pl.router.config import load_config
    from qstore_pl.router.registry.builtin import resolve_backends

    specs = select_for_calibration(
        resolve_backends(load_config(args.config).backends), args.backend
    )
    calibration, path = calibrate_and_save(specs, args.level, progress=_stderr)
    print(calibration.describe())
    print(f"saved to {path}; qstore.router uses it from now on")
    return 0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _paths(args: argparse.Namespace) -> int:
    from qstore_pl.support.paths import locations

    rows = [("what", "where", "moved by", "")]
    for place in locations():
        rows.append((place.what, str(place.path), f"${place.variable}", place.note))
    if args.calibration_file:
        from qstore_pl.router.calibration.fit import calibration_path

        rows.append(("this machine's calibration", str(calibration_path()), "", ""))
    print(format_table(rows))
    return 0


def _ionq_emulator(args: argparse.Namespace) -> int:
    from qstore_pl.devices.ionq.emulator import IonQEmulator

    emulator = IonQEmulator(host=args.host, port=args.port, seed=args.seed)
    emulator.set_faults(
        latency=args.latency,
        job_seconds=args.job_seconds,
        rate_limit=args.rate_limit,
        queue_seconds=dict(args.queue or ()),
    )
    print(f"IonQ emulator (API v0.4) on {emulator.url}", flush=True)
    print(f"  export QSTORE_IONQ_URL={emulator.url} IONQ_API_KEY=any-key", flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


def _ledger(args: argparse.Namespace) -> int:
    from qstore_pl.router.money.ledger import Ledger

    ledger = Ledger(args.ledger)
    if args.action == "reconcile":
        from qstore_pl.router.money.reconcile import reconcile_ionq

        print(reconcile_ionq(ledger, args.url, backends=args.backend))
    print(ledger.report(args.budget))
    return 0


def _queue_entry(text: str) -> tuple[str, float]:
    backend, _, seconds = text.partition("=")
    try:
        return backend, non_negative_float(seconds)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"use BACKEND=SECONDS, got {text!r}") from None


_CONFIG_HELP = "router config file (YAML or TOML); default: the built-in settings"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``qstore-pl``."""
    from qstore_pl import __version__

    parser = Parser(
        prog="qstore-pl",
        description="qstore_pl: cost-aware routing of PennyLane workloads.",
        epilog="`qstore-pl COMMAND --help` describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"qstore-pl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    quick = sub.add_parser(
        "quickstart",
        help="train a small hybrid torch model through qstore.router",
        description="Train a TorchLayer classifier on two half-moons through qstore.router "
        "and show what ran where.",
    )
    quick.add_argument("--qubits", type=positive_int, default=4, help="qubits of the circuit")
    quick.add_argument("--layers", type=positive_int, default=2, help="entangling layers")
    quick.add_argument("--epochs", type=positive_int, default=6, help="passes over the data")
    quick.add_argument("--batch-size", type=positive_int, default=16, help="samples per step")
    quick.add_argument("--seed", type=non_negative_int, default=0, help="seed of data and weights")
    quick.add_argument("--config", help=_CONFIG_HELP)
    quick.add_argument("--quiet", action="store_true", help="no progress output")
    quick.set_defaults(func=_quickstart)

    explain = sub.add_parser(
        "explain",
        help="show how the router would run a W1 training step, and why",
        description=f"Show every candidate backend, its estimate and the choice. {W1}.",
    )
    explain.add_argument("--qubits", type=positive_int, default=8, help="qubits of the circuit")
    explain.add_argument("--layers", type=positive_int, default=4, help="entangling layers")
    explain.add_argument("--batch", type=positive_int, default=32, help="inputs per call")
    explain.add_argument("--forward", action="store_true", help="forward pass only (inference)")
    explain.add_argument(
        "--vjp", action="store_true", help="use device vector-Jacobian products (device_vjp)"
    )
    explain.add_argument(
        "--precision",
        choices=("single", "double"),
        default="single",
        help="'single' lets complex64 backends run; 'double' keeps to complex128",
    )
    explain.add_argument("--config", help=_CONFIG_HELP)
    explain.set_defaults(func=_explain)

    backends = sub.add_parser("backends", help="list the backends the router would use")
    backends.add_argument("--config", help=_CONFIG_HELP)
    backends.set_defaults(func=_backends)

    cal = sub.add_parser(
        "calibrate",
        help="measure the local backends and cache their time models",
        description="Time the local simulators on this machine, fit the router's time "
        "models and add them to this machine's calibration cache (the models of other "
        "backends are kept). Progress goes to stderr.",
    )
    cal.add_argument(
        "--level",
        choices=("quick", "full"),
        default="full",
        help="'quick': widths 3-12, as on first use; 'full': widths 4-18",
    )
    cal.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        help="only this backend (repeatable); default: every local backend of the config",
    )
    cal.add_argument("--config", help=_CONFIG_HELP)
    cal.set_defaults(func=_calibrate)

    paths = sub.add_parser(
        "paths",
        help="show where qstore_pl keeps its files, and the variables that move them",
    )
    paths.add_argument(
        "--calibration-file",
        action="store_true",
        help="also name this machine's calibration file (reads library versions: slower)",
    )
    paths.set_defaults(func=_paths)

    from qstore_pl.cli.db import add_db_parser

    add_db_parser(sub)

    led = sub.add_parser(
        "ledger",
        help="the spending ledger: report, or reconcile with IonQ's record of the jobs",
        description="reconcile sets every charge to what IonQ billed for its jobs (the "
        "job list; API key from PENNYLANE_IONQ_API_KEY or IONQ_API_KEY), releases "
        "charges IonQ has no job for and confirms jobs whose outcome was unknown",
    )
    led.add_argument("action", choices=("report", "reconcile"))
    led.add_argument("--ledger", help="ledger file (default: $QSTORE_LEDGER or the user's)")
    led.add_argument("--url", help="IonQ server (default: $QSTORE_IONQ_URL or IonQ's cloud)")
    led.add_argument("--backend", action="append", help="only this backend's charges")
    led.add_argument("--budget", type=float, default=None, help="show the budget left")
    led.set_defaults(func=_ledger)

    emu = sub.add_parser(
        "ionq-emulator", help="serve an offline IonQ cloud (API v0.4) for development and tests"
    )
    emu.add_argument("--port", type=port, default=8765, help="TCP port (0: any free port)")
    emu.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emu.add_argument("--seed", type=non_negative_int, default=None, help="seed for sampled results")
    emu.add_argument(
        "--latency", type=non_negative_float, default=0.0, help="seconds added per request"
    )
    emu.add_argument(
        "--job-seconds", type=non_negative_float, default=0.0, help="seconds until a job completes"
    )
    emu.add_argument(
        "--rate-limit",
        type=non_negative_float,
        default=0.0,
        help="requests/s before HTTP 429 (0: no limit)",
    )
    emu.add_argument(
        "--queue",
        type=_queue_entry,
        action="append",
        metavar="BACKEND=SECONDS",
        help="reported queue time, e.g. qpu.aria-1=120 (repeatable)",
    )
    emu.set_defaults(func=_ionq_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``qstore-pl``."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:
        if _is_qstore_error(err):  # the user's input or setup: the message says what to change
            return fail(str(err))
        if isinstance(err, OSError):  # a file the user named cannot be read or written
            print(f"qstore-pl: error: {err}", file=sys.stderr)
            return 1
        raise


def _is_qstore_error(err: Exception) -> bool:
    # A QstoreError was raised only if its module is loaded: checking costs no import.
    exceptions = sys.modules.get("qstore_pl.exceptions")
    return exceptions is not None and isinstance(err, exceptions.QstoreError)
