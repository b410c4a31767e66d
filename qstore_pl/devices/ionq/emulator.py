"""An offline IonQ cloud: a local HTTP server speaking the v0.4 API subset that
pennylane-ionq uses, backed by PennyLane's default.qubit.

Endpoints (under ``/v0.4``): ``POST /jobs`` (``ionq.circuit.v1`` and
``ionq.multi-circuit.v1``), ``GET /jobs/{id}``, ``GET /jobs/{id}/results/probabilities``,
``GET /jobs`` (the job list, newest first, paginated with ``limit`` and ``next``: id,
status, name, metadata, ``cost_usd``), ``GET /backends`` (status, degraded, qubits,
average queue time) and ``GET /jobs/estimate``. Requests need an
``Authorization: apiKey ...`` header (any key). Faults can be injected for tests and
drills: HTTP error codes for the next requests (submissions, polls, results), FAILED
jobs, latency, slow or never-finishing jobs, queue times, backend status, rate limits
(429), unparseable results. Like IonQ, it bills every job that completed (failed jobs
are free), whether or not anyone fetched its results: :meth:`IonQEmulator.billing` says
what it would charge. Start it with ``qstore-pl ionq-emulator --port N`` and point
IonQ backends at it with ``QSTORE_IONQ_URL=http://127.0.0.1:N`` (or the backend option
``url``).

Control endpoints (not part of IonQ's API): ``POST /_emulator/faults`` with a JSON
body of :class:`Faults` fields, ``GET /_emulator/jobs`` lists the jobs received,
``GET /_emulator/billing`` answers :meth:`IonQEmulator.billing`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from qstore_pl.devices.ionq.pricing import PricingModel, default_pricing
from qstore_pl.devices.ionq.simulate import NOISE_MODELS, CircuitError, ionq_probabilities

API_PREFIX = "/v0.4"
#: Backends the emulator reports, with their qubit counts.
BACKENDS = {
    "simulator": 29,
    "qpu.aria-1": 25,
    "qpu.aria-2": 25,
    "qpu.forte-1": 36,
    "qpu.forte-enterprise-1": 36,
}


@dataclass
class Faults:
    """What goes wrong, and how slow things are.

    Attributes
    ----------
    post_errors, get_errors, results_errors : list[int]
        HTTP status codes answered to the next POST /jobs requests, the next GET
        requests on a job and the next GET requests on a job's results, one code per
        request, in order. A POST answered with an error creates no job.
    lost_answers : list[int]
        HTTP status codes answered to the next POST /jobs requests *after* the job was
        created (a gateway that lost the answer on its way back).
    bad_results : int
        The next this many results requests are answered ``200`` with a body that is
        not JSON.
    failed_jobs : int
        The next this many jobs end with status ``failed``.
    latency : float
        Seconds added to every request before it is handled (a client that gives up
        sooner still gets its job created).
    job_seconds : float
        Seconds from submission until a job is ``completed`` (``running`` before).
    hang : bool
        Jobs stay ``running`` forever.
    rate_limit : float
        Requests per second allowed before answering 429 (0: no limit).
    queue_seconds : dict[str, float]
        Average queue time reported per backend.
    status : dict[str, str]
        Status reported per backend (``"available"`` unless set, e.g. ``"offline"``).
    """

    post_errors: list[int] = field(default_factory=list)
    get_errors: list[int] = field(default_factory=list)
    results_errors: list[int] = field(default_factory=list)
    lost_answers: list[int] = field(default_factory=list)
    bad_results: int = 0
    failed_jobs: int = 0
    latency: float = 0.0
    job_seconds: float = 0.0
    hang: bool = False
    rate_limit: float = 0.0
    queue_seconds: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)


@dataclass
class EmulatedJob:
    """A job the emulator received."""

    id: str
    payload: dict
    created: float
    fail: bool
    request: float = 0.0
    results: dict | None = None
    error: str | None = None

    def status(self, faults: Faults) -> str:
        if self.fail or self.error:
            return "failed"
        if faults.hang or time.monotonic() - self.created < faults.job_seconds:
            return "running"
        return "completed"


class IonQEmulator:
    """The emulator: start it, point clients at :attr:`url`, inject faults.

    Parameters
    ----------
    host : str
        Interface to listen on (loopback by default).
    port : int
        Port; 0 picks a free one.
    seed : int, optional
        Seed for sampled (QPU and noisy-simulator) results.
    pricing : PricingModel, optional
        What every completed job costs; default IonQ's public prices of its backend
        (the cloud simulator is free).

    Examples
    --------
    >>> with IonQEmulator() as emulator:
    ...     os.environ["QSTORE_IONQ_URL"] = emulator.url
    ...     emulator.faults.post_errors = [503]  # the next submission fails once
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        pricing: PricingModel | None = None,
    ):
        self.faults = Faults()
        self.pricing = pricing
        self.jobs: dict[str, EmulatedJob] = {}
        self.lock = threading.RLock()
        self.rng = np.random.default_rng(seed)
        self._recent: deque[float] = deque()
        self._server = _Server((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to give clients (``http://host:port``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> IonQEmulator:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> IonQEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_faults(self, **values: Any) -> None:
        """Replace fault settings (names of :class:`Faults` fields)."""
        with self.lock:
            for key, value in values.items():
                if not hasattr(self.faults, key):
                    raise ValueError(f"unknown fault {key!r}; known: {list(asdict(Faults()))}")
                setattr(self.faults, key, value)

    # ---------------------------------------------------------------- the API
    def rate_limited(self) -> bool:
        limit = self.faults.rate_limit
        if not limit:
            return False
        now = time.monotonic()
        with self.lock:
            while self._recent and now - self._recent[0] > 1.0:
                self._recent.popleft()
            if len(self._recent) >= limit:
                return True
            self._recent.append(now)
            return False

    def create_job(self, payload: Mapping[str, Any]) -> tuple[int, dict]:
        backend = payload.get("backend", "simulator")
        if backend not in BACKENDS:
            return 400, {"error": f"unknown backend {backend!r}; known: {sorted(BACKENDS)}"}
        if not isinstance(payload.get("shots"), int) or payload["shots"] <= 0:
            return 400, {"error": "shots must be a positive integer"}
        with self.lock:
            if self.faults.post_errors:
                return self.faults.post_errors.pop(0), {"error": "injected fault"}
            fail = self.faults.failed_jobs > 0
            self.faults.failed_jobs -= int(fail)
        job = EmulatedJob(uuid.uuid4().hex, dict(payload), time.monotonic(), fail, time.time())
        if not fail:
            try:
                job.results = self._simulate(payload)
            except CircuitError as err:
                return 400, {"error": str(err)}
        with self.lock:
            self.jobs[job.id] = job
            if self.faults.lost_answers:
                return self.faults.lost_answers.pop(0), {"error": "injected fault"}
        return 200, {"id": job.id, "status": "submitted", "request": time.time()}

    def _simulate(self, payload: Mapping[str, Any]) -> dict:
        spec = payload.get("input") or {}
        qubits = int(spec.get("qubits", 1))
        backend = payload.get("backend", "simulator")
        if qubits > BACKENDS[backend]:
            raise CircuitError(f"{qubits} qubits > {BACKENDS[backend]} on {backend}")
        noise = (payload.get("noise") or {}).get("model")
        if noise is not None and noise not in NOISE_MODELS:
            raise CircuitError(f"unknown noise model {noise!r}")
        if noise == "ideal":
            noise = None
        if backend.startswith("qpu"):
            noise = backend.split(".", 1)[1]
        shots = payload["shots"] if noise is not None else None
        with self.lock:
            seed = int(self.rng.integers(2**32))
        rng = np.random.default_rng(seed)
        if "circuits" in spec:
            return {
                uuid.uuid4().hex: ionq_probabilities(c["circuit"], qubits, noise, shots, rng)
                for c in spec["circuits"]
            }
        return ionq_probabilities(spec.get("circuit", []), qubits, noise, shots, rng)

    def get_job(self, job_id: str) -> tuple[int, dict]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, {"error": f"no job {job_id}"}
            if self.faults.get_errors:
                return self.faults.get_errors.pop(0), {"error": "injected fault"}
            status = job.status(self.faults)
        body: dict[str, Any] = {"id": job.id, "status": status, "backend": job.payload["backend"]}
        if status == "completed":
            url = f"{API_PREFIX}/jobs/{job.id}/results/probabilities"
            body["results"] = {"probabilities": {"url": url}}
        if status == "failed":
            body["failure"] = {"error": "injected failure", "code": "SimulationFailed"}
        return 200, body

    def get_results(self, job_id: str) -> tuple[int, Any]:
        """The results, or an injected fault: ``(code, body)``; a ``bytes`` body is sent
        as it is (not JSON)."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job.status(self.faults) != "completed":
                return 404, {"error": f"no results for job {job_id}"}
            if self.faults.results_errors:
                return self.faults.results_errors.pop(0), {"error": "injected fault"}
            if self.faults.bad_results > 0:
                self.faults.bad_results -= 1
                return 200, b"<html>502 Bad Gateway</html>"
        return 200, job.results

    def list_jobs(self, query: Mapping[str, list[str]]) -> tuple[int, dict]:
        """``GET /jobs``: newest first, ``limit`` per page, ``next`` for the page after."""
        try:
            limit = max(1, min(int(query.get("limit", ["25"])[0]), 1000))
        except ValueError as err:
            return 400, {"error": f"limit: {err}"}
        after = query.get("next", [None])[0]
        with self.lock:
            jobs = sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
            if after is not None:
                ids = [j.id for j in jobs]
                if after not in ids:
                    return 400, {"error": f"unknown page token {after!r}"}
                jobs = jobs[ids.index(after) + 1 :]
            page = [self._describe(j) for j in jobs[:limit]]
        more = len(jobs) > limit
        return 200, {"jobs": page, "next": page[-1]["id"] if more else None}

    def _describe(self, job: EmulatedJob) -> dict:
        status = job.status(self.faults)
        cost = self.job_cost(job)
        return {
            "id": job.id,
            "status": status,
            "name": job.payload.get("name"),
            "metadata": job.payload.get("metadata") or {},
            "backend": job.payload.get("backend", "simulator"),
            "request": int(job.request),
            "shots": job.payload.get("shots"),
            "cost_usd": cost if status == "completed" else 0.0,
            "estimated_cost_usd": cost,
        }

    def job_cost(self, job: EmulatedJob) -> float:
        """What ``job`` costs once completed (USD)."""
        payload = job.payload
        backend = payload.get("backend", "simulator")
        mitigation = bool((payload.get("settings") or {}).get("error_mitigation"))
        pricing = self.pricing or default_pricing(backend, mitigation)
        spec = payload.get("input") or {}
        circuits = (
            [c["circuit"] for c in spec["circuits"]]
            if "circuits" in spec
            else [spec.get("circuit", [])]
        )
        two = sum(_is_two_qubit(g) for c in circuits for g in c)
        one = sum(len(c) for c in circuits) - two
        n = len(circuits)
        return pricing.job_cost(n, payload["shots"], round(one / n), round(two / n))

    def billing(self) -> dict:
        """What IonQ would bill: ``{"jobs": completed jobs, "usd": their total cost}``."""
        with self.lock:
            done = [j for j in self.jobs.values() if j.status(self.faults) == "completed"]
            return {"jobs": len(done), "usd": sum(self.job_cost(j) for j in done)}

    def backends(self) -> tuple[int, list]:
        with self.lock:
            faults = self.faults
            return 200, [
                {
                    "backend": name,
                    "status": faults.status.get(name, "available"),
                    "degraded": faults.status.get(name) == "degraded",
                    "qubits": qubits,
                    "average_queue_time": int(1000 * faults.queue_seconds.get(name, 0.0)),
                    "last_updated": int(time.time()),
                }
                for name, qubits in BACKENDS.items()
            ]

    def estimate(self, query: Mapping[str, list[str]]) -> tuple[int, dict]:
        try:
            backend = query.get("backend", ["simulator"])[0]
            shots = int(query.get("shots", ["100"])[0])
            one = int(query.get("1q_gates", ["0"])[0])
            two = int(query.get("2q_gates", ["0"])[0])
            mitigation = query.get("error_mitigation", ["false"])[0].lower() == "true"
        except ValueError as err:
            return 400, {"error": str(err)}
        price = default_pricing(backend, mitigation).job_cost(1, shots, one, two)
        queue = self.faults.queue_seconds.get(backend, 0.0)
        return 200, {
            "backend": backend,
            "estimated_cost": price,
            "cost_unit": "usd",
            "estimated_queue_time": int(1000 * queue),
        }


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up
            super().handle_error(request, client_address)


def _is_two_qubit(gate: Mapping[str, Any]) -> bool:
    targets = gate.get("targets") or ([gate["target"]] if "target" in gate else [])
    controls = gate.get("controls") or ([gate["control"]] if "control" in gate else [])
    return len(targets) + len(controls) > 1


def _handler_for(emulator: IonQEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: tests start many of these
            pass

        def _send(self, code: int, body: Any) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code == 429:
                self.send_header("Retry-After", "1")
            try:
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a request timeout): as on a real server

        def _route(self, method: str) -> None:
            time.sleep(emulator.faults.latency)
            url = urlparse(self.path)
            path = url.path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if path.startswith("/_emulator/"):
                return self._control(method, path, raw)
            if not path.startswith(API_PREFIX + "/"):
                return self._send(404, {"error": f"unknown path {path}"})
            if not (self.headers.get("Authorization") or "").startswith("apiKey "):
                return self._send(401, {"error": "missing 'Authorization: apiKey ...' header"})
            if emulator.rate_limited():
                return self._send(429, {"error": "rate limit exceeded"})
            parts = path[len(API_PREFIX) + 1 :].strip("/").split("/")
            if method == "POST" and parts == ["jobs"]:
                try:
                    payload = json.loads(raw or b"{}")
                except json.JSONDecodeError as err:
                    return self._send(400, {"error": f"invalid JSON: {err}"})
                return self._send(*emulator.create_job(payload))
            if method == "GET" and parts == ["backends"]:
                return self._send(*emulator.backends())
            if method == "GET" and parts == ["jobs"]:
                return self._send(*emulator.list_jobs(parse_qs(url.query)))
            if method == "GET" and parts == ["jobs", "estimate"]:
                return self._send(*emulator.estimate(parse_qs(url.query)))
            if method == "GET" and len(parts) == 2 and parts[0] == "jobs":
                return self._send(*emulator.get_job(parts[1]))
            if method == "GET" and parts[0] == "jobs" and parts[2:] == ["results", "probabilities"]:
                return self._send(*emulator.get_results(parts[1]))
            return self._send(404, {"error": f"unknown endpoint {method} {path}"})

        def _control(self, method: str, path: str, raw: bytes) -> None:
            if method == "POST" and path == "/_emulator/faults":
                try:
                    emulator.set_faults(**json.loads(raw or b"{}"))
                except (ValueError, TypeError) as err:
                    return self._send(400, {"error": str(err)})
                return self._send(200, asdict(emulator.faults))
            if method == "GET" and path == "/_emulator/jobs":
                with emulator.lock:
                    jobs = [
                        {"id": j.id, "payload": j.payload, "status": j.status(emulator.faults)}
                        for j in emulator.jobs.values()
                    ]
                return self._send(200, jobs)
            if method == "GET" and path == "/_emulator/billing":
                return self._send(200, emulator.billing())
            return self._send(404, {"error": f"unknown control endpoint {path}"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler
