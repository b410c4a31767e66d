"""TFQ's ``NoisyPQC`` for Keras 3: a PQC whose model circuit has noise channels.

Three ways to evaluate it, as TFQ offers (``repetitions``, ``sample_based``):

- ``repetitions=None``: exact, on a density matrix (``qstore.router`` routes the
  circuits to default.mixed); any channel;
- ``repetitions=R``: the mean over ``R`` Monte Carlo trajectories, each evaluated
  exactly (TFQ's ``sample_based=False``); Pauli channels (depolarising, bit flip,
  phase flip); standard error at most ``1/sqrt(R)`` per output;
- ``repetitions=R, sample_based=True``: ``R`` trajectories measured once each, so the
  outputs are exactly as noisy as ``R`` shots on the hardware; gradients by the
  parameter-shift rule on those samples.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras

from qstore_pl.keras.pqc import PQC
from qstore_pl.transforms.trajectories import trajectories


@keras.saving.register_keras_serializable(package="qstore_pl")
class NoisyPQC(PQC):
    """A :class:`~qstore_pl.keras.PQC` whose model circuit holds noise channels.

    Parameters
    ----------
    model_circuit : ParametrizedCircuit
        The model, channels included (``qml.DepolarizingChannel(0.01, wires=0)`` in the
        function given to ``ParametrizedCircuit.from_function``).
    observables : Sequence[Operator]
        One output each.
    repetitions : int, optional
        Trajectories per input circuit; ``None`` computes the exact value.
    sample_based : bool
        With ``repetitions``: measure each trajectory once (shot noise included).
    seed : int, optional
        Fix the trajectories (the same draws every call); ``None`` draws anew per call.
    **kwargs
        As for :class:`~qstore_pl.keras.PQC` (``device``, ``diff_method``,
        ``initializer``, Keras layer arguments).
    """

    def __init__(
        self,
        model_circuit,
        observables,
        repetitions: int | None = None,
        sample_based: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        if repetitions is None and sample_based:
            raise ValueError(
                "sample_based=True measures each of `repetitions` trajectories once: give "
                "repetitions (e.g. 1000), or leave sample_based False for exact values"
            )
        if repetitions is not None and (int(repetitions) != repetitions or repetitions < 1):
            raise ValueError(f"repetitions must be a positive integer or None, got {repetitions!r}")
        super().__init__(model_circuit, observables, **kwargs)
        self.repetitions = repetitions
        self.sample_based = sample_based
        self.seed = seed
        if repetitions is not None:
            self.batch.tape_transform = self._trajectories

    def _trajectories(self, tapes):
        if self.sample_based:
            tapes = [tape.copy(shots=1) for tape in tapes]
        return trajectories(tapes, repetitions=self.repetitions, seed=self.seed)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "repetitions": self.repetitions,
            "sample_based": self.sample_based,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: Mapping) -> NoisyPQC:
        return super().from_config(config)
