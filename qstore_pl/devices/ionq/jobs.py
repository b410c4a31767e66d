"""One IonQ job, submitted at most once: the money-safe half of the IonQ device.

A submission that may have reached IonQ is never sent again blindly: every job carries
a client-made key in its ``metadata`` (``qstore_key``), and before sending again the
job list is searched for that key. A POST that got no answer (read timeout, dropped
connection) is never re-sent at all: IonQ may create the job after the client gave up,
so only a lookup can settle it. Polls and the results fetch are retried (they cost
nothing); a job that completed is billed whether or not its results arrive, so failing
there raises :class:`~qstore_pl.exceptions.JobOutcomeUnknown` and the ledger keeps the
reservation until ``qstore-pl ledger reconcile`` reads IonQ's own record.

pennylane-ionq's :class:`~pennylane_ionq.api_client.APIClient` sends every request, with
its own retries off (``max_retries=0``): it retries a POST after a connection error or
timeout, which made one call create up to 16 jobs against a slow server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests
from pennylane_ionq.api_client import APIClient

from qstore_pl.devices.ionq.connection import api_url, base_url
from qstore_pl.exceptions import JobOutcomeUnknown, QstoreError

#: HTTP answers worth another try.
RETRIABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, *range(520, 530)})
#: Metadata key holding the job's idempotency key.
KEY_FIELD = "qstore_key"
_DONE = frozenset({"completed", "failed", "canceled"})
_LOOKUP_PAGE = 100


class IonQJobError(QstoreError, RuntimeError):
    """An IonQ job could not be run (after retries, or for a reason retrying cannot fix)."""


class IonQTimeoutError(IonQJobError, JobOutcomeUnknown, TimeoutError):
    """An IonQ job did not complete within the job-level timeout."""


class Refused(Exception):
    """IonQ answered a submission with a retriable error: no job was made."""


class JobFailed(Exception):
    """IonQ reports the job FAILED (failed jobs are not billed)."""


class _NoAnswer(Exception):
    """A request got no usable answer after its retries."""


class JobSession:
    """Requests for IonQ jobs on one server, each retried on its own.

    Parameters
    ----------
    key : str
        The API key (only ever placed in the ``Authorization`` header).
    url : str, optional
        Server (see :func:`~qstore_pl.devices.ionq.connection.api_url`).
    request_timeout : float
        Seconds one HTTP request may take.
    retries : int
        Extra attempts of a poll, lookup or results request.
    backoff : float
        Seconds before the first retry, doubling for each next one.
    """

    def __init__(
        self,
        key: str,
        url: str | None,
        request_timeout: float,
        retries: int,
        backoff: float,
    ):
        self.client = APIClient(api_key=key, timeout=request_timeout, max_retries=0)
        self.client.BASE_URL = api_url(url)  # per client, not pennylane-ionq's global
        self.root = base_url(url)
        self.retries, self.backoff = retries, backoff

    # ---------------------------------------------------------------- submit
    def submit(self, payload: Mapping[str, Any]) -> str:
        """POST the job once; its id.

        Raises
        ------
        Refused
            IonQ answered with a retriable error (no job was created).
        IonQJobError
            IonQ rejected the job (a bad circuit or option; retrying cannot help).
        JobOutcomeUnknown
            No answer came and no job with this key could be found: IonQ may still
            have created it.
        """
        key = payload["metadata"][KEY_FIELD]
        try:
            response = self.client.post("jobs", dict(payload))
        except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as err:
            raise Refused(f"submission: {type(err).__name__}") from None  # never sent
        except requests.RequestException as err:
            found = self.find(key, patient=True)
            if found is not None:
                return found
            raise JobOutcomeUnknown(
                f"IonQ job {key}: the submission got no answer ({type(err).__name__}) and no "
                "job with this key is listed yet; its charge stays reserved (unconfirmed) "
                "until `qstore-pl ledger reconcile` finds IonQ's record",
                job_keys=(key,),
            ) from None
        if response.status_code in RETRIABLE_STATUS:
            raise Refused(f"submission: HTTP {response.status_code}")
        body = _json(response)
        if response.status_code not in (200, 201) or not isinstance(body, dict):
            raise IonQJobError(
                f"IonQ rejected the job (HTTP {response.status_code}): {response.text[:200]}"
            )
        return str(body["id"])

    def find(self, key: str, patient: bool = False) -> str | None:
        """The id of the newest job tagged ``key`` (not FAILED), or ``None``.

        ``patient`` looks ``retries + 1`` times, ``backoff`` apart, for a submission
        that may still be on its way.

        Raises
        ------
        JobOutcomeUnknown
            The job list could not be read.
        """
        for _ in self._attempts(self.retries + 1 if patient else 1):
            try:
                for job in self.jobs(newest=_LOOKUP_PAGE):  # a re-send follows soon after
                    meta = job.get("metadata") or {}
                    if meta.get(KEY_FIELD) == key and job.get("status") != "failed":
                        return str(job["id"])
            except JobOutcomeUnknown as err:
                raise JobOutcomeUnknown(
                    f"IonQ job {key}: cannot read the job list to check whether it was "
                    f"created ({err}); its charge stays reserved (unconfirmed)",
                    job_keys=(key,),
                ) from None
        return None

    def jobs(self, newest: int | None = None) -> Iterator[dict]:
        """IonQ's job list, newest first (all pages, or the ``newest`` first jobs).

        Raises
        ------
        JobOutcomeUnknown
            If a page cannot be read (after retries).
        """
        after = None
        seen = 0
        while True:
            params = {"limit": _LOOKUP_PAGE} | ({"next": after} if after else {})
            try:
                page = self.get_json("jobs", params)
            except _NoAnswer as err:
                raise JobOutcomeUnknown(f"cannot read IonQ's job list: {err}") from None
            for job in page.get("jobs", []):
                yield job
                seen += 1
            after = page.get("next")
            if not after or (newest is not None and seen >= newest):
                return

    # ------------------------------------------------------------------ wait
    def wait(
        self, job_id: str, job_timeout: float, deadline: float, params: Mapping | None = None
    ) -> Any:
        """Poll until the job completes, then fetch its results (retried).

        Raises
        ------
        JobFailed
            IonQ reports the job FAILED.
        IonQTimeoutError
            Not complete by ``deadline`` (``job_timeout`` seconds after submission).
        JobOutcomeUnknown
            The job or its results could not be read (a completed job is billed).
        """
        pause = 0.01
        while True:
            try:
                job = self.get_json(f"jobs/{job_id}")
            except _NoAnswer as err:
                raise _unknown(job_id, f"polling failed ({err})") from None
            status = str(job.get("status", "")).lower()
            if status == "failed":
                raise JobFailed(f"job {job_id} FAILED")
            if status == "completed":
                break
            if status in _DONE:
                raise IonQJobError(f"IonQ job {job_id} ended {status}")
            if time.monotonic() > deadline:
                raise IonQTimeoutError(
                    f"IonQ job {job_id} not complete after {job_timeout:.1f} s (job_timeout, "
                    f"status {status}); its charge stays reserved (unconfirmed) until reconciled",
                    job_ids=(job_id,),
                )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        url = ((job.get("results") or {}).get("probabilities") or {}).get("url")
        path = url or f"{self.client.BASE_URL}/jobs/{job_id}/results/probabilities"
        try:
            results = self.get_json(path, params)
        except _NoAnswer as err:
            raise _unknown(
                job_id, f"completed, but its results could not be read ({err})"
            ) from None
        if not isinstance(results, dict) or not results:
            raise _unknown(job_id, "completed, but its results are empty")
        return results

    def get_json(self, path: str, params: Mapping | None = None) -> Any:
        """GET ``path`` (relative to the API root, or absolute) as JSON, retried."""
        if path.startswith("/"):
            url = self.root + path
        elif path.startswith("http"):
            url = path
        else:
            url = self.client.join_path(path)
        problem = ""
        for _ in self._attempts(self.retries + 1):
            try:
                response = self.client.request(requests.get, url=url, params=params)
            except requests.RequestException as err:
                problem = type(err).__name__
                continue
            if response.status_code in RETRIABLE_STATUS:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise _NoAnswer(f"HTTP {response.status_code}")
            body = _json(response)
            if body is None:
                problem = "a body that is not JSON"
                continue
            return body
        raise _NoAnswer(f"{problem} after {self.retries + 1} attempt(s)")

    def _attempts(self, count: int) -> Iterator[int]:
        """``range(count)``, pausing ``backoff`` seconds (doubling) before each attempt
        after the first."""
        for attempt in range(count):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            yield attempt


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError):
        return None


def _unknown(job_id: str, what: str) -> JobOutcomeUnknown:
    return JobOutcomeUnknown(
        f"IonQ job {job_id} {what}; it may be billed, so its charge stays reserved "
        "(unconfirmed) until `qstore-pl ledger reconcile` reads IonQ's record",
        job_ids=(job_id,),
    )
