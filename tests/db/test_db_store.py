"""Both store backends, for real: the embedded Qdrant store (memory and disk) and the
Pinecone SDK against a local server. Same behaviour through one interface."""

import numpy as np
import pytest
from servers.pinecone_server import API_KEY, PineconeServer

from qstore_pl.db import StateDimensionError, StoreError, StoreUnavailableError, open_store


@pytest.fixture
def pinecone_server():
    server = PineconeServer(dimension=256)
    yield server
    server.stop()


@pytest.fixture(params=["embedded-memory", "embedded-disk", "pinecone"])
def store(request, tmp_path):
    if request.param == "pinecone":
        server = request.getfixturevalue("pinecone_server")
        opened = open_store("pinecone", index_host=server.host, api_key=API_KEY)
    else:
        opened = open_store(path=None if request.param == "embedded-memory" else tmp_path / "db")
    yield opened
    opened.close()


def random_state(rng, n):
    v = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return v / np.linalg.norm(v)


def fill(store, rng, n=3, count=40):
    states = [random_state(rng, n) for _ in range(count)]
    ids = []
    for i, s in enumerate(states):
        meta = {"backend": ["a", "b"][i % 2], "shots": 100 * (i % 4), "tags": [f"t{i % 3}"]}
        ids.append(store.add(s, metadata=meta))
    return states, ids


def test_query_returns_exact_fidelities_in_order_with_phase_shifted_query(store):
    rng = np.random.default_rng(0)
    states, ids = fill(store, rng)
    target = states[7]
    noisy = target + 0.05 * random_state(rng, 3)
    query = np.exp(2.1j) * noisy / np.linalg.norm(noisy)
    hits = store.query_similar(query, top_k=5, candidates=40)
    direct = sorted(((abs(np.vdot(query, s)) ** 2, i) for i, s in zip(ids, states)), reverse=True)
    assert [h.id for h in hits] == [i for _, i in direct[:5]]
    np.testing.assert_allclose([h.fidelity for h in hits], [f for f, _ in direct[:5]], atol=1e-5)
    assert hits[0].id == ids[7]
    assert abs(abs(np.vdot(hits[0].state, target)) ** 2 - 1) < 1e-5


def test_metadata_filters_agree_across_backends(store):
    rng = np.random.default_rng(1)
    states, ids = fill(store, rng)
    query = states[0]

    def expect(keep):
        return {i for k, i in enumerate(ids) if keep(k)}

    cases = [
        ({"backend": "a"}, lambda k: k % 2 == 0),
        ({"backend": {"$in": ["a", "b"]}, "shots": {"$gte": 200}}, lambda k: k % 4 >= 2),
        ({"tags": "t1"}, lambda k: k % 3 == 1),
        ({"shots": 300, "backend": "b"}, lambda k: k % 4 == 3),
    ]
    for spec, keep in cases:
        hits = store.query_similar(query, top_k=40, filter=spec, candidates=40)
        assert {h.id for h in hits} == expect(keep), spec


def test_get_delete_stats_export_and_probability_vectors(store):
    rng = np.random.default_rng(2)
    _, ids = fill(store, rng, count=6)
    probs = np.array([0.5, 0.5, 0, 0])
    pid = store.add(probs, kind="probs", metadata={"backend": "hw"})
    assert store.stats().namespaces == {"probs-2q": 1, "pure-3q": 6}
    got = store.get([ids[2], pid])
    assert [g.id for g in got] == [ids[2], pid] and got[1].kind == "probs"
    np.testing.assert_allclose(got[1].state, probs, atol=1e-6)
    hit = store.query_similar(np.array([0.5, 0.5, 0, 0]), kind="probs")[0]
    assert hit.id == pid and hit.fidelity == pytest.approx(1.0, abs=1e-6)
    store.delete([ids[0], ids[1]])
    assert store.stats().states == 5
    assert {s.id for s in store.states()} == set(ids[2:]) | {pid}


def test_embedded_store_persists_across_reopen(tmp_path):
    rng = np.random.default_rng(3)
    psi = random_state(rng, 4)
    with open_store(path=tmp_path / "db") as store:
        sid = store.add(psi, metadata={"backend": "x"})
    with open_store(path=tmp_path / "db") as store:
        hit = store.query_similar(psi, top_k=1)[0]
    assert hit.id == sid and hit.fidelity == pytest.approx(1.0, abs=1e-6)


def test_pinecone_limit_is_13_qubits_for_pure_states():
    server = PineconeServer(dimension=16384)
    try:
        store = open_store("pinecone", index_host=server.host, api_key=API_KEY)
        rng = np.random.default_rng(4)
        psi = random_state(rng, 13)
        sid = store.add(psi)
        assert store.query_similar(psi, top_k=1)[0].id == sid
        with pytest.raises(StateDimensionError, match=r"up to 13 qubits.*embedded store"):
            store.add(random_state(rng, 14))
    finally:
        server.stop()


def test_pinecone_faults_rate_limits_and_secrets(pinecone_server, monkeypatch):
    pinecone = open_store("pinecone", index_host=pinecone_server.host, api_key=API_KEY)
    psi = np.array([1, 1j]) / np.sqrt(2)
    pinecone_server.rate_limit("/vectors/upsert", 2)  # the SDK honours Retry-After
    pinecone_server.fail_next("/query", 1, 503)
    sid = pinecone.add(psi)
    assert pinecone.query_similar(psi)[0].id == sid
    assert pinecone_server.requests["/vectors/upsert"] == 3
    pinecone_server.fail_next("/vectors/upsert", 4, 503)  # more than the SDK retries
    with pytest.raises(StoreUnavailableError):
        pinecone.add(psi)
    pinecone_server.fail_next("/vectors/upsert", 1, 400)
    with pytest.raises(StoreError) as refused:
        pinecone.add(psi)
    assert not isinstance(refused.value, StoreUnavailableError)
    with pytest.raises(StoreError) as denied:  # refused when opened, key not shown
        open_store("pinecone", index_host=pinecone_server.host, api_key="wrong-secret-123")
    assert "Invalid API Key" in str(denied.value)
    assert "wrong-secret-123" not in str(denied.value) + repr(pinecone) + repr(pinecone.backend)
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    with pytest.raises(StoreError, match="PINECONE_API_KEY"):
        open_store("pinecone", index_host=pinecone_server.host)
