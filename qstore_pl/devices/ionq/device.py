"""``qstore.ionq``: pennylane-ionq's device with the pieces a router needs.

- its own base URL per device (the emulator, or IonQ's cloud; see connection.py),
- bounded retries with exponential backoff for HTTP 5xx/429, connection errors,
  request timeouts and FAILED jobs (pennylane-ionq's client retries polls but never a
  refused submission), and a job-level timeout (pennylane-ionq polls a job forever),
- ``gateset="native"``: circuits are compiled to GPI/GPI2/MS by
  :func:`qstore_pl.ionq.native.compile_native` (fewer gates than IonQ's plain
  translation) after measurements are rotated to the computational basis,
- the API key held as a :class:`~qstore_pl.router.secret.Secret`.

One PennyLane batch is one IonQ job (``ionq.multi-circuit.v1`` for several circuits).
"""

from __future__ import annotations

import logging
import time

import pennylane as qml
import requests
from pennylane.tape import QuantumScript
from pennylane_ionq.api_client import APIClient, Job
from pennylane_ionq.device import IonQDevice, QPUDevice, SimulatorDevice, _qis_operation_map

from qstore_pl.devices.ionq.connection import api_key, api_url
from qstore_pl.exceptions import QstoreError
from qstore_pl.ionq.native import NATIVE_GATES, compile_native
from qstore_pl.router.secret import Secret

logger = logging.getLogger(__name__)

#: Gates the router may send (IonQ's "qis" gate set, without its aliases).
QIS_GATES = frozenset(n for n in _qis_operation_map if "." not in n and n != "Evolution")
#: HTTP answers worth another try.
RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class IonQJobError(QstoreError, RuntimeError):
    """An IonQ job could not be run (after retries, or for a reason retrying cannot fix)."""


class IonQTimeoutError(IonQJobError, TimeoutError):
    """An IonQ job did not complete within the job-level timeout."""


class _Transient(Exception):
    """A failure another attempt may not see."""


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
        wires,
        *,
        target: str = "simulator",
        gateset: str = "qis",
        shots=None,
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

    def batch_execute(self, circuits):
        if self.gateset == "native":
            circuits = [to_native(c) for c in circuits]
        return super().batch_execute(circuits)

    def generate_samples(self):
        if self.target.startswith("qpu"):
            return QPUDevice.generate_samples(self)
        return SimulatorDevice.generate_samples(self)

    # ------------------------------------------------------------- submission
    def _submit_job(self):
        deadline = time.monotonic() + self.job_timeout
        for attempt in range(self.retries + 1):
            try:
                self.histograms = self._attempt(deadline)
                return
            except _Transient as err:
                delay = self.backoff * 2**attempt
                if attempt == self.retries or time.monotonic() + delay > deadline:
                    raise IonQJobError(
                        f"IonQ job on {self.target} failed after {attempt + 1} attempt(s): {err}"
                    ) from None
                logger.warning("IonQ %s: %s; retrying in %.2f s", self.target, err, delay)
                time.sleep(delay)

    def _attempt(self, deadline: float) -> list[dict]:
        client = APIClient(
            api_key=self._key.reveal(),
            timeout=self.request_timeout,
            max_retries=self.retries,  # the client retries GETs (polls) itself
            retry_delay=self.backoff,
        )
        client.BASE_URL = api_url(self.url)  # per client, not pennylane-ionq's global
        job = Job(client=client)
        try:
            job.manager.create(**self.job)
        except requests.RequestException as err:
            raise _Transient(f"submission: {type(err).__name__}") from None
        except Exception as err:  # pennylane-ionq raises Exception(response.text)
            raise _http_error(job, "submission", err) from None
        if not job.id.value:
            raise _Transient("submission got no answer")
        self.submitted_jobs.append(job.id.value)
        wait = 0.01
        while not job.is_complete:
            if time.monotonic() > deadline:
                raise IonQTimeoutError(
                    f"IonQ job {job.id.value} on {self.target} not complete after "
                    f"{self.job_timeout:.1f} s (job_timeout)"
                )
            time.sleep(wait)
            wait = min(wait * 2, 1.0)
            try:
                job.reload()
            except requests.RequestException as err:
                raise _Transient(f"polling: {type(err).__name__}") from None
            except Exception as err:
                raise _http_error(job, "polling", err) from None
            if job.is_failed:
                raise _Transient(f"job {job.id.value} FAILED")
        if self.sharpen is not None:
            job.manager.get(resource_id=job.id.value, params={"sharpen": self.sharpen})
        data = job.data.value
        inner = next(iter(data.values()))
        return list(data.values()) if isinstance(inner, dict) else [data]


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


def _http_error(job: Job, stage: str, err: Exception) -> Exception:
    code = job.manager.http_response_status_code
    message = f"{stage}: HTTP {code}"
    if code in RETRIABLE_STATUS:
        return _Transient(message)
    return IonQJobError(f"IonQ rejected the job ({message}): {str(err)[:200]}")
