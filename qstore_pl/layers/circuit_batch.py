"""Run a batch of data circuits, each followed by a model circuit, as one differentiable
host function (TFQ's PQC and ControlledPQC, framework-neutral)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import autograd.numpy as anp
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.circuits import ParametrizedCircuit, decode_circuits
from qstore_pl.interfaces.host import HostFunction
from qstore_pl.layers.circuit_program import EngineFailed, compiled_for, flat_values, traced
from qstore_pl.router.execution.faults import after_failure
from qstore_pl.templates import PORTABLE_GATES

#: Tapes in, tapes out plus the function that turns their results into the originals'.
TapeTransform = Callable[[Sequence[QuantumScript]], tuple[Sequence[QuantumScript], Callable]]


def expval_measurements(observables: Sequence) -> list:
    """``qml.expval`` of each observable; a clear error for anything else."""
    measurements = []
    for obs in observables:
        if not isinstance(obs, qml.operation.Operator):
            raise TypeError(f"observables must be PennyLane operators, got {obs!r}")
        measurements.append(qml.expval(obs))
    if not measurements:
        raise ValueError("give at least one observable to measure")
    return measurements


class CircuitBatch:
    """Data circuits (a circuit tensor) + a symbol-parametrised model circuit.

    Parameters
    ----------
    model : ParametrizedCircuit
        Appended to every data circuit.
    observables : Sequence[Operator]
        One expectation value each, the outputs.
    device : Device
        Where the circuits run.
    diff_method : str
        Passed to ``qml.execute``.
    per_sample_symbols : bool
        ``False`` (PQC): the symbols are shared weights, one argument each.
        ``True`` (ControlledPQC): one ``(batch, n_symbols)`` argument carries every
        sample's symbol values, flattened in the order of ``model.symbols``.

    Attributes
    ----------
    tape_transform : callable or None
        Applied to the batch of tapes before execution, ``tapes -> (tapes,
        postprocess)`` (a PennyLane transform; NoisyPQC's trajectories).
    """

    def __init__(
        self,
        model: ParametrizedCircuit,
        observables: Sequence,
        device,
        diff_method: str = "best",
        per_sample_symbols: bool = False,
    ):
        self.model = model
        self.measurements = expval_measurements(observables)
        self.device = device
        self.diff_method = diff_method
        self.per_sample_symbols = per_sample_symbols
        self.symbol_sizes = {name: math.prod(shape) for name, shape in model.symbols.items()}
        self.tape_transform: TapeTransform | None = None
        #: the path with no tape per sample, on a router (see :mod:`.circuit_program`)
        self.compiled = compiled_for(device, model, self.measurements, diff_method)
        if self.compiled is not None:
            self.compiled.tapes = self._tapes_of_values

    @property
    def path(self) -> str | None:
        """Which path the last call took: ``"compiled"`` or ``"tapes: <why>"``."""
        if self.compiled is None:
            return "tapes: the device is not a qstore.router, or diff_method is not adjoint"
        return self.compiled.path

    @property
    def n_symbol_values(self) -> int:
        """Values per sample a ControlledPQC input must carry."""
        return sum(self.symbol_sizes.values())

    def _split(self, row) -> dict:
        values, start = {}, 0
        for name, shape in self.model.symbols.items():
            size = self.symbol_sizes[name]
            values[name] = anp.reshape(row[start : start + size], shape)
            start += size
        return values

    def __call__(self, circuit_tensor, *symbol_args):
        if self.per_sample_symbols:
            (values,) = symbol_args
            batch = len(circuit_tensor)
            if values.shape != (batch, self.n_symbol_values):
                raise ValueError(
                    f"symbol values have shape {tuple(values.shape)}; expected "
                    f"({batch}, {self.n_symbol_values}): one row per circuit, the "
                    f"symbols {dict(self.model.symbols)} flattened in that order"
                )
        if self.compiled is not None and self.tape_transform is None and len(circuit_tensor):
            choice = self.compiled.choose(circuit_tensor, traced(*symbol_args))
            if choice is not None:
                values = symbol_args[0] if self.per_sample_symbols else flat_values(symbol_args)
                try:
                    return self.compiled(choice, circuit_tensor, values)
                except EngineFailed as failed:  # the tapes, which the router falls back with
                    with after_failure(failed.failure.failure):
                        return self._run_tapes(decode_circuits(circuit_tensor), symbol_args)
        return self._run_tapes(decode_circuits(circuit_tensor), symbol_args)

    def _tapes_of_values(self, circuit_tensor, values):
        """The tape path from the compiled path's flat symbol values (``(n,)`` shared,
        ``(B, n)`` per sample): what a failed compiled VJP is computed by."""
        args = (values,) if self.per_sample_symbols else tuple(self._split(values).values())
        return self._run_tapes(decode_circuits(circuit_tensor), args)

    def _run_tapes(self, data: list[QuantumScript], symbol_args):
        """Today's path: one tape per sample through ``qml.execute``."""
        if self.per_sample_symbols:
            (values,) = symbol_args
            bound = [self.model.bind(**self._split(values[i])) for i in range(len(data))]
        else:
            shared = self.model.bind(**dict(zip(self.model.symbols, symbol_args, strict=True)))
            # decompose the shared model once, not once per data circuit downstream
            [shared], _ = qml.transforms.decompose(shared, gate_set=PORTABLE_GATES)
            bound = [shared] * len(data)
        tapes: Sequence[QuantumScript] = [
            QuantumScript(circuit.operations + model.operations, self.measurements)
            for circuit, model in zip(data, bound, strict=True)
        ]
        postprocess = None
        if self.tape_transform is not None:
            tapes, postprocess = self.tape_transform(tapes)
        results = qml.execute(tapes, self.device, diff_method=self.diff_method)
        if postprocess is not None:
            results = postprocess(results)
        if len(self.measurements) == 1:
            return anp.reshape(anp.stack(list(results)), (len(tapes), 1))
        return anp.stack([anp.stack(list(r)) for r in results])

    def host_function(self) -> HostFunction:
        """As a :class:`HostFunction`: no gradients for the circuit tensor."""
        n_args = 2 if self.per_sample_symbols else 1 + len(self.model.symbols)
        return HostFunction(self, diff_argnums=range(1, n_args))
