"""The ``qstore-pl`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _quickstart(args: argparse.Namespace) -> int:
    from qstore_pl.quickstart import main

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
    dev = qml.device("qstore.router", wires=n, config=args.config, precision=args.precision)

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
    print(f"W1 workload: {n} qubits, {args.layers} layers, batch {args.batch}")
    print(dev.explain(circuit, inputs, weights))
    return 0


def _backends(args: argparse.Namespace) -> int:
    import pennylane as qml

    dev = qml.device("qstore.router", wires=1, config=args.config)
    print(f"{'backend':<18}{'device':<18}{'dtype':<12}{'max wires':>10}  derivatives")
    for spec in dev.backends:
        caps = spec.capabilities
        methods = ", ".join(caps.derivatives) or "-"
        print(
            f"{spec.name:<18}{spec.device_name:<18}{caps.dtype:<12}{caps.max_wires:>10}  {methods}"
        )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from qstore_pl.devices.calibrate import calibrate
    from qstore_pl.devices.local_backends import resolve_backends
    from qstore_pl.router.config import load_config

    specs = resolve_backends(load_config(args.config).backends)
    if args.backend:
        specs = [s for s in specs if s.name in args.backend]
    print(f"measuring {', '.join(s.name for s in specs)} ({args.level}) ...", flush=True)
    calibration = calibrate(specs, args.level)
    path = calibration.save()
    print(calibration.describe())
    print(f"saved to {path}; qstore.router uses it from now on")
    return 0


def _ionq_emulator(args: argparse.Namespace) -> int:
    from qstore_pl.ionq.emulator import IonQEmulator

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
    from qstore_pl.router.ledger import Ledger

    ledger = Ledger(args.ledger)
    if args.action == "reconcile":
        from qstore_pl.devices.ionq.reconcile import reconcile_ionq

        print(reconcile_ionq(ledger, args.url, backends=args.backend))
    print(ledger.report(args.budget))
    return 0


def _queue_entry(text: str) -> tuple[str, float]:
    backend, _, seconds = text.partition("=")
    try:
        return backend, float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"use BACKEND=SECONDS, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``qstore-pl``."""
    parser = argparse.ArgumentParser(
        prog="qstore-pl", description="qstore_pl: cost-aware routing of PennyLane workloads."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    quick = sub.add_parser(
        "quickstart", help="train a small hybrid torch model through qstore.router"
    )
    quick.add_argument("--qubits", type=int, default=4)
    quick.add_argument("--layers", type=int, default=2)
    quick.add_argument("--epochs", type=int, default=6)
    quick.add_argument("--batch-size", type=int, default=16)
    quick.add_argument("--seed", type=int, default=0)
    quick.add_argument("--config", help="router config file (YAML or TOML)")
    quick.add_argument("--quiet", action="store_true", help="no progress output")
    quick.set_defaults(func=_quickstart)

    explain = sub.add_parser(
        "explain", help="show how the router would run a W1 training step, and why"
    )
    explain.add_argument("--qubits", type=int, default=8)
    explain.add_argument("--layers", type=int, default=4)
    explain.add_argument("--batch", type=int, default=32)
    explain.add_argument("--forward", action="store_true", help="forward pass only")
    explain.add_argument("--vjp", action="store_true", help="use device vector-Jacobian products")
    explain.add_argument("--precision", choices=("single", "double"), default="single")
    explain.add_argument("--config", help="router config file (YAML or TOML)")
    explain.set_defaults(func=_explain)

    backends = sub.add_parser("backends", help="list the backends the router would use")
    backends.add_argument("--config", help="router config file (YAML or TOML)")
    backends.set_defaults(func=_backends)

    cal = sub.add_parser("calibrate", help="measure the local backends and cache their time models")
    cal.add_argument("--level", choices=("quick", "full"), default="full")
    cal.add_argument("--backend", action="append", help="only this backend (repeatable)")
    cal.add_argument("--config", help="router config file (YAML or TOML)")
    cal.set_defaults(func=_calibrate)

    from qstore_pl.db.commands import add_db_parser

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
    emu.add_argument("--port", type=int, default=8765)
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--seed", type=int, default=None, help="seed for sampled results")
    emu.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    emu.add_argument("--job-seconds", type=float, default=0.0, help="seconds until a job completes")
    emu.add_argument("--rate-limit", type=float, default=0.0, help="requests/s before HTTP 429")
    emu.add_argument(
        "--queue", type=_queue_entry, action="append", help="reported queue: qpu.aria-1=120"
    )
    emu.set_defaults(func=_ionq_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``qstore-pl``."""
    args = build_parser().parse_args(argv)
    from qstore_pl.exceptions import QstoreError

    try:
        return args.func(args)
    except QstoreError as err:
        print(f"qstore-pl: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
