"""``qstore-pl db``: inspect a state store from the command line.

::

    qstore-pl db stats  [--path DIR | --qdrant-url URL | --pinecone-host HOST]
    qstore-pl db query  (--state state.npy | --circuit circuit.json) [--kind pure|probs]
                        [--top-k 5] [--filter '{"backend": "lightning.qubit"}']
    qstore-pl db export out.jsonl [--namespace pure-8q]

A circuit file is JSON: ``{"wires": 3, "ops": [["RX", [0.1], [0]], ["CNOT", [], [0, 1]]]}``
(PennyLane gate names, their parameters, their wires). API keys come from
``QDRANT_API_KEY`` / ``PINECONE_API_KEY``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from qstore_pl.cli.args import json_object, positive_int, readable_file
from qstore_pl.support.atomic_file import atomic_write

#: File Qdrant's local mode keeps in every embedded store directory.
_EMBEDDED_MARKER = "meta.json"


def add_db_parser(sub) -> None:
    """Add the ``db`` command group to the ``qstore-pl`` parser's subparsers."""
    db = sub.add_parser("db", help="inspect a quantum-state store (stats, query, export)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument(
        "--path",
        help="embedded store directory; default: $QSTORE_DB_PATH, else the user data dir "
        "(`qstore-pl paths` shows it)",
    )
    where.add_argument("--qdrant-url", help="a Qdrant server (API key: $QDRANT_API_KEY)")
    where.add_argument("--pinecone-host", help="a Pinecone index host (API key: $PINECONE_API_KEY)")

    stats = db_sub.add_parser("stats", parents=[common], help="states per namespace")
    stats.set_defaults(func=_stats)

    query = db_sub.add_parser("query", parents=[common], help="nearest states by fidelity")
    source = query.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--state", type=readable_file, help=".npy file with a state or probability vector"
    )
    source.add_argument(
        "--circuit", type=readable_file, help="JSON circuit file; its final state is the query"
    )
    query.add_argument(
        "--kind",
        choices=("pure", "probs"),
        default="pure",
        help="search pure states or measured distributions",
    )
    query.add_argument("--top-k", type=positive_int, default=5, help="how many states to show")
    query.add_argument(
        "--filter", type=json_object, help='metadata filter as JSON: \'{"backend": "..."}\''
    )
    query.set_defaults(func=_query)

    export = db_sub.add_parser("export", parents=[common], help="write every state as JSON lines")
    export.add_argument("output", help="output file (.jsonl)")
    export.add_argument("--namespace", help="only this namespace, e.g. pure-8q")
    export.set_defaults(func=_export)


def _open(args: argparse.Namespace):
    """The store the arguments name; an embedded one must exist (every ``db`` command
    reads, and opening a mistyped path would create an empty store)."""
    from qstore_pl.db import open_store
    from qstore_pl.db.open import default_store_path

    if args.pinecone_host:
        return open_store("pinecone", index_host=args.pinecone_host)
    if args.qdrant_url:
        return open_store("qdrant", url=args.qdrant_url)
    from qstore_pl.support.limits import excerpt

    path = Path(args.path) if args.path is not None else default_store_path()
    if not (path / _EMBEDDED_MARKER).is_file():
        from qstore_pl.db.errors import StoreError

        given = "--path" if args.path is not None else "the default store (QSTORE_DB_PATH)"
        raise StoreError(
            f"no state store at {excerpt(str(path))} ({given}); check the path: a store "
            "directory is created when states are first recorded"
        )
    return open_store(path=path)


def _stats(args: argparse.Namespace) -> int:
    with _open(args) as store:
        print(store.stats())
    return 0


def circuit_state(path) -> np.ndarray:
    """The final state of a JSON circuit file (see the module notes) over its wires
    ``0 .. wires-1``.

    Raises
    ------
    StateEncodingError
        For a malformed file, an unknown gate or a wire outside ``0 .. wires-1``.
    InputLimitError
        When ``wires`` is over ``max_state_wires`` (see :mod:`qstore_pl.support.limits`).
    """
    import pennylane as qml
    from pennylane.tape import QuantumScript

    from qstore_pl.db.circuits import final_states
    from qstore_pl.db.errors import StateEncodingError
    from qstore_pl.support.limits import InputLimitError, current_limits, excerpt

    try:
        spec = json.loads(Path(path).read_text())
        n_wires, entries = spec["wires"], spec["ops"]
        if type(n_wires) is not int or n_wires < 1 or not isinstance(entries, list):
            raise TypeError("'wires' must be a positive integer and 'ops' a list")
        current_limits().check("max_state_wires", n_wires, f"{path}: 'wires'")
        ops = []
        with qml.QueuingManager.stop_recording():
            for name, params, wires in entries:
                gate = getattr(qml, str(name), None)
                if not (isinstance(gate, type) and issubclass(gate, qml.operation.Operator)):
                    raise StateEncodingError(
                        f"{path}: unknown gate {excerpt(name)}; use PennyLane gate names"
                    )
                if not all(type(w) is int and 0 <= w < n_wires for w in wires):
                    raise StateEncodingError(
                        f"{path}: {name} acts on wires {excerpt(wires)}; wires are 0 .. "
                        f"{n_wires - 1} ('wires': {n_wires})"
                    )
                if not all(_is_numeric(value) for value in params):
                    raise StateEncodingError(
                        f"{path}: {name} has the parameters {excerpt(params)}; gate "
                        "parameters are numbers (or lists of numbers)"
                    )
                ops.append(gate(*params, wires=wires))
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, StateEncodingError | InputLimitError):
            raise
        raise StateEncodingError(
            f"{path}: not a circuit file ({type(err).__name__}: {excerpt(str(err))}); write "
            '{"wires": 2, "ops": [["Hadamard", [], [0]], ["CNOT", [], [0, 1]]]}'
        ) from err
    last_wire = qml.Identity(n_wires - 1)  # the state spans every declared wire
    return final_states(QuantumScript([*ops, last_wire]))[0]


def _is_numeric(value) -> bool:
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def load_state(path) -> np.ndarray:
    """The state or probability vector saved in a ``.npy`` file."""
    from qstore_pl.db.errors import StateEncodingError

    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise StateEncodingError(
            f"{path} is not a .npy array ({err}); save the vector with numpy.save"
        ) from err


def _query(args: argparse.Namespace) -> int:
    state = load_state(args.state) if args.state else circuit_state(args.circuit)
    with _open(args) as store:
        hits = store.query_similar(state, top_k=args.top_k, filter=args.filter, kind=args.kind)
    print(f"{'fidelity':>10}  {'id':<36}  backend / circuit / parameters")
    for hit in hits:
        meta = hit.metadata
        details = " / ".join(
            str(meta.get(k, "-")) for k in ("backend", "circuit_hash", "parameters")
        )
        print(f"{hit.fidelity:>10.6f}  {hit.id:<36}  {details}")
    if not hits:
        print("(no stored states of this kind and width)")
    return 0


def _export(args: argparse.Namespace) -> int:
    count = 0
    with _open(args) as store, atomic_write(args.output) as out:
        for stored in store.states(args.namespace):
            line = {
                "id": stored.id,
                "kind": stored.kind,
                "n_qubits": stored.n_qubits,
                "real": np.real(stored.state).tolist(),
                "imag": np.imag(stored.state).tolist(),
                "metadata": stored.metadata,
            }
            out.write(json.dumps(line) + "\n")
            count += 1
    print(f"exported {count} states to {args.output}")
    return 0
