"""A local HTTP server on 127.0.0.1 that speaks the Pinecone data-plane subset the
``pinecone`` SDK calls: POST /vectors/upsert, POST /query, GET /vectors/fetch,
POST /vectors/delete, POST /describe_index_stats, GET /vectors/list.

Tests point the real SDK at it. Faults are injected with :meth:`fail_next` (an HTTP
status for the next requests to a path), :meth:`rate_limit` (429 with Retry-After)
and :meth:`stop` / :meth:`start` (the port goes dead, then comes back with its data,
like an outage). ``accepted_writes`` counts, per vector id, the upserts that stored it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

API_KEY = "test-key-not-a-secret"


class PineconeServer:
    """An in-memory Pinecone index with a fixed dimension and dot-product metric."""

    def __init__(self, dimension: int = 256, port: int = 0):
        self.dimension = dimension
        self.namespaces: dict[str, dict[str, dict]] = {}
        self.accepted_writes: Counter = Counter()
        self.requests: Counter = Counter()
        self._faults: dict[str, list[int]] = {}
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self.start()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        """Serve (again) on the same port."""
        handler = type("Handler", (_Handler,), {"index": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the port: clients get connection errors until :meth:`start`."""
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:  # keep-alive connections die with the server, as in an outage
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()

    def fail_next(self, path: str, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests to ``path`` with ``status``."""
        with self._lock:
            self._faults.setdefault(path, []).extend([status] * count)

    def rate_limit(self, path: str, count: int) -> None:
        """Answer the next ``count`` requests to ``path`` with 429 Too Many Requests."""
        self.fail_next(path, count, 429)

    def take_fault(self, path: str) -> int | None:
        with self._lock:
            self.requests[path] += 1
            queue = self._faults.get(path)
            return queue.pop(0) if queue else None

    # ----------------------------------------------------------- operations
    def upsert(self, body: dict) -> dict:
        space = self.namespaces.setdefault(body.get("namespace", ""), {})
        for v in body["vectors"]:
            if len(v["values"]) != self.dimension:
                raise _BadRequest(
                    f"Vector dimension {len(v['values'])} does not match the dimension of "
                    f"the index {self.dimension}"
                )
        with self._lock:
            for v in body["vectors"]:
                space[v["id"]] = {
                    "id": v["id"],
                    "values": v["values"],
                    "metadata": v.get("metadata"),
                }
                self.accepted_writes[v["id"]] += 1
        return {"upsertedCount": len(body["vectors"])}

    def query(self, body: dict) -> dict:
        space = self.namespaces.get(body.get("namespace", ""), {})
        rows = [v for v in space.values() if _matches(v.get("metadata") or {}, body.get("filter"))]
        query = np.asarray(body["vector"])
        scored = sorted(
            ((float(np.dot(query, v["values"])), v) for v in rows), key=lambda s: -s[0]
        )[: body["topK"]]
        matches = []
        for score, v in scored:
            match = {"id": v["id"], "score": score}
            if body.get("includeValues"):
                match["values"] = v["values"]
            if body.get("includeMetadata") and v["metadata"]:
                match["metadata"] = v["metadata"]
            matches.append(match)
        return {"matches": matches, "namespace": body.get("namespace", "")}

    def fetch(self, params: dict) -> dict:
        namespace = params.get("namespace", [""])[0]
        space = self.namespaces.get(namespace, {})
        found = {i: space[i] for i in params.get("ids", []) if i in space}
        return {"vectors": found, "namespace": namespace}

    def delete(self, body: dict) -> dict:
        space = self.namespaces.get(body.get("namespace", ""), {})
        for i in body.get("ids", []):
            space.pop(i, None)
        return {}

    def stats(self, body: dict) -> dict:
        counts = {name: {"vectorCount": len(s)} for name, s in self.namespaces.items() if s}
        return {
            "namespaces": counts,
            "dimension": self.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(c["vectorCount"] for c in counts.values()),
            "metric": "dotproduct",
        }

    def list(self, params: dict) -> dict:
        namespace = params.get("namespace", [""])[0]
        ids = sorted(self.namespaces.get(namespace, {}))
        start = int(params.get("paginationToken", ["0"])[0])
        limit = int(params.get("limit", ["100"])[0])
        page = {"vectors": [{"id": i} for i in ids[start : start + limit]], "namespace": namespace}
        if start + limit < len(ids):
            page["pagination"] = {"next": str(start + limit)}
        return page


class _BadRequest(Exception):
    pass


def _matches(metadata: dict, spec: dict | None) -> bool:
    """Pinecone's filter language: field conditions, $and, $or, $eq/$ne/$in/$nin/ranges."""
    if not spec:
        return True
    for key, cond in spec.items():
        if key == "$and":
            if not all(_matches(metadata, c) for c in cond):
                return False
        elif key == "$or":
            if not any(_matches(metadata, c) for c in cond):
                return False
        else:
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            if not all(_holds(metadata.get(key), op, v) for op, v in ops.items()):
                return False
    return True


def _holds(actual, op: str, value) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    tests = {
        "$eq": lambda a: a == value,
        "$ne": lambda a: a != value,
        "$in": lambda a: a in value,
        "$nin": lambda a: a not in value,
        "$gt": lambda a: isinstance(a, int | float) and a > value,
        "$gte": lambda a: isinstance(a, int | float) and a >= value,
        "$lt": lambda a: isinstance(a, int | float) and a < value,
        "$lte": lambda a: isinstance(a, int | float) and a <= value,
    }
    if op not in tests:
        raise _BadRequest(f"unsupported filter operator {op}")
    return any(tests[op](a) for a in values if a is not None)


class _Handler(BaseHTTPRequestHandler):
    index: PineconeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.index._lock:
            self.index._connections.add(self.connection)

    def _reply(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if self.headers.get("Api-Key") != API_KEY:
            self._reply(401, {"error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"}})
            return
        fault = self.index.take_fault(url.path)
        if fault is not None:
            headers = {"Retry-After": "0.01"} if fault == 429 else {}
            self._reply(fault, {"error": {"code": "INJECTED", "message": "injected"}}, headers)
            return
        routes = {
            ("POST", "/vectors/upsert"): lambda: self.index.upsert(body),
            ("POST", "/query"): lambda: self.index.query(body),
            ("GET", "/vectors/fetch"): lambda: self.index.fetch(parse_qs(url.query)),
            ("POST", "/vectors/delete"): lambda: self.index.delete(body),
            ("POST", "/describe_index_stats"): lambda: self.index.stats(body),
            ("GET", "/vectors/list"): lambda: self.index.list(parse_qs(url.query)),
        }
        route = routes.get((method, url.path))
        if route is None:
            self._reply(404, {"error": {"code": "NOT_FOUND", "message": url.path}})
            return
        try:
            self._reply(200, route())
        except _BadRequest as err:
            self._reply(400, {"error": {"code": "INVALID_ARGUMENT", "message": str(err)}})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")
