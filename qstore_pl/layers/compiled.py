"""The compiled path of framework layers: record the circuit once, bind arrays per call.

Through a QNode, every call of a layer builds a tape, converts its parameters and
preprocesses it (about 2 ms of Python at 4-8 qubits, more than the simulation). A
layer on ``qstore.router`` instead records its circuit once per structure (input
shape, weight shapes) with placeholder symbols, decomposes it for the batched engine,
and keeps where each gate's angle comes from: one element of an input or weight times
a constant, or a sum of such elements, constants and products of two of them (data
re-uploading's ``w * x + b``, ``x[0] * x[1]``). Each call then binds the batch's inputs
and weights straight into the engine's compiled plans through the router's
:class:`~qstore_pl.router.execution.compiled.CompiledDoor` (routing, logging, tracker
and callbacks as for any routed run), and the backward pass is one adjoint sweep. A
call with no backward pass after it is looked up in the router's result cache first,
as the router's own executions are.

The recording must mean the same circuit for every input. It refuses, and the layer
takes the QNode path with one warning naming why, when the circuit does anything with
an input or weight other than pass such an expression into a gate: other arithmetic
(powers, functions, products of three values), comparisons (Python control flow),
conversion to a number (input-dependent wires), as well as when the first real
call's circuit differs from the recording, and when the router picks a backend that
runs tapes only (lightning at width, IonQ). With finite shots, outputs are sampled
from the final states and derivatives follow PennyLane's parameter-shift rule, each
shifted circuit a row of the engine's table
(:mod:`~qstore_pl.devices.batched.sampled`). When the engine fails on a batch
(a backend fault, forward or VJP), the batch runs again through the QNode, which
routes and falls back as the router does, and the router's report lists the failure
(:class:`~qstore_pl.router.execution.compiled.EngineFailure`); input errors raise. A
router whose groups go to a Dask cluster runs compiled batches in this process, and
says so (:data:`~qstore_pl.router.execution.compiled.IN_THIS_PROCESS`).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Callable, Sequence

import autoray
import numpy as np
import pennylane as qml
from pennylane.devices.preprocess import decompose
from pennylane.measurements import ExpectationMP, MeasurementProcess, ProbabilityMP
from pennylane.tape import QuantumScript

from qstore_pl.circuits.symbol import Symbol
from qstore_pl.devices.batched.binding import AngleExpression, AngleSource, Source, ValueProgram
from qstore_pl.devices.batched.device import _supported_gate
from qstore_pl.interfaces.host import HostFunction
from qstore_pl.router.execution.compiled import (
    CompiledCircuit,
    CompiledForward,
    EngineFailure,
    Refusal,
)
from qstore_pl.router.execution.faults import after_failure

#: The QNode argument that takes the layer's data (TorchLayer's convention).
INPUT_ARG = "inputs"
#: Differentiation methods the compiled path gives the same derivatives for.
_DEVICE_METHODS = ("best", "adjoint", "device")
#: ... and with finite shots (the parameter-shift rule, sampled).
_SHOTS_METHODS = ("best", "parameter-shift")


class CompiledPathWarning(UserWarning):
    """A layer's circuit runs through its QNode instead of the compiled path (says why)."""


class StructureDependsOnValues(TypeError):
    """The circuit did something with a symbol other than pass it into a gate."""


_REFUSED = (
    "__lt__ __le__ __gt__ __ge__ __bool__ __int__ __index__ __float__ __round__ __trunc__ "
    "__floor__ __ceil__ __abs__ __pow__ __rpow__ __mod__ __rmod__ __floordiv__ __rfloordiv__"
).split()


def _refusing(cls):
    """Make every listed use of a placeholder's value raise (see :class:`_TracingSymbol`)."""
    for name in _REFUSED:
        setattr(cls, name, cls._refuse)
    return cls


class _Arithmetic:
    """Sums, differences and products of placeholders and constants, of degree two at
    most (``w * x + b``): what an :class:`~qstore_pl.devices.batched.binding.
    AngleExpression` binds."""

    def _refuse(self, *_args, **_kwargs):
        raise StructureDependsOnValues(
            f"the circuit uses the value of {self!r} (a comparison, conversion, or "
            "arithmetic other than sums and products of at most two values)"
        )

    def __add__(self, other):
        return _elementwise(self, other, lambda a, b: _add(_terms_of(a), _terms_of(b, a)))

    __radd__ = __add__

    def __sub__(self, other):
        return _elementwise(
            self, other, lambda a, b: _add(_terms_of(a), _scaled(_terms_of(b, a), -1.0))
        )

    def __rsub__(self, other):
        return _elementwise(
            self, other, lambda a, b: _add(_terms_of(b, a), _scaled(_terms_of(a), -1.0))
        )

    def __mul__(self, other):
        return _elementwise(self, other, _times)

    __rmul__ = __mul__

    def __truediv__(self, other):
        return _elementwise(self, other, _divided)

    def __rtruediv__(self, other):
        return self._refuse()

    def __neg__(self):
        return _angle(_scaled(_terms_of(self), -1.0))

    def __pos__(self):
        return self


@_refusing
class _TracingSymbol(_Arithmetic, Symbol):
    """A Symbol that refuses every use of its value except sums and products.

    A plain Symbol is a NaN float: ``x > 0`` is silently ``False``. Recording must
    never silently pick a branch, so comparisons, truth values, conversions and
    arithmetic other than sums and products of at most two values raise.
    """

    def __eq__(self, other) -> bool:
        if isinstance(other, Symbol):
            return Symbol.__eq__(self, other)
        return self._refuse()

    def __ne__(self, other) -> bool:
        return not self == other

    __hash__ = Symbol.__hash__

    def _scaled(self, factor) -> Symbol:
        scaled = Symbol._scaled(self, factor)
        return _TracingSymbol(scaled.name, scaled.index, scaled.scale)

    def __reduce__(self):
        return (_TracingSymbol, (self.name, self.index, self.scale))


#: An element of a placeholder: its array's name and index.
_Key = tuple[str, tuple[int, ...]]
#: A polynomial: ``()`` the constant, ``(k,)`` an element, ``(k, l)`` a product.
_Terms = dict[tuple[_Key, ...], float]


@_refusing
class _Angle(_Arithmetic, float):
    """An angle that is a polynomial of degree two at most in placeholder elements."""

    __array_ufunc__ = None  # numpy defers to our operators, as for a Symbol

    terms: _Terms

    def __new__(cls, terms: _Terms):
        self = super().__new__(cls, math.nan)
        self.terms = terms
        return self

    def __repr__(self) -> str:
        parts = [
            f"{c:g}*{'*'.join(f'{n}{list(i)}' for n, i in k) or '1'}" for k, c in self.terms.items()
        ]
        return " + ".join(parts) or "0"

    def __eq__(self, other) -> bool:
        if isinstance(other, _Angle):
            return self.terms == other.terms
        return self._refuse()

    def __ne__(self, other) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(("_Angle", frozenset(self.terms.items())))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def _elementwise(placeholder: _Arithmetic, other, terms: Callable[..., _Terms]):
    """``terms(placeholder, other)`` as a placeholder; element by element for an array
    (numpy leaves arithmetic with a placeholder to it, as ``__array_ufunc__`` is None)."""
    if isinstance(other, np.ndarray):
        if other.ndim == 0:
            return _angle(terms(placeholder, other.item()))
        out = np.empty(other.shape, dtype=object)
        for index in np.ndindex(*other.shape):
            out[index] = _angle(terms(placeholder, other[index]))
        return out
    return _angle(terms(placeholder, other))


def _times(a: _Arithmetic, b) -> _Terms:
    if isinstance(b, _Arithmetic):
        return _product(_terms_of(a), _terms_of(b), a)
    return _scaled(_terms_of(a), _constant(b, a))


def _divided(a: _Arithmetic, b) -> _Terms:
    divisor = _constant(b, a)
    if divisor == 0:
        raise ZeroDivisionError(f"{a!r} divided by zero")
    return _scaled(_terms_of(a), 1.0 / divisor)


def _constant(value, owner: _Arithmetic | None) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise StructureDependsOnValues(
            f"the circuit combines {owner!r} with {type(value).__name__} {value!r}; only "
            "sums and products of at most two values and real constants are recorded"
        )
    return float(value)


def _terms_of(value, owner: _Arithmetic | None = None) -> _Terms:
    if isinstance(value, _Angle):
        return dict(value.terms)
    if isinstance(value, Symbol):
        return {((value.name, value.index),): value.scale}
    return {(): _constant(value, owner)}


def _add(a: _Terms, b: _Terms) -> _Terms:
    out = dict(a)
    for key, c in b.items():
        out[key] = out.get(key, 0.0) + c
    return out


def _scaled(terms: _Terms, factor: float) -> _Terms:
    return {key: c * factor for key, c in terms.items()}


def _product(a: _Terms, b: _Terms, owner) -> _Terms:
    out: _Terms = {}
    for ka, ca in a.items():
        for kb, cb in b.items():
            key = tuple(sorted(ka + kb))
            if len(key) > 2:
                return owner._refuse()
            out[key] = out.get(key, 0.0) + ca * cb
    return out


def _angle(terms: _Terms):
    """The simplest placeholder for ``terms``: a scaled symbol where it is one."""
    terms = {k: c for k, c in terms.items() if c != 0.0}
    if len(terms) == 1:
        ((key, scale),) = terms.items()
        if len(key) == 1:
            ((name, index),) = key
            return _TracingSymbol(name, index, scale)
    return _Angle(terms)


autoray.register_backend(_TracingSymbol, "builtins")
autoray.register_backend(_Angle, "builtins")


def _placeholder(name: str, shape: tuple[int, ...]) -> np.ndarray:
    array = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        array[index] = _TracingSymbol(name, index)
    return array


def _engine_gate(op) -> bool:
    """Gates a value program runs: fixed ones, and one-angle gates with a generator."""
    if op.num_params == 0:
        return _supported_gate(op)
    return op.num_params == 1 and op.has_generator and _supported_gate(op)


def _as_symbol(value) -> Symbol | _Angle | None:
    if isinstance(value, Symbol | _Angle):
        return value
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0:
        item = value.item()
        return item if isinstance(item, Symbol | _Angle) else None
    return None


def _device_tape(tape: QuantumScript, wires) -> QuantumScript:
    """``tape`` decomposed for the engine, on wire indices ``0 .. n-1`` of ``wires``."""
    (tape,), _ = decompose(tape, stopping_condition=_engine_gate, name="compiled layer")
    return tape.map_to_standard_wires() if wires is None else _on_indices(tape, wires)


def _on_indices(tape: QuantumScript, wires) -> QuantumScript:
    (mapped,), _ = qml.map_wires(tape, {w: i for i, w in enumerate(wires)})
    return mapped


def _expression(angle: _Angle, source: Callable[..., AngleSource]) -> AngleExpression:
    """``angle``'s terms as the engine binds them."""
    linear, products = [], []
    for key, scale in angle.terms.items():
        if len(key) == 1:
            linear.append(source(*key[0], scale))
        elif len(key) == 2:
            products.append((source(*key[0], scale), source(*key[1], 1.0)))
    return AngleExpression(angle.terms.get((), 0.0), tuple(linear), tuple(products))


def shots_refusal(qnode: qml.QNode) -> Refusal | None:
    """Why ``qnode``'s shots keep it off the compiled path, or ``None`` (also for no
    shots)."""
    if not qnode.shots:
        return None
    if qnode.shots.has_partitioned_shots:
        return Refusal("a shot vector (the compiled path samples one number of shots)")
    # with shots the QNode path differentiates by PennyLane's parameter-shift rule
    if qnode.diff_method not in _SHOTS_METHODS:
        return Refusal(
            f"diff_method={qnode.diff_method!r} with shots (the compiled path samples "
            "and differentiates by the parameter-shift rule)"
        )
    if qnode.gradient_kwargs:
        return Refusal(
            f"gradient options {sorted(qnode.gradient_kwargs)} (the compiled path "
            "shifts by the gates' own rules)"
        )
    return None


def refusal_for_qnode(qnode: qml.QNode) -> Refusal | None:
    """Why ``qnode``'s settings keep it off the compiled path, or ``None``."""
    if qnode.shots:
        if refusal := shots_refusal(qnode):
            return refusal
    elif qnode.diff_method not in _DEVICE_METHODS:
        return Refusal(f"diff_method={qnode.diff_method!r} (the compiled path is adjoint)")
    if qnode.execute_kwargs.get("max_diff", 1) != 1:
        return Refusal("max_diff > 1 (higher derivatives)")
    if len(qnode.compile_pipeline):
        return Refusal("the QNode carries transforms")
    if qnode.device.wires is None:
        return Refusal("the device has no fixed wires")
    return None


def record(
    qnode: qml.QNode, arrays: Sequence[np.ndarray], weight_names: Sequence[str]
) -> tuple[CompiledCircuit, str] | Refusal:
    """Record ``qnode``'s circuit for arrays shaped like ``arrays`` (inputs first, batched).

    Returns the compiled circuit and how the function returns its measurements
    (``"single"``, ``"list"`` or ``"tuple"``), or a :class:`Refusal`.
    """
    names = [INPUT_ARG, *weight_names]
    shapes = [tuple(np.shape(arrays[0])[1:]), *(tuple(np.shape(a)) for a in arrays[1:])]
    placeholders = {name: _placeholder(name, shape) for name, shape in zip(names, shapes)}
    try:
        with qml.queuing.AnnotatedQueue() as queue:
            returned = qnode.func(**placeholders)
        recorded = QuantumScript.from_queue(queue, shots=qnode.shots)
        tape = _device_tape(recorded, qnode.device.wires)
    except Exception as err:  # whatever a symbol cannot express: the QNode path can
        return Refusal(f"recording the circuit failed: {type(err).__name__}: {err}")
    returns = _return_kind(returned)
    if returns is None:
        return Refusal("the circuit function returns something other than measurements")
    arg_of = {name: i for i, name in enumerate(names)}

    def source(name: str, index: tuple[int, ...], scale: float) -> AngleSource:
        arg = arg_of[name]
        flat = int(np.ravel_multi_index(index, shapes[arg])) if index else 0
        return AngleSource(arg, flat, scale)

    sources: list[Source] = []
    params: list[float] = []
    for op in tape.operations:
        for value in op.data:
            symbol = _as_symbol(value)
            if isinstance(symbol, Symbol):
                sources.append(source(symbol.name, symbol.index, symbol.scale))
                params.append(0.0)
                continue
            if isinstance(symbol, _Angle):
                expression = _expression(symbol, source)
                sources.append(expression if expression.reads else None)
                params.append(expression.offset)
                continue
            array = np.asarray(value)
            if array.dtype.kind not in "fiu" or array.ndim or not np.isfinite(array):
                return Refusal(f"{op.name} takes {array.dtype} data the recording cannot bind")
            sources.append(None)
            params.append(float(array))
    for mp in tape.measurements:
        reason = _measurement_refusal(mp)
        if reason:
            return Refusal(reason)
    n = len(qnode.device.wires)
    concrete = tape.bind_new_parameters(params, list(range(len(params))))
    full = QuantumScript(
        [qml.Identity(wires=range(n)), *concrete.operations],
        concrete.measurements,
        shots=tape.shots,
    )  # the identity fixes the width: probs() of every wire, as the device has them
    per_sample = [True] + [False] * len(weight_names)
    try:
        program = ValueProgram(full, sources, per_sample)
    except (ValueError, NotImplementedError) as err:
        return Refusal(str(err))
    if tape.shots and (reason := program.shift_refusal()):
        return Refusal(reason)
    trainable = tuple(j for j, s in enumerate(sources) if s is not None)
    label = getattr(qnode.func, "__name__", "circuit")
    return CompiledCircuit(label, program, trainable), returns


def return_kind(
    qnode: qml.QNode, inputs: np.ndarray, weights: dict
) -> tuple[str, list[tuple[int, ...]]]:
    """How ``qnode``'s function returns its measurements, and each one's shape per sample.

    ``"single"`` (one measurement), ``"list"`` or ``"tuple"``, from one call of the
    function on ``inputs`` (nothing runs on a device).
    """
    with qml.queuing.AnnotatedQueue():
        returned = qnode.func(**{INPUT_ARG: inputs}, **weights)
    kind = _return_kind(returned)
    parts = [returned] if isinstance(returned, MeasurementProcess) else list(returned)
    n = len(qnode.device.wires)
    return kind or "list", [tuple(mp.shape(num_device_wires=n)) for mp in parts]


def _return_kind(returned) -> str | None:
    if isinstance(returned, MeasurementProcess):
        return "single"
    if isinstance(returned, list | tuple) and all(
        isinstance(r, MeasurementProcess) for r in returned
    ):
        return "list" if isinstance(returned, list) or len(returned) == 1 else "tuple"
    return None


def _measurement_refusal(mp: MeasurementProcess) -> str | None:
    if isinstance(mp, ProbabilityMP) and mp.obs is None:
        return None
    if isinstance(mp, ExpectationMP) and mp.obs is not None:
        if any(_as_symbol(d) is not None or _holds_symbol(d) for d in mp.obs.data):
            return "an observable depends on the inputs or weights"
        return None
    return f"{type(mp).__name__} (the compiled path differentiates expval and probs)"


def _holds_symbol(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == object


def verify(
    qnode: qml.QNode, circuit: CompiledCircuit, arrays: Sequence[np.ndarray], weight_names
) -> Refusal | None:
    """Compare the recording with the circuit the QNode builds for real ``arrays``.

    A circuit whose gates or angles depend on the inputs in a way the recording did
    not see (branching on a derived value) differs here, once per structure.
    """
    kwargs = {INPUT_ARG: arrays[0], **dict(zip(weight_names, arrays[1:], strict=True))}
    try:
        real = _device_tape(qml.tape.make_qscript(qnode.func)(**kwargs), qnode.device.wires)
    except Exception as err:
        return Refusal(f"the circuit fails on real values: {type(err).__name__}: {err}")
    recorded = circuit.program.tape.operations[1:]
    ops = real.operations
    same = len(ops) == len(recorded) and all(
        a.name == b.name and a.wires == b.wires for a, b in zip(ops, recorded)
    )
    same = same and [m.hash for m in real.measurements] == [
        m.hash for m in circuit.program.tape.measurements
    ]
    if same:
        table = circuit.program.bind(arrays).parameters[0].data
        values = [np.asarray(d, dtype=float) for op in ops for d in op.data]
        batch = np.shape(arrays[0])[0]
        same = len(values) == len(table) and all(
            np.allclose(np.broadcast_to(v, (batch,)), np.broadcast_to(t[0], (batch,)))
            for v, t in zip(values, table)
        )
    if not same:
        return Refusal(
            "the circuit built from real inputs differs from its recording (its gates, "
            "wires or angles depend on input values)"
        )
    return None


class CompiledHostFunction(HostFunction):
    """A layer's circuit on the compiled path, with the QNode path as its fallback.

    The same interface as :class:`HostFunction` (arguments ``(inputs, *weights)``,
    value ``(batch, n_outputs)``), so the framework bridges work unchanged.

    Parameters
    ----------
    qnode : qml.QNode
        On ``qstore.router``; its function takes ``inputs`` and the weights.
    weight_names : Sequence[str]
        The weight arguments, in the order the layer passes them.
    fallback : HostFunction
        The QNode path, for what the compiled path cannot run.
    """

    def __init__(self, qnode: qml.QNode, weight_names: Sequence[str], fallback: HostFunction):
        super().__init__(self._value, diff_argnums=fallback._diff_argnums)
        self.qnode = qnode
        self.weight_names = list(weight_names)
        self.fallback = fallback
        self._door = qnode.device.compiled
        self._entries: dict[tuple, tuple[CompiledCircuit, str] | Refusal] = {}
        self._warned: set[str] = set()
        self.last_path: str | None = None

    def returns(self, arrays: Sequence[np.ndarray]) -> str | None:
        """How the circuit function returns its measurements, once recorded."""
        entry = self._entries.get(_key(arrays))
        return None if entry is None or isinstance(entry, Refusal) else entry[1]

    def _value(self, *arrays):
        run = self._run(arrays, keep_vjp=False)
        if isinstance(run, Refusal):
            with _after(run):
                return self.fallback.forward(*arrays)
        return run.values

    def forward_and_vjp(
        self, *arrays, needed: Sequence[int] | None = None
    ) -> tuple[np.ndarray, Callable[[np.ndarray], tuple]]:
        arrays = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
        run = self._run(arrays, keep_vjp=True)
        if isinstance(run, Refusal):
            with _after(run):
                return self.fallback.forward_and_vjp(*arrays, needed=needed)
        wanted = self.argnums(len(arrays), needed)
        door = self._door

        def vjp(cotangent) -> tuple[np.ndarray, ...]:
            grads = door.vjp(run, cotangent, arrays, wanted)
            if isinstance(grads, EngineFailure):  # the QNode path, forward and VJP again
                with _after(self._refused(grads)):
                    return self.fallback.forward_and_vjp(*arrays, needed=needed)[1](cotangent)
            return tuple(np.zeros_like(a) if g is None else g for g, a in zip(grads, arrays))

        return run.values, vjp

    def _run(self, arrays, keep_vjp: bool) -> CompiledForward | Refusal:
        key = _key(arrays)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = self._compile(arrays)
        if isinstance(entry, Refusal):
            return self._refused(entry)
        run = self._door.forward(entry[0], arrays, keep_vjp)
        if isinstance(run, Refusal):
            return self._refused(run)
        if self.last_path != run.path:
            self.last_path = run.path
            self._door.note_path(self.qnode.func, run.path)
        return run

    def _compile(self, arrays) -> tuple[CompiledCircuit, str] | Refusal:
        if np.ndim(arrays[0]) < 2 or not np.shape(arrays[0])[0]:
            return Refusal("the inputs have no batch axis")
        recorded = refusal_for_qnode(self.qnode) or record(self.qnode, arrays, self.weight_names)
        if isinstance(recorded, Refusal):
            return recorded
        return verify(self.qnode, recorded[0], arrays, self.weight_names) or recorded

    def _refused(self, refusal: Refusal) -> Refusal:
        path = f"qnode ({refusal.reason})"
        if self.last_path != path:
            self.last_path = path
            self._door.note_path(self.qnode.func, path)
        if refusal.kind not in self._warned:
            self._warned.add(refusal.kind)
            _warn_qnode_path(self.qnode, refusal, stacklevel=5)
        return refusal


def _after(refusal: Refusal):
    """The context the QNode path runs in after ``refusal``: the router's next job
    reports an engine failure as the failure it fell back from."""
    if isinstance(refusal, EngineFailure):
        return after_failure(refusal.failure)
    return contextlib.nullcontext()


def _warn_qnode_path(qnode: qml.QNode, refusal: Refusal, stacklevel: int) -> None:
    name = getattr(qnode.func, "__name__", "circuit")
    warnings.warn(
        f"{name}: this layer runs through its QNode, not the compiled path: "
        f"{refusal.reason}. Values and gradients are the same, only slower; pass "
        "compiled=False to the layer to silence this.",
        CompiledPathWarning,
        stacklevel=stacklevel,
    )


def _key(arrays) -> tuple:
    return tuple(np.shape(a)[1:] if i == 0 else np.shape(a) for i, a in enumerate(arrays))


def compiled_host_function(
    qnode: qml.QNode, weight_names: Sequence[str], fallback: HostFunction, enabled: bool = True
) -> HostFunction:
    """``fallback`` on the compiled path where it applies (a QNode on ``qstore.router``).

    A QNode whose settings the compiled path never takes (parameter shift without
    shots, shot vectors...)
    gets ``fallback`` itself, with the warning said now: a layer then keeps its own
    QNode call, whose inputs are not differentiated unless they require it (a
    parameter-shift rule cannot differentiate a broadcast input).
    """
    if not enabled or not hasattr(qnode.device, "compiled"):
        return fallback
    refusal = refusal_for_qnode(qnode)
    if refusal is not None:
        _warn_qnode_path(qnode, refusal, stacklevel=4)
        return fallback
    return CompiledHostFunction(qnode, weight_names, fallback)


__all__ = [
    "CompiledHostFunction",
    "CompiledPathWarning",
    "compiled_host_function",
    "record",
    "refusal_for_qnode",
    "return_kind",
    "shots_refusal",
    "verify",
]
