"""``qstore.ionq``: pennylane-ionq's device with the pieces a router needs.

- its own base URL per device (the emulator, or IonQ's cloud; see connection.py),
- each job submitted at most once (an idempotency key in its metadata, looked up
  before any re-send; see jobs.py), bounded retries with exponential backoff for polls,
  results and refused submissions, a new job for a FAILED one, and a job-level timeout
  (pennylane-ionq polls a job forever),
- ``gateset="native"``: circuits are compiled to GPI/GPI2/MS by
  :func:`qstore_pl.circuits.ionq_native.compile_native` (fewer gates than IonQ's plain
  translation) after measurements are rotated to the computational basis,
- the API key held as a :class:`~qstore_pl.support.secret.Secret`.

One PennyLane batch is one IonQ job (``ionq.multi-circuit.v1`` for several circuits).

pennylane-ionq has no public seam for three things this device needs, so it uses these
private names (the tests in ``tests/test_ionq_*.py`` fail if a release changes them):

- ``IonQDevice._submit_job``: the one place a job is POSTed and waited for; overridden
  because a job must be submitted at most once and polled with a deadline;
- ``APIClient.BASE_URL``: a class attribute, not a constructor argument; set on each
  client instance (jobs.py) so two devices can talk to two servers;
- ``_qis_operation_map``: the QIS gate names; the public ``operations`` depends on the
  instance's gate set, and the router needs the QIS names before any device exists.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Sequence

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript
from pennylane.wires import WiresLike
from pennylane_ionq.device import IonQDevice, QPUDevice, SimulatorDevice, _qis_operation_map

from qstore_pl.circuits.ionq_native import NATIVE_GATES, compile_native
from qstore_pl.devices.ionq.connection import api_key
from qstore_pl.devices.ionq.jobs import (
    KEY_FIELD,
    IonQJobError,
    IonQTimeoutError,  # noqa: F401  (re-exported: raised by jobs)
    JobFailed,
    JobSession,
    Refused,
)
from qstore_pl.devices.job_tags import CHARGE_TAG
from qstore_pl.exceptions import QstoreError
from qstore_pl.support.secret import Secret

logger = logging.getLogger(__name__)

#: Gates the router may send (IonQ's "qis" gate set, without its aliases).
QIS_GATES = frozenset(n for n in _qis_operation_map if "." not in n and n != "Evolution")


class QstoreIonQDevice(IonQDevice):
    """IonQ simulator or QPU through pennylane-ionq, with retries and a job timeout.

    Parameters
    ----------
    wires : int or Iterable
        Wires.
    target : str
        ``"simulator"`` or ``"qpu.<name>"`` (e.g. ``"qpu.aria-1"``).
    gateset : {"qis", "native"}
        Gates sent to IonQ; ``"native"`` compiles to GPI/GPI2/MS here.
    shots : int, optional
        Default shots (circuits usually carry their own; IonQ needs shots).
    api_key : str or Secret, optional
        Default: ``PENNYLANE_IONQ_API_KEY`` or ``IONQ_API_KEY``.
    url : str, optional
        Server (default: ``QSTORE_IONQ_URL``, else IonQ's cloud).
    job_timeout : float
        Seconds from submission until a job must be complete, retries included.
    retries : int
        Extra attempts after a retriable failure.
    backoff : float
        Seconds before the first retry, doubling for each next one.
    request_timeout : float
        Seconds one HTTP request may take.
    noise_model, noise_seed, error_mitigation, sharpen, compilation, job_name :
        As for pennylane-ionq's devices.
    """

    name = "qstore IonQ device (pennylane-ionq)"
    short_name = "qstore.ionq"

    def __init__(
        self,
        wires: WiresLike,
        *,
        target: str = "simulator",
        gateset: str = "qis",
        shots: int | None = None,
        api_key: str | Secret | None = None,
        url: str | None = None,
        job_timeout: float = 600.0,
        retries: int = 3,
        backoff: float = 0.5,
        request_timeout: float = 30.0,
        noise_model: str | None = None,
        noise_seed: int | None = None,
        error_mitigation: dict | None = None,
        sharpen: bool | None = None,
        compilation: dict | None = None,
        job_name: str | None = None,
    ):
        if gateset not in ("qis", "native"):
            raise ValueError(f"gateset must be 'qis' or 'native', got {gateset!r}")
        if noise_model is not None and not target.startswith("simulator"):
            raise ValueError("noise_model applies to target='simulator' only")
        self._key = _resolve_key(api_key)
        self.url = url
        self.job_timeout, self.retries, self.backoff = job_timeout, retries, backoff
        self.request_timeout = request_timeout
        self.submitted_jobs: list[str] = []
        #: Metadata added to every job (the router names the charge it belongs to).
        self.job_tags: dict[str, str] = {}
        self._device_key = uuid.uuid4().hex
        self._counter = itertools.count()
        super().__init__(
            wires=wires,
            target=target,
            gateset=gateset,
            shots=shots,
            job_name=job_name,
            api_key=None,  # kept as a Secret in self._key; _submit_job is ours
            compilation=compilation,
            error_mitigation=error_mitigation,
            sharpen=sharpen,
            noise_model=noise_model,
            noise_seed=noise_seed,
        )

    def __repr__(self) -> str:
        return (
            f"<QstoreIonQDevice target={self.target} gateset={self.gateset} wires={self.num_wires}>"
        )

    @property
    def operations(self) -> set[str]:
        # native circuits are compiled in batch_execute, so the gates accepted are
        # always the QIS set (plus native gates written by hand)
        return set(QIS_GATES | NATIVE_GATES)

    def batch_execute(self, circuits: Sequence[QuantumScript]) -> list:
        if self.gateset == "native":
            circuits = [to_native(c) for c in circuits]
        return super().batch_execute(circuits)

    def generate_samples(self) -> np.ndarray:
        if self.target.startswith("qpu"):
            return QPUDevice.generate_samples(self)
        return SimulatorDevice.generate_samples(self)

    # ------------------------------------------------------------- submission
    def _submit_job(self):
        """Run ``self.job`` as one IonQ job, submitted at most once (see jobs.py).

        Retries go to a refused submission (after checking no job has this key), to
        polls and to the results fetch; a FAILED job (not billed) is replaced by a new
        one with a new key. Before giving up on refused submissions the job list is
        checked once more: a refusal that created the job after all is waited for.
        """
        deadline = time.monotonic() + self.job_timeout
        session = JobSession(
            self._key.reveal(), self.url, self.request_timeout, self.retries, self.backoff
        )
        key, job_id = self._next_key(), None
        for attempt in range(self.retries + 1):
            try:
                if job_id is None:
                    job_id = (session.find(key) if attempt else None) or session.submit(
                        self._payload(key)
                    )
                    self.submitted_jobs.append(job_id)
                return self._collect(session, job_id, deadline)
            except (Refused, JobFailed) as err:
                if isinstance(err, JobFailed):
                    key, job_id = self._next_key(), None
                delay = self.backoff * 2**attempt
                if attempt == self.retries or time.monotonic() + delay > deadline:
                    late = session.find(key) if isinstance(err, Refused) else None
                    if late is not None:
                        self.submitted_jobs.append(late)
                        return self._collect(session, late, deadline)
                    raise IonQJobError(
                        f"IonQ job on {self.target} failed after {attempt + 1} attempt(s): {err}"
                    ) from None
                logger.warning("IonQ %s: %s; retrying in %.2f s", self.target, err, delay)
                time.sleep(delay)

    def _collect(self, session: JobSession, job_id: str, deadline: float) -> None:
        """Wait for ``job_id`` and keep its histograms (one per circuit)."""
        params = None if self.sharpen is None else {"sharpen": self.sharpen}
        data = session.wait(job_id, self.job_timeout, deadline, params)
        inner = next(iter(data.values()))
        self.histograms = list(data.values()) if isinstance(inner, dict) else [data]

    def _next_key(self) -> str:
        """A new idempotency key: the router's charge (if any) and a counter."""
        charge = self.job_tags.get(CHARGE_TAG) or self._device_key
        return f"{charge}.{next(self._counter)}"

    def _payload(self, key: str) -> dict:
        metadata = {**(self.job.get("metadata") or {}), **self.job_tags, KEY_FIELD: key}
        return {**self.job, "metadata": metadata}


def to_native(tape: QuantumScript) -> QuantumScript:
    """``tape`` measured in the computational basis and compiled to GPI/GPI2/MS."""
    [diagonal], _ = qml.transforms.diagonalize_measurements(tape)
    native = compile_native(diagonal.operations)  # the final Z frame does not change counts
    return diagonal.copy(operations=list(native.operations))


def _resolve_key(value: str | Secret | None) -> Secret:
    try:
        return api_key(value)
    except QstoreError as err:
        raise ValueError(str(err)) from None
