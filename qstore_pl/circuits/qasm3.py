"""OpenQASM 3 export and import, with symbolic parameters as ``input`` variables.

Beside the OpenQASM 2 module (:mod:`~qstore_pl.circuits.qasm`), for what QASM 2 cannot
say: symbols (``input float[64] x;``, ``input array[float[64], 5] w;`` and angles
such as ``2.0*w[1]``), controls of any gate (``ctrl @``, ``negctrl @``), inverses
(``inv @``), global phase (``gphase``) and measurements into named bits
(``c[0] = measure q[1];``).

Gates are those of ``stdgates.inc`` plus ``rxx``, ``ryy`` and ``rzz``, which
:func:`to_qasm3` defines in the text when it uses them; :func:`from_qasm3` reads those
three definitions by name (they are the standard ones) and rejects other gate
definitions, control flow, subroutines, resets and ``pow @``. Qubits of the ``qubit``
registers are wires ``0, 1, ...`` in declaration order; writing, ``wire_order[i]`` (by
default: non-negative integer wires are their own index) is ``q[i]``. Final
measurements become one ``qml.counts`` (or ``sample``/``probs``) over the measured qubits
in classical-bit order, and back.

PennyLane's ``qml.from_qasm3`` (needs the ``openqasm3`` parser, not installed with
PennyLane) and ``qml.to_openqasm`` (OpenQASM 2) take numbers only; the angles here stay
symbolic, and a circuit read back binds to the same unitary.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Sequence

import pennylane as qml
from pennylane.operation import Operator
from pennylane.ops.op_math import Controlled
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.circuits.angles import Linear, build_operators, symbol_name
from qstore_pl.circuits.lowering import (
    MEASUREMENTS,
    circuit_or_parametrized,
    circuit_parts,
    lower,
    measured_wires,
    real_scalar,
    unwrap,
    wire_index,
)
from qstore_pl.circuits.parametrized import ParametrizedCircuit
from qstore_pl.circuits.qasm import (
    _BINARY,
    _FUNCTIONS,
    _UNARY,
    PENNYLANE_TO_QASM,
    QASM_ALIASES,
    QASM_GATES,
    _Registers,
    _split_top,
    _statements,
)
from qstore_pl.circuits.symbol import Symbol
from qstore_pl.support.limits import current_limits, excerpt

#: Gates of OpenQASM 3's ``stdgates.inc``.
STDGATES = frozenset(
    "p x y z h s sdg t tdg sx rx ry rz cx cy cz cp crx cry crz ch swap ccx cswap cu CX "
    "phase cphase id u1 u2 u3".split()
)
#: Gates outside ``stdgates.inc``: the definition written (and trusted when read).
DEFINITIONS = {
    "rxx": "gate rxx(theta) a, b { h a; h b; cx a, b; rz(theta) b; cx a, b; h a; h b; }",
    "ryy": (
        "gate ryy(theta) a, b { rx(pi/2) a; rx(pi/2) b; cx a, b; rz(theta) b; cx a, b; "
        "rx(-pi/2) a; rx(-pi/2) b; }"
    ),
    "rzz": "gate rzz(theta) a, b { cx a, b; rz(theta) b; cx a, b; }",
}
#: PennyLane operator name -> QASM 3 gate written by :func:`to_qasm3`.
PENNYLANE_TO_QASM3 = {
    **{k: v for k, v in PENNYLANE_TO_QASM.items() if v in STDGATES or v in DEFINITIONS},
    "Adjoint(SX)": "inv @ sx",
    "IsingYY": "ryy",
}
_QASM3_TO_PENNYLANE = {v: k for k, v in PENNYLANE_TO_QASM3.items()}
_GATES = {**QASM_GATES, "ryy": (lambda p, w: qml.IsingYY(*p, wires=w), 1, 2)}
_ALIASES = {**QASM_ALIASES, "cphase": "cp"}
_CONSTANTS = {"pi": math.pi, "π": math.pi, "tau": 2 * math.pi, "τ": 2 * math.pi, "euler": math.e}


# ----------------------------------------------------------------------------- writing


def to_qasm3(
    circuit: QuantumScript | ParametrizedCircuit | Iterable[Operator],
    wire_order: Sequence | None = None,
    decompose: bool = False,
) -> str:
    """The circuit as OpenQASM 3 text; Symbols become ``input`` variables.

    Parameters
    ----------
    circuit : QuantumScript, ParametrizedCircuit or iterable of Operator
        Measurements may be ``qml.counts``/``sample``/``probs`` without an observable;
        they become ``c[k] = measure q[i];`` (bit ``k``: the ``k``-th measured wire).
    wire_order : Sequence, optional
        Wire labels in qubit order.
    decompose : bool
        Write operators QASM 3 has no gate for here as their decomposition.

    Raises
    ------
    ValueError
        Naming the operator (pass ``decompose=True``) or measurement it cannot express.
    """
    ops, measurements, symbols = circuit_parts(circuit, "to_qasm3")
    ops = lower(ops, _supported, "OpenQASM 3 (stdgates.inc)", decompose)
    all_wires = Wires.all_wires([op.wires for op in ops] + [m.wires for m in measurements])
    index = wire_index(all_wires, wire_order)
    measured = measured_wires(measurements, all_wires, "to_qasm3", "OpenQASM 3")
    n = max(max(index.values(), default=-1) + 1, 1)
    body = []
    for op in ops:
        text, wires = _call(op)
        operands = ", ".join(f"q[{index[w]}]" for w in wires)
        body.append(f"{text} {operands};" if operands else f"{text};")
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";']
    lines += [DEFINITIONS[g] for g in sorted(DEFINITIONS) if any(f"{g}(" in b for b in body)]
    for name, shape in symbols.items():
        kind = f"array[float[64], {', '.join(map(str, shape))}]" if shape else "float[64]"
        lines.append(f"input {kind} {name};")
    lines.append(f"qubit[{n}] q;")
    if measured:
        lines.append(f"bit[{len(measured)}] c;")
    lines += body
    lines += [f"c[{k}] = measure q[{index[w]}];" for k, w in enumerate(measured)]
    return "\n".join(lines) + "\n"


def _supported(op: Operator) -> bool:
    if isinstance(op, qml.Barrier | qml.GlobalPhase):
        return True
    name = PENNYLANE_TO_QASM3.get(op.name)
    if name is not None:
        return len(op.wires) == _GATES[name.split()[-1]][2]
    return isinstance(op, Controlled) and not op.work_wires and _supported(op.base)


def _call(op: Operator) -> tuple[str, list]:
    """The gate call (modifiers, name, angles) and the wires it acts on, in order."""
    if isinstance(op, qml.Barrier):
        return "barrier", list(op.wires)
    if isinstance(op, qml.GlobalPhase):  # gphase(t) is e^{i t}, qml.GlobalPhase(t) e^{-i t}
        return f"gphase({_text(-1 * unwrap(op.data[0]), op)})", []
    if op.name not in PENNYLANE_TO_QASM3:  # a Controlled operator of a known base
        base, wires = _call(op.base)
        modifiers = "".join("ctrl @ " if v else "negctrl @ " for v in op.control_values)
        return modifiers + base, [*op.control_wires, *wires]
    name = PENNYLANE_TO_QASM3[op.name]
    angles = f"({', '.join(_text(p, op) for p in op.data)})" if op.data else ""
    return name + angles, list(op.wires)


def _text(p, op: Operator) -> str:
    p = unwrap(p)
    if isinstance(p, Symbol):
        name = symbol_name(p).replace(",", ", ")
        return name if p.scale == 1.0 else f"{p.scale!r}*{name}"
    return repr(real_scalar(p, op, "OpenQASM 3"))


# ----------------------------------------------------------------------------- reading

_DECLARATION = re.compile(r"^(qubit|bit)\s*(?:\[\s*(\d{1,12})\s*\])?\s+([A-Za-z_]\w*)$")
_INPUT = re.compile(
    r"^input\s+(?:(?:float|angle)(?:\s*\[\s*\d+\s*\])?|array\s*\[\s*(?:float|angle)"
    r"(?:\s*\[\s*\d+\s*\])?\s*,\s*(\d+(?:\s*,\s*\d+)*)\s*\])\s+([A-Za-z_]\w*)$"
)
_MODIFIER = re.compile(r"^(inv|ctrl|negctrl|pow)\s*(?:\(([^()]*)\))?\s*@\s*")
_GATE_DEFINITION = re.compile(r"\bgate\s+([A-Za-z_]\w*)[^{]*\{[^{}]*\}")
_UNSUPPORTED = (
    "reset if else for while def defcal cal box let const float int uint bool angle "
    "complex duration stretch delay output extern return break continue end"
).split()


def from_qasm3(
    text: str, measurement: str | None = "counts"
) -> QuantumScript | ParametrizedCircuit:
    """Parse OpenQASM 3 text into a tape, or a
    :class:`~qstore_pl.circuits.ParametrizedCircuit` when angles use ``input`` variables.

    Parameters
    ----------
    text : str
        OpenQASM 3 (see the module docstring for what is read).
    measurement : {"counts", "sample", "probs"} or None
        What final measurements become; ``None`` ignores them.

    Raises
    ------
    ValueError
        With the line number, for unknown gates, wrong arities, undeclared names,
        non-linear angles of inputs, mid-circuit measurements and the constructs this
        reader does not take.
    """
    if not isinstance(text, str):
        raise TypeError(f"from_qasm3 expects QASM text, got {type(text).__name__}")
    if measurement is not None and measurement not in MEASUREMENTS:
        raise ValueError(f"measurement must be one of {sorted(MEASUREMENTS)} or None")
    reader = _Reader()
    for line, statement in _statements(_strip(text)):
        reader.statement(statement, f"line {line}")
    if not reader.seen_header:
        raise ValueError("the text does not start with 'OPENQASM 3.0;'")
    measurements = []
    if reader.measured and measurement is not None:
        wires = [reader.measured[bit] for bit in sorted(reader.measured)]
        measurements.append(MEASUREMENTS[measurement](wires=wires))
    return circuit_or_parametrized(reader.ops, measurements, reader.inputs)


def _strip(text: str) -> str:
    """Comments and the known gate definitions blanked out (line numbers kept)."""

    def blank(match: re.Match) -> str:
        return "\n" * match.group(0).count("\n")

    text = re.sub(r"/\*.*?\*/", blank, text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", "", text)

    def definition(match: re.Match) -> str:
        if match.group(1) not in DEFINITIONS:
            line = text.count("\n", 0, match.start()) + 1
            raise ValueError(
                f"line {line}: the definition of gate {match.group(1)!r} is not supported "
                f"(only {', '.join(DEFINITIONS)}, read as the standard gates); inline it"
            )
        return blank(match)

    text = _GATE_DEFINITION.sub(definition, text)
    brace = re.search(r"[{}]", text)
    if brace:
        line = text.count("\n", 0, brace.start()) + 1
        raise ValueError(
            f"line {line}: blocks (control flow, subroutines, boxes) are not supported by "
            "from_qasm3; unroll them (or use qml.from_qasm3 with the openqasm3 parser)"
        )
    return text


class _Reader:
    def __init__(self):
        self.limits = current_limits()
        self.registers = _Registers(self.limits)
        self.bits: dict[str, tuple[int, int]] = {}  # name -> (offset, size)
        self.n_bits = 0
        self.inputs: dict[str, tuple[int, ...]] = {}
        self.ops: list[Operator] = []
        self.measured: dict[int, int] = {}  # bit -> wire
        self.seen_header = False

    def statement(self, statement: str, where: str) -> None:
        first = re.match(r"[A-Za-z_]\w*", statement)
        word = first.group(0) if first else ""
        if word == "OPENQASM":
            if not re.fullmatch(r"OPENQASM\s+3(\.\d+)?", statement):
                raise ValueError(f"{where}: expected OPENQASM 3, got {excerpt(statement)}")
            self.seen_header = True
        elif word == "include":
            if statement.split(None, 1)[-1].strip().strip('"') != "stdgates.inc":
                raise ValueError(f"{where}: only stdgates.inc can be included")
        elif word == "input":
            self._input(statement, where)
        elif word in ("qubit", "bit", "qreg", "creg"):
            self._declare(statement, where)
        elif "measure" in re.findall(r"[A-Za-z_]\w*", statement)[:3]:
            self._measure(statement, where)
        elif word in _UNSUPPORTED:
            raise ValueError(f"{where}: {word!r} is not supported by from_qasm3")
        else:
            self._gate(statement, where)

    def _input(self, statement: str, where: str) -> None:
        match = _INPUT.match(statement)
        if not match:
            raise ValueError(
                f"{where}: only float, angle and array[float, ...] inputs are read, got "
                f"{excerpt(statement)}"
            )
        shape = tuple(int(n) for n in match.group(1).split(",")) if match.group(1) else ()
        self.inputs[match.group(2)] = shape

    def _declare(self, statement: str, where: str) -> None:
        if statement.startswith(("qreg", "creg")):
            kind, rest = statement.split(None, 1)
            match = re.fullmatch(r"([A-Za-z_]\w*)\s*\[\s*(\d{1,12})\s*\]", rest.strip())
            if not match:
                raise ValueError(
                    f"{where}: malformed register declaration {kind} {excerpt(rest.strip())}"
                )
            name, size = match.group(1), match.group(2)
        else:
            match = _DECLARATION.match(statement)
            if not match:
                raise ValueError(f"{where}: malformed declaration {excerpt(statement)}")
            kind = "qreg" if match.group(1) == "qubit" else "creg"
            name, size = match.group(3), match.group(2) or "1"
        if kind == "qreg":
            self.registers.declare("qreg", f"{name}[{size}]", where)
        else:
            self.registers.declare("creg", f"{name}[{size}]", where)
            self.bits[name] = (self.n_bits, int(size))
            self.n_bits += int(size)

    def _bit_indices(self, operand: str, where: str) -> list[int]:
        match = re.fullmatch(r"([A-Za-z_]\w*)\s*(?:\[\s*(\d+)\s*\])?", operand.strip())
        if not match or match.group(1) not in self.bits:
            raise ValueError(f"{where}: {excerpt(operand)} is not a declared bit register")
        offset, size = self.bits[match.group(1)]
        if match.group(2) is None:
            return list(range(offset, offset + size))
        if int(match.group(2)) >= size:
            raise ValueError(f"{where}: {operand!r} is outside register size {size}")
        return [offset + int(match.group(2))]

    def _measure(self, statement: str, where: str) -> None:
        if "=" in statement:
            target, source = statement.split("=", 1)
            source = re.sub(r"^\s*measure\s+", "", source)
        elif "->" in statement:
            source, target = statement.split("->", 1)
            source = re.sub(r"^\s*measure\s+", "", source)
        else:
            raise ValueError(f"{where}: a measurement must store its bits ({excerpt(statement)})")
        wires = self.registers.qubits(source.strip(), where)
        bits = self._bit_indices(target, where)
        if len(bits) != len(wires):
            raise ValueError(f"{where}: {len(wires)} qubits measured into {len(bits)} bits")
        self.measured.update(zip(bits, wires))

    def _gate(self, statement: str, where: str) -> None:
        modifiers = []
        while match := _MODIFIER.match(statement):
            modifiers.append((match.group(1), match.group(2)))
            statement = statement[match.end() :]
        match = re.match(r"^([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*(.*)$", statement, re.DOTALL)
        if not match:
            raise ValueError(f"{where}: cannot parse {excerpt(statement)}")
        name, param_text, rest = match.group(1), match.group(2), match.group(3).strip()
        operands = [self.registers.qubits(o, where) for o in _split_top(rest)] if rest else []
        if name == "barrier" and not modifiers:
            self.ops.append(qml.Barrier(wires=[w for o in operands for w in o]))
            return
        angles = [self._angle(p, where) for p in _split_top(param_text)] if param_text else []
        n_controls = 0
        for kind, arg in modifiers:
            if kind == "pow":
                raise ValueError(f"{where}: 'pow @' is not supported; write the gate's power out")
            if kind != "inv":
                n_controls += int(arg) if arg else 1
        sizes = {len(o) for o in operands if len(o) > 1}
        if len(sizes) > 1:
            raise ValueError(f"{where}: registers of different sizes in one {name}")
        for k in range(sizes.pop() if sizes else 1):
            wires = [o[k] if len(o) > 1 else o[0] for o in operands]
            if len(set(wires)) != len(wires):
                raise ValueError(f"{where}: {name} repeats a qubit {wires}")
            if set(wires) & set(self.measured.values()):
                raise ValueError(
                    f"{where}: {name} acts on a qubit measured before it; from_qasm3 reads "
                    "only final measurements"
                )
            ops = self._base(name, angles, wires[n_controls:], where)
            ops = self._modified(ops, modifiers, wires[:n_controls])
            self.limits.check("max_operations", len(self.ops) + len(ops), f"{where}: operations")
            self.ops += ops

    def _base(self, name: str, angles: list[Linear], wires: list, where: str) -> list[Operator]:
        if name == "gphase":
            if len(angles) != 1 or wires:
                raise ValueError(f"{where}: gphase takes one angle and no qubits")
            return build_operators(
                lambda p: qml.GlobalPhase(p[0]), "GlobalPhase", [-angles[0]], where
            )
        key = _ALIASES.get(name, name)
        if key not in _GATES:
            raise ValueError(
                f"{where}: unknown gate {excerpt(name)}; supported: gphase, "
                f"{', '.join(sorted(set(_GATES) - {'cu3', 'sxdg'}))}"
            )
        builder, n_params, n_qubits = _GATES[key]
        if len(angles) != n_params:
            raise ValueError(f"{where}: {name} takes {n_params} parameters, got {len(angles)}")
        if len(wires) != n_qubits:
            raise ValueError(f"{where}: {name} acts on {n_qubits} qubits, got {len(wires)}")
        pennylane_name = _QASM3_TO_PENNYLANE.get(key, key)
        with qml.QueuingManager.stop_recording():
            return build_operators(lambda p: builder(p, wires), pennylane_name, angles, where)

    @staticmethod
    def _modified(ops: list[Operator], modifiers: list, controls: list) -> list[Operator]:
        """Apply modifiers right to left; each ``ctrl(n)`` takes the ``n`` qubits just
        before those already used."""
        end = len(controls)
        with qml.QueuingManager.stop_recording():
            for kind, arg in reversed(modifiers):
                if kind == "inv":
                    ops = [qml.adjoint(op) for op in reversed(ops)]
                    continue
                n = int(arg) if arg else 1
                wires, end = controls[end - n : end], end - n
                values = [kind == "ctrl"] * n
                ops = [qml.ctrl(op, control=wires, control_values=values) for op in ops]
        return ops

    def _angle(self, text: str, where: str) -> Linear:
        text = text.strip()
        self.limits.check("max_expression", len(text), f"{where}: the expression {excerpt(text)}")
        try:
            tree = ast.parse(text.replace("π", "pi").replace("τ", "tau"), mode="eval")
        except (SyntaxError, ValueError, MemoryError, RecursionError) as err:
            raise ValueError(f"{where}: cannot parse the expression {excerpt(text)}") from err
        try:
            return self._eval(tree.body, text, where)
        except (ZeroDivisionError, OverflowError, RecursionError) as err:
            raise ValueError(f"{where}: cannot evaluate {excerpt(text)}: {err}") from err
        except ValueError as err:
            raise ValueError(f"{where}: in {excerpt(text)}: {err}") from None

    def _eval(self, node, text: str, where: str) -> Linear:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return Linear.of(node.value)
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return Linear.of(_CONSTANTS[node.id])
        if isinstance(node, ast.Name | ast.Subscript):
            return Linear.of(self._symbol(node, where))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self._eval(node.left, text, where), self._eval(node.right, text, where)
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self._eval(node.operand, text, where))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and len(node.args) == 1
        ):
            return Linear.of(_FUNCTIONS[node.func.id](float(self._eval(node.args[0], text, where))))
        raise ValueError(
            f"unsupported element {excerpt(ast.unparse(node))} (allowed: numbers, pi, tau, "
            f"euler, inputs, + - * / **, {', '.join(_FUNCTIONS)})"
        )

    def _symbol(self, node, where: str) -> Symbol:
        index: list[int] = []
        while isinstance(node, ast.Subscript):
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            values = [
                p.value for p in parts if isinstance(p, ast.Constant) and type(p.value) is int
            ]
            if len(values) != len(parts):
                raise ValueError(f"{ast.unparse(node)}: indices must be integer constants")
            index = values + index
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.inputs:
            name = ast.unparse(node)
            raise ValueError(f"{name!r} is not a declared input (declare: input float[64] {name};)")
        shape = self.inputs[node.id]
        if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
            raise ValueError(f"{node.id}{index} does not index input {node.id} of shape {shape}")
        return Symbol(node.id, tuple(index))
