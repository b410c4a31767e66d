"""OpenQASM 2.0 export and import for the gates of ``qelib1.inc``.

:func:`to_openqasm` writes gates one to one (no decomposition unless asked for) and
prints angles with ``repr``, so :func:`from_openqasm` gets back the same operators with
bit-identical parameters. QASM 2 has no wire labels, no observables and no
hyperparameters: circuits it cannot express raise a ``ValueError`` that points to the
JSON format (:func:`~qstore_pl.circuits.tape_to_json`), which stores everything.

Gate names follow Qiskit's ``qelib1.inc`` (the de-facto standard, a superset of the
one in the OpenQASM 2.0 paper): :data:`QASM_GATES` lists them.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pennylane as qml
from pennylane.measurements import MeasurementProcess
from pennylane.operation import Operator
from pennylane.ops.op_math import Controlled
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.circuits.lowering import lower, real_scalar, wire_index
from qstore_pl.support.limits import Limits, current_limits, excerpt

_Builder = Callable[[list[float], list[int]], Operator]


def _simple(cls) -> _Builder:
    return lambda params, wires: cls(*params, wires=wires)


def _adjoint(cls) -> _Builder:
    return lambda params, wires: qml.adjoint(cls(*params, wires=wires))


def _cu3(params, wires):
    return qml.ctrl(qml.U3(*params, wires=wires[1]), control=wires[0])


#: qelib1 gate name → (builder, number of parameters, number of qubits).
QASM_GATES: dict[str, tuple[_Builder, int, int]] = {
    "id": (_simple(qml.Identity), 0, 1),
    "h": (_simple(qml.Hadamard), 0, 1),
    "x": (_simple(qml.PauliX), 0, 1),
    "y": (_simple(qml.PauliY), 0, 1),
    "z": (_simple(qml.PauliZ), 0, 1),
    "s": (_simple(qml.S), 0, 1),
    "sdg": (_adjoint(qml.S), 0, 1),
    "t": (_simple(qml.T), 0, 1),
    "tdg": (_adjoint(qml.T), 0, 1),
    "sx": (_simple(qml.SX), 0, 1),
    "sxdg": (_adjoint(qml.SX), 0, 1),
    "rx": (_simple(qml.RX), 1, 1),
    "ry": (_simple(qml.RY), 1, 1),
    "rz": (_simple(qml.RZ), 1, 1),
    "p": (_simple(qml.PhaseShift), 1, 1),
    "u1": (_simple(qml.U1), 1, 1),
    "u2": (_simple(qml.U2), 2, 1),
    "u3": (_simple(qml.U3), 3, 1),
    "cx": (_simple(qml.CNOT), 0, 2),
    "cy": (_simple(qml.CY), 0, 2),
    "cz": (_simple(qml.CZ), 0, 2),
    "ch": (_simple(qml.CH), 0, 2),
    "swap": (_simple(qml.SWAP), 0, 2),
    "crx": (_simple(qml.CRX), 1, 2),
    "cry": (_simple(qml.CRY), 1, 2),
    "crz": (_simple(qml.CRZ), 1, 2),
    "cp": (_simple(qml.ControlledPhaseShift), 1, 2),
    "cu3": (_cu3, 3, 2),
    "rxx": (_simple(qml.IsingXX), 1, 2),
    "rzz": (_simple(qml.IsingZZ), 1, 2),
    "ccx": (_simple(qml.Toffoli), 0, 3),
    "cswap": (_simple(qml.CSWAP), 0, 3),
}
#: Names read as the gate they alias (QASM 2 built-ins and older qelib1 names).
QASM_ALIASES = {"U": "u3", "u": "u3", "CX": "cx", "cu1": "cp", "phase": "p"}

#: PennyLane operator name → qelib1 gate written by :func:`to_openqasm`.
PENNYLANE_TO_QASM = {
    "Identity": "id",
    "Hadamard": "h",
    "PauliX": "x",
    "PauliY": "y",
    "PauliZ": "z",
    "S": "s",
    "Adjoint(S)": "sdg",
    "T": "t",
    "Adjoint(T)": "tdg",
    "SX": "sx",
    "Adjoint(SX)": "sxdg",
    "RX": "rx",
    "RY": "ry",
    "RZ": "rz",
    "PhaseShift": "p",
    "U1": "u1",
    "U2": "u2",
    "U3": "u3",
    "CNOT": "cx",
    "CY": "cy",
    "CZ": "cz",
    "CH": "ch",
    "SWAP": "swap",
    "CRX": "crx",
    "CRY": "cry",
    "CRZ": "crz",
    "ControlledPhaseShift": "cp",
    "IsingXX": "rxx",
    "IsingZZ": "rzz",
    "Toffoli": "ccx",
    "CSWAP": "cswap",
}

_JSON_HINT = "use qstore_pl.circuits.tape_to_json, which stores any circuit exactly"


# ----------------------------------------------------------------------------- export


def _qasm_name(op: Operator) -> str | None:
    if isinstance(op, qml.Barrier):
        return "barrier"
    if (
        isinstance(op, Controlled)
        and isinstance(op.base, qml.U3)
        and len(op.control_wires) == 1
        and all(op.control_values)
        and not op.work_wires
    ):
        return "cu3"
    name = PENNYLANE_TO_QASM.get(op.name)
    if name is not None and len(op.wires) != QASM_GATES[name][2]:
        return None  # e.g. an Identity on several wires
    return name


def _angle(value, op: Operator) -> str:
    return repr(real_scalar(value, op, "QASM"))


def to_openqasm(
    tape_or_ops: QuantumScript | Iterable[Operator],
    measure: bool = False,
    decompose: bool = False,
    wire_order: Sequence | None = None,
) -> str:
    """The circuit as OpenQASM 2.0 text using ``qelib1.inc`` gates.

    Parameters
    ----------
    tape_or_ops : QuantumScript or iterable of Operator
        The circuit; a tape's measurements are not written (QASM 2 only measures in
        the computational basis, see ``measure``).
    measure : bool
        Declare ``creg c[n]`` and measure every qubit into it at the end.
    decompose : bool
        Write operators that have no qelib1 gate as their decomposition (recursively)
        instead of raising.
    wire_order : Sequence, optional
        Wire labels in qubit order. By default non-negative integer wires are their own
        qubit index and other labels are numbered in the circuit's wire order.

    Raises
    ------
    ValueError
        Naming the operator QASM 2 cannot express (and suggesting the JSON format), or a
        parameter that is not a finite real scalar.
    """
    if isinstance(tape_or_ops, QuantumScript):
        ops = list(tape_or_ops.operations)
        all_wires = tape_or_ops.wires
    else:
        ops = list(tape_or_ops)
        for op in ops:
            if not isinstance(op, Operator):
                raise TypeError(f"to_openqasm expects a tape or operators, got {op!r}")
        all_wires = Wires.all_wires([op.wires for op in ops])
    ops = lower(
        ops, lambda op: _qasm_name(op) is not None, "OpenQASM 2.0 (qelib1)", decompose, _JSON_HINT
    )
    index = wire_index(all_wires, wire_order)
    n_qubits = max(index.values(), default=-1) + 1
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{max(n_qubits, 1)}];"]
    if measure:
        lines.append(f"creg c[{max(n_qubits, 1)}];")
    for op in ops:
        name = _qasm_name(op)
        params = op.base.data if name == "cu3" else op.data
        if name == "cu3":
            qubits = [*op.control_wires, *op.base.wires]
        else:
            qubits = list(op.wires)
        args = ",".join(f"q[{index[w]}]" for w in qubits)
        angles = f"({','.join(_angle(p, op) for p in params)})" if params else ""
        lines.append(f"{name}{angles} {args};")
    if measure:
        lines += [f"measure q[{i}] -> c[{i}];" for i in range(n_qubits)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- import

# operator.add & co. take any arithmetic type: QASM 2 applies them to floats, QASM 3 to
# the Linear forms of its parameters
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCTIONS = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "ln": math.log,
    "sqrt": math.sqrt,
}


def evaluate_angle(text: str, limits: Limits | None = None) -> float:
    """Evaluate a QASM 2 parameter expression: numbers, ``pi``, ``+ - * / ^``, parentheses
    and ``sin cos tan exp ln sqrt``. A plain number is read with ``float`` (exactly).

    Arithmetic is in floats, so ``9^9^9`` overflows at once instead of computing a
    huge integer; expressions are at most ``limits.max_expression`` characters.
    """
    limits = limits or current_limits()
    text = text.strip()
    limits.check("max_expression", len(text), f"the QASM expression {excerpt(text)}")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as err:
        raise ValueError(f"cannot parse the QASM expression {excerpt(text)}") from err
    try:
        value = _eval(tree.body, text)
    except (ZeroDivisionError, OverflowError, ValueError, RecursionError) as err:
        raise ValueError(f"cannot evaluate the QASM expression {excerpt(text)}: {err}") from err
    if not isinstance(value, float) or not math.isfinite(value):
        raise ValueError(
            f"the QASM expression {excerpt(text)} is {value!r}, not a finite real angle"
        )
    return value


def _eval(node, text: str) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        if not isinstance(node.value, bool):
            return float(node.value)
    if isinstance(node, ast.Name) and node.id == "pi":
        return math.pi
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, text), _eval(node.right, text))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, text))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and len(node.args) == 1
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](_eval(node.args[0], text))
    raise ValueError(
        f"unsupported element {excerpt(ast.unparse(node))} in the QASM expression "
        f"{excerpt(text)} "
        f"(allowed: numbers, pi, + - * / ^, {', '.join(_FUNCTIONS)})"
    )


_STATEMENT = re.compile(r"^([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*(.*)$", re.DOTALL)
_OPERAND = re.compile(r"^([A-Za-z_]\w*)\s*(?:\[\s*(\d+)\s*\])?$")


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


class _Registers:
    def __init__(self, limits: Limits):
        self.quantum: dict[str, tuple[int, int]] = {}  # name -> (offset, size)
        self.classical: dict[str, int] = {}
        self.size = 0
        self.limits = limits

    def declare(self, kind: str, rest: str, where: str) -> None:
        match = re.fullmatch(r"([A-Za-z_]\w*)\s*\[\s*(\d{1,12})\s*\]", rest.strip())
        if not match:
            raise ValueError(
                f"{where}: malformed register declaration {kind} {excerpt(rest.strip())}"
            )
        name, size = match.group(1), int(match.group(2))
        if name in self.quantum or name in self.classical:
            raise ValueError(f"{where}: register {name!r} is declared twice")
        # classical bits cost nothing, but a bound keeps the same rule for both
        self.limits.check("max_wires", size, f"{where}: {kind} {name}")
        if kind == "qreg":
            self.limits.check("max_wires", self.size + size, f"{where}: qubits declared")
            self.quantum[name] = (self.size, size)
            self.size += size
        else:
            self.classical[name] = size

    def qubits(self, operand: str, where: str) -> list[int]:
        """Wire indices an operand names: one for ``q[i]``, the register for ``q``."""
        match = _OPERAND.match(operand)
        if not match or match.group(1) not in self.quantum:
            raise ValueError(
                f"{where}: {excerpt(operand)} is not a declared quantum register or qubit"
            )
        offset, size = self.quantum[match.group(1)]
        if match.group(2) is None:
            return list(range(offset, offset + size))
        i = int(match.group(2))
        if i >= size:
            raise ValueError(f"{where}: {operand!r} is outside register size {size}")
        return [offset + i]


def _statements(text: str) -> Iterator[tuple[int, str]]:
    """(line number, statement) pairs, comments removed, in one pass over the text."""
    text = re.sub(r"//[^\n]*", "", text)
    brace = re.search(r"[{}]", text)
    if brace:
        raise ValueError(
            f"line {text.count(chr(10), 0, brace.start()) + 1}: custom gate definitions "
            "(gate ... { }) are not supported; use qelib1 gates only"
        )
    line = 1  # line number at ``start``; counting only new text keeps parsing linear
    start = 0
    for match in re.finditer(";", text):
        segment = text[start : match.start()]
        stripped = segment.lstrip()
        if stripped:
            yield line + segment.count("\n", 0, len(segment) - len(stripped)), stripped.rstrip()
        line += segment.count("\n")
        start = match.end()
    rest = text[start:]
    if rest.strip():
        line += rest.count("\n", 0, len(rest) - len(rest.lstrip()))
        raise ValueError(f"line {line}: statement {excerpt(rest.strip())} lacks its ';'")


def from_openqasm(text: str, measurements: Sequence[MeasurementProcess] = ()) -> QuantumScript:
    """Parse OpenQASM 2.0 text with ``qelib1.inc`` gates into a tape.

    Qubits of the registers become wires ``0, 1, ...`` in declaration order. ``measure``
    statements are checked but not turned into measurements: pass the measurement
    processes the tape should have in ``measurements``. ``barrier`` becomes
    ``qml.Barrier``; a gate applied to whole registers is applied to each qubit in turn,
    as in QASM 2.

    Raises
    ------
    ValueError
        With the line number, for unknown gates, wrong arities, undeclared registers,
        ``reset``, classical control, custom gate definitions or OpenQASM 3.
    """
    if not isinstance(text, str):
        raise TypeError(f"from_openqasm expects QASM text, got {type(text).__name__}")
    limits = current_limits()
    registers = _Registers(limits)
    ops: list[Operator] = []
    seen_header = False
    for line, statement in _statements(text):
        where = f"line {line}"
        match = _STATEMENT.match(statement)
        if not match:
            raise ValueError(f"{where}: cannot parse {excerpt(statement)}")
        name, param_text, rest = match.group(1), match.group(2), match.group(3).strip()
        if name == "OPENQASM":
            if not re.fullmatch(r"2(\.\d+)?", rest):
                raise ValueError(
                    f"{where}: only OpenQASM 2 is supported, got version {excerpt(rest)}"
                )
            seen_header = True
            continue
        if name == "include":
            if rest.strip('"') != "qelib1.inc":
                raise ValueError(f"{where}: only qelib1.inc can be included, got {excerpt(rest)}")
            continue
        if name in ("qreg", "creg"):
            registers.declare(name, rest, where)
            continue
        if name == "measure":
            parts = [p.strip() for p in rest.split("->")]
            if len(parts) != 2:
                raise ValueError(f"{where}: malformed measure statement {excerpt(statement)}")
            registers.qubits(parts[0], where)
            continue
        if name == "barrier":
            wires = [w for operand in _split_top(rest) for w in registers.qubits(operand, where)]
            limits.check("max_operations", len(ops) + 1, f"{where}: operations")
            with qml.QueuingManager.stop_recording():
                ops.append(qml.Barrier(wires=wires))
            continue
        if name in ("reset", "if", "opaque", "gate"):
            raise ValueError(f"{where}: {name!r} is not supported by from_openqasm")
        ops += _gate(name, param_text, rest, registers, where, limits.max_operations - len(ops))
    if not seen_header:
        raise ValueError("the text does not start with 'OPENQASM 2.0;'")
    return QuantumScript(ops, list(measurements))


def _gate(
    name: str, param_text, rest: str, registers: _Registers, where: str, room: int
) -> list[Operator]:
    """The operators of one gate statement; ``room``: how many more the circuit may hold."""
    key = QASM_ALIASES.get(name, name)
    if key not in QASM_GATES:
        raise ValueError(
            f"{where}: unknown gate {excerpt(name)}; supported qelib1 gates: "
            f"{', '.join(QASM_GATES)}"
        )
    builder, n_params, n_qubits = QASM_GATES[key]
    limits = registers.limits
    try:
        params = [evaluate_angle(p, limits) for p in _split_top(param_text)] if param_text else []
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if len(params) != n_params:
        raise ValueError(f"{where}: {name} takes {n_params} parameters, got {len(params)}")
    operands = [registers.qubits(o, where) for o in _split_top(rest)] if rest else []
    if len(operands) != n_qubits:
        raise ValueError(f"{where}: {name} acts on {n_qubits} qubits, got {len(operands)}")
    sizes = {len(o) for o in operands if len(o) > 1}
    if len(sizes) > 1:
        raise ValueError(f"{where}: registers of different sizes in one {name}")
    repeat = sizes.pop() if sizes else 1
    if repeat > room:
        limits.check(
            "max_operations", limits.max_operations - room + repeat, f"{where}: operations"
        )
    out = []
    with qml.QueuingManager.stop_recording():
        for k in range(repeat):
            wires = [o[k] if len(o) > 1 else o[0] for o in operands]
            if len(set(wires)) != len(wires):
                raise ValueError(f"{where}: {name} repeats a qubit {wires}")
            out.append(builder(params, wires))
    return out
