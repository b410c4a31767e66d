"""A program whose gate parameters come straight from arrays: no tape per call.

Framework layers call one circuit structure thousands of times with new inputs and
weights. A :class:`ValueProgram` is compiled once per structure from a representative
tape and a map saying, for every parametrised gate, which element of which argument
array (times which constant) is its angle, or which expression of degree two at most
in those elements it is (data re-uploading's ``w * x + b``). Each call gathers those
angles into the engine's parameter table (:meth:`BoundProgram.from_table`), runs the
forward pass on the compiled plans, and maps the adjoint sweep's per-gate derivatives
back onto the argument arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pennylane.measurements import ExpectationMP, ProbabilityMP
from pennylane.tape import QuantumScript

from qstore_pl.devices.batched.adjoint import forward, vjp_sweep
from qstore_pl.devices.batched.measure import measure_all, output_sizes
from qstore_pl.devices.batched.memory import check_states_fit
from qstore_pl.devices.batched.program import BoundProgram, Program, TapeParameters
from qstore_pl.devices.batched.sampled import sample_measurements, shifted_tables
from qstore_pl.support.parameter_shift import contract_shifts, shift_rule, shift_terms


@dataclass(frozen=True)
class AngleSource:
    """Where one gate's angle comes from: ``scale * arrays[arg].flat[index]``.

    For a per-sample argument the element is read from every row of the batch.
    """

    arg: int
    index: int
    scale: float


@dataclass(frozen=True)
class AngleExpression:
    """An angle of degree two at most in the argument elements (data re-uploading's
    ``w * x + b``): ``offset + sum of linear terms + sum of products``.

    Attributes
    ----------
    offset : float
        The constant part.
    linear : tuple[AngleSource, ...]
        Terms ``scale * element``.
    products : tuple[tuple[AngleSource, AngleSource], ...]
        Terms ``first.scale * first element * second.scale * second element``.
    """

    offset: float
    linear: tuple[AngleSource, ...] = ()
    products: tuple[tuple[AngleSource, AngleSource], ...] = ()

    @property
    def reads(self) -> tuple[AngleSource, ...]:
        """Every element the angle reads."""
        return self.linear + tuple(s for pair in self.products for s in pair)


#: Where a gate's angle comes from: one scaled element, an expression, or a constant.
Source = AngleSource | AngleExpression | None


class ValueProgram:
    """A circuit structure bound from argument arrays, forward and VJP.

    Parameters
    ----------
    tape : QuantumScript
        A representative circuit on wires ``0 .. n-1`` whose operations all have at
        most one parameter (decomposed for the batched engine).
    sources : Sequence[AngleSource or AngleExpression or None]
        Per operation of ``tape`` with a parameter: where its angle comes from (one
        scaled element, or an expression of degree two at most), or ``None`` for a
        constant (the tape's own value is kept).
    per_sample : Sequence[bool]
        Per argument array: whether its leading axis is the batch.
    """

    def __init__(
        self,
        tape: QuantumScript,
        sources: Sequence[Source],
        per_sample: Sequence[bool],
    ):
        self.tape = tape
        self.program = Program(tape)
        program = self.program
        if len(sources) != len(program.param_ops):
            raise ValueError(f"{len(sources)} sources for {len(program.param_ops)} gates")
        generic = [t.name for t in program.gates if t.num_params and not t.class_matrix]
        if program.has_state_prep or program.phase_gates or generic:
            found = generic or (
                "a state preparation" if program.has_state_prep else "a global phase"
            )
            raise ValueError(
                "a value program needs gates whose class builds their matrices, no state "
                f"preparation and no global phase (found {found})"
            )
        for mp in program.measurements:
            if not (isinstance(mp, ProbabilityMP) and mp.obs is None) and not isinstance(
                mp, ExpectationMP
            ):
                raise ValueError(f"{type(mp).__name__} is not differentiated by the engine")
        self.num_wires = program.num_wires
        self.per_sample = tuple(per_sample)
        self.sizes = output_sizes(program.measurements, self.num_wires)
        self.num_outputs = sum(self.sizes)
        ops = tape.operations
        #: per parametrised operation: its data in the representative tape
        self.constants = [ops[i].data for i in program.param_ops]
        #: per parametrised operation: where its angle comes from (``None``: constant)
        self.sources = list(sources)
        # gather plan: per argument, which table slots read which flat elements
        self._reads: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        #: slots whose angle is an expression, computed per call
        self._expressions = [
            (j, s) for j, s in enumerate(sources) if isinstance(s, AngleExpression)
        ]
        for arg in range(len(per_sample)):
            reads = [
                (j, s) for j, s in enumerate(sources) if isinstance(s, AngleSource) and s.arg == arg
            ]
            index = np.array([s.index for _, s in reads], dtype=np.int64)
            scale = np.array([s.scale for _, s in reads], dtype=np.float64)
            slots = [j for j, _ in reads]
            self._reads[arg] = (np.array(slots, dtype=np.int64), index, scale)

    def bind(self, arrays: Sequence[np.ndarray]) -> BoundProgram:
        """The engine's binding of ``arrays`` (per-sample ones ``(B, ...)``)."""
        batch = None
        data: list[tuple] = list(self.constants)
        broadcast: list[tuple[bool, ...]] = [(False,)] * len(data)
        for arg, (slots, index, scale) in self._reads.items():
            if not slots.size:
                continue
            array = np.asarray(arrays[arg], dtype=float)
            if self.per_sample[arg]:
                batch = array.shape[0]
                columns = array.reshape(batch, -1)[:, index] * scale  # (B, slots)
                for k, j in enumerate(slots.tolist()):
                    data[j] = (columns[:, k],)
                    broadcast[j] = (True,)
            else:
                values = array.reshape(-1)[index] * scale
                for k, j in enumerate(slots.tolist()):
                    data[j] = (values[k],)
        if batch is None:
            batch = int(np.shape(arrays[self.per_sample.index(True)])[0])
        if self._expressions:
            flat = self._flat(arrays, batch)
            for j, expression in self._expressions:
                value = self._evaluate(expression, flat)
                data[j] = (value,)
                broadcast[j] = (np.ndim(value) == 1,)
        return BoundProgram.from_table(self.program, TapeParameters(batch, data, broadcast))

    def per_sample_slots(self) -> set[int]:
        """The table slots whose angle changes from sample to sample."""
        return {
            j
            for j, s in enumerate(self.sources)
            if s is not None and any(self.per_sample[r.arg] for r in _reads_of(s))
        }

    def _flat(self, arrays: Sequence[np.ndarray], batch: int) -> list[np.ndarray]:
        """Each argument as ``(B, size)`` (per sample) or ``(size,)`` (shared)."""
        return [
            np.asarray(a, dtype=float).reshape(batch, -1)
            if self.per_sample[i]
            else np.asarray(a, dtype=float).reshape(-1)
            for i, a in enumerate(arrays)
        ]

    def _element(self, source: AngleSource, flat: list[np.ndarray]):
        array = flat[source.arg]
        return array[:, source.index] if self.per_sample[source.arg] else array[source.index]

    def _evaluate(self, expression: AngleExpression, flat: list[np.ndarray]):
        value = expression.offset
        for s in expression.linear:
            value = value + s.scale * self._element(s, flat)
        for a, b in expression.products:
            value = value + a.scale * b.scale * self._element(a, flat) * self._element(b, flat)
        return value

    def forward(
        self,
        device,
        bound: BoundProgram,
        shots: int | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Final states ``(B, 2**n)`` and each measurement's values on ``device``: exact,
        or with ``shots`` estimated from that many samples drawn with the device's
        generator (:func:`~qstore_pl.devices.batched.sampled.sample_measurements`)."""
        from qstore_pl.devices.batched.device import threads_for

        kernel = device.kernel_for(bound)
        fits = self.__dict__.setdefault("_fits", set())
        if (bound.batch, device.c_dtype) not in fits:  # reading free memory costs ~15 us
            kept = kernel.buffers.kept_free_bytes()
            check_states_fit(device.name, self.num_wires, bound.batch, device.c_dtype, kept)
            fits.add((bound.batch, device.c_dtype))
        with threads_for(bound):
            psi = forward(kernel, bound)
            if shots:
                values = sample_measurements(kernel, self.program, psi, shots, device.rng)
            else:
                values = measure_all(kernel, psi, self.program.measurements, self.num_wires)
        return psi, values

    def outputs(self, values: list[np.ndarray], batch: int) -> np.ndarray:
        """The measurements as one ``(B, num_outputs)`` float64 array."""
        parts = [np.reshape(v, (batch, -1)) for v in values]
        return np.concatenate(parts, axis=1).astype(np.float64, copy=False)

    def vjp(
        self,
        device,
        bound: BoundProgram,
        psi: np.ndarray,
        cotangent: np.ndarray,
        arrays: Sequence[np.ndarray],
        wanted: Sequence[int],
    ) -> list[np.ndarray | None]:
        """Gradients of ``sum(cotangent * outputs)`` for the arguments in ``wanted``.

        One adjoint sweep for the whole batch; other arguments get ``None``.
        ``cotangent`` may stack ``T`` cotangents of the batch, ``(T * B, num_outputs)``
        (a Jacobian's unit vectors, a ``jax.vmap`` of the VJP): the sweep then carries
        ``T`` adjoint states per circuit, and per-sample arguments get ``(T * B, ...)``
        gradients, copy after copy.
        """
        from qstore_pl.devices.batched.device import threads_for

        cotangent, stacked = self._cotangent_rows(cotangent, bound.batch, wanted)
        dys, offset = [], 0
        for size in self.sizes:
            part = cotangent[:, offset : offset + size]
            dys.append(part[:, 0] if size == 1 else part)
            offset += size
        trainable = self._trainable(wanted)
        kernel = device.kernel_for(bound, backward=True)
        with threads_for(bound):
            grads = vjp_sweep(
                kernel, bound, psi, self.program.measurements, dys, trainable, stacked
            )
        return self._argument_grads(grads, arrays, wanted, bound.batch, stacked)

    def shift_vjp(
        self,
        device,
        bound: BoundProgram,
        cotangent: np.ndarray,
        arrays: Sequence[np.ndarray],
        wanted: Sequence[int],
        shots: int,
    ) -> list[np.ndarray | None]:
        """:meth:`vjp` with ``shots``: each trainable gate's derivative by its
        parameter-shift rule, every shifted circuit sampled with ``shots``, as PennyLane's
        rule does on a device with shots (:mod:`~qstore_pl.devices.batched.sampled`).

        Raises
        ------
        ValueError
            If a trainable gate has no shift rule (:meth:`shift_refusal` says so first).
        """
        batch = bound.batch
        cotangent, stacked = self._cotangent_rows(cotangent, batch, wanted)
        shifts, terms = shift_terms(
            (self._position_of(slot), slot, self._shift_rule(slot))
            for slot in sorted(self._trainable_slots(wanted))
        )
        found: list[np.ndarray] = []
        for shifted, copies in shifted_tables(bound, shifts):
            _, sampled = self.forward(device, shifted, shots)
            found.extend(np.split(self.outputs(sampled, shifted.batch), copies))
        by_copy = cotangent.reshape(stacked, batch, self.num_outputs)
        per_copy = contract_shifts(terms, found, by_copy)
        grads = {position: g.reshape(-1) for position, g in per_copy.items()}
        return self._argument_grads(grads, arrays, wanted, batch, stacked)

    def shift_count(self, wanted: Sequence[int]) -> int:
        """Shifted circuits per sample that :meth:`shift_vjp` runs for ``wanted``."""
        return sum(len(self._shift_rule(slot)) for slot in self._trainable_slots(wanted))

    def shift_refusal(self) -> str | None:
        """Why the parameter-shift rule cannot differentiate this program's angles, or
        ``None``."""
        for slot, source in enumerate(self.sources):
            if source is None:
                continue
            try:
                self._shift_rule(slot)
            except ValueError as err:
                return str(err)
        return None

    def _shift_rule(self, slot: int) -> np.ndarray:
        rules = self.__dict__.setdefault("_shift_rules", {})
        if slot not in rules:
            rules[slot] = shift_rule(self.tape.operations[self.program.param_ops[slot]])
        return rules[slot]

    def _cotangent_rows(
        self, cotangent: np.ndarray, batch: int, wanted: Sequence[int]
    ) -> tuple[np.ndarray, int]:
        """``cotangent`` as ``(T * B, num_outputs)``, and ``T``; checks the layout."""
        cotangent = np.asarray(cotangent, dtype=float).reshape(-1, self.num_outputs)
        rows = cotangent.shape[0]
        stacked = rows // batch
        if stacked * batch != rows or (
            stacked > 1 and not all(self.per_sample[arg] for arg in wanted)
        ):
            raise ValueError(
                f"{rows} cotangent rows for a batch of {batch}: give one row per sample, "
                "or whole stacked copies of the batch for per-sample arguments only"
            )
        return cotangent, stacked

    def _argument_grads(
        self, grads, arrays: Sequence[np.ndarray], wanted: Sequence[int], batch: int, stacked: int
    ) -> list[np.ndarray | None]:
        """The arguments' gradients from the per-gate ones (``{position: (rows,)}``)."""
        rows = batch * stacked
        out: list[np.ndarray | None] = [None] * len(arrays)
        values = self._flat(arrays, batch) if self._expressions else []  # for products
        values = [np.tile(v, (stacked, 1)) if v.ndim == 2 else v for v in values]
        for arg in wanted:
            slots, index, scale = self._reads[arg]
            shape = np.shape(arrays[arg])
            if self.per_sample[arg]:
                flat = np.zeros((int(np.prod(shape[1:], dtype=int)), rows))
                shape = (rows, *shape[1:])
            else:
                flat = np.zeros((int(np.prod(shape, dtype=int)), 1))
            if slots.size:
                per_slot = np.stack([grads[self._position_of(j)] for j in slots.tolist()])
                per_slot = per_slot * scale[:, None]  # (slots, rows)
                if not self.per_sample[arg]:
                    per_slot = per_slot.sum(axis=1, keepdims=True)
                np.add.at(flat, index, per_slot)
            if self._expressions:
                self._add_expression_grads(flat, arg, grads, values, rows)
            out[arg] = (flat.T if self.per_sample[arg] else flat[:, 0]).reshape(shape)
        return out

    def _add_expression_grads(
        self, flat: np.ndarray, arg: int, grads, values: list[np.ndarray], rows: int
    ):
        """Add to ``flat`` (argument ``arg``'s gradient, ``(size, rows or 1)``) what the
        expression angles pass on: ``d angle / d element`` times the angle's gradient
        (``values``: the arguments as :meth:`_flat` gives them, per-sample ones
        stacked like the rows)."""
        shared = not self.per_sample[arg]
        for j, expression in self._expressions:
            g = grads[self._position_of(j)]  # (rows,)
            terms = [(s, s.scale) for s in expression.linear]
            for a, b in expression.products:  # d(a b)/da = b, d(a b)/db = a
                scale = a.scale * b.scale
                terms += [
                    (a, scale * self._element(b, values)),
                    (b, scale * self._element(a, values)),
                ]
            for source, factor in terms:
                if source.arg != arg:
                    continue
                row = np.broadcast_to(factor * g, (rows,))
                flat[source.index] += row.sum() if shared else row

    def _position_of(self, slot: int) -> int:
        cache = self.__dict__.setdefault("_positions", {})
        if slot not in cache:
            op_index = self.program.param_ops[slot]
            cache[slot] = self.program.position[op_index]
        return cache[slot]

    def _trainable(self, wanted: Sequence[int]) -> frozenset[int]:
        key = tuple(sorted(wanted))
        cache = self.__dict__.setdefault("_trainable_sets", {})
        if key not in cache:
            cache[key] = frozenset(self._position_of(j) for j in self._trainable_slots(key))
        return cache[key]

    def _trainable_slots(self, wanted: Sequence[int]) -> set[int]:
        """Table slots whose angle reads an argument in ``wanted``."""
        slots = {j for arg in wanted for j in self._reads[arg][0].tolist()}
        return slots | {j for j, e in self._expressions if any(r.arg in wanted for r in e.reads)}


def _reads_of(source: AngleSource | AngleExpression) -> tuple[AngleSource, ...]:
    return (source,) if isinstance(source, AngleSource) else source.reads
