"""Search finds the nearest states: the top-k by fidelity equals brute force over
every stored state, with phase-shifted queries, filters, both store backends; and a
query that cannot match anything says why instead of returning []."""

import uuid

import numpy as np
import pytest
from servers.pinecone_server import API_KEY, PineconeServer

from qstore_pl.db import FilterError, NoStatesError, open_store
from qstore_pl.db.encoding import encode_rows, namespace_for
from qstore_pl.db.store import EncodedState


def random_states(rng, count: int, n: int) -> np.ndarray:
    v = rng.normal(size=(count, 2**n)) + 1j * rng.normal(size=(count, 2**n))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill(store, states: np.ndarray, kind: str = "pure") -> list[str]:
    vectors, n = encode_rows(states, kind)
    ids = [str(uuid.uuid4()) for _ in states]
    entries = [
        EncodedState(
            i, namespace_for(kind, n), v, {"backend": "ab"[k % 2], "kind": kind, "n_qubits": n}
        )
        for k, (i, v) in enumerate(zip(ids, vectors))
    ]
    for start in range(0, len(entries), 1000):
        store.write(entries[start : start + 1000])
    return ids


def brute_force(query, states, ids, k, allowed=None):
    fidelity = np.abs(states @ np.conj(query)) ** 2
    order = [i for i in np.argsort(-fidelity) if allowed is None or allowed[i]]
    return [ids[i] for i in order[:k]], fidelity[order[:k]]


@pytest.fixture(params=["embedded", "pinecone"])
def store(request):
    if request.param == "pinecone":
        server = PineconeServer(dimension=32)
        opened = open_store("pinecone", index_host=server.host, api_key=API_KEY)
        yield opened
        opened.close()
        server.stop()
    else:
        opened = open_store(path=None)
        yield opened
        opened.close()


def test_top5_equals_brute_force_fidelity_for_phase_shifted_queries(store):
    rng = np.random.default_rng(0)
    states = random_states(rng, 200, 4)
    ids = fill(store, states)
    for q in rng.choice(200, 20, replace=False):
        query = np.exp(1j * rng.uniform(0, 2 * np.pi)) * states[q]
        hits = store.query_similar(query, top_k=5)
        expected, fidelities = brute_force(query, states, ids, 5)
        assert [h.id for h in hits] == expected
        np.testing.assert_allclose([h.fidelity for h in hits], fidelities, atol=1e-5)
        # short first lists: the bound, not exhaustion, must decide when to stop
        assert [h.id for h in store.query_similar(query, top_k=5, candidates=5)] == expected
        is_b = np.arange(200) % 2 == 1
        hits = store.query_similar(query, top_k=5, filter={"backend": "b"})
        assert [h.id for h in hits] == brute_force(query, states, ids, 5, allowed=is_b)[0]


def test_recall_is_exact_for_ten_thousand_states_and_for_probability_vectors():
    rng = np.random.default_rng(1)
    store = open_store(path=None)
    states = random_states(rng, 10_000, 4)
    ids = fill(store, states)
    for q in range(5):
        query = np.exp(0.7j * q) * states[q * 97]
        assert [h.id for h in store.query_similar(query, top_k=10)] == brute_force(
            query, states, ids, 10
        )[0]
    probs = np.abs(random_states(rng, 300, 3)) ** 2
    prob_ids = fill(store, probs, kind="probs")
    roots = np.sqrt(probs)
    for q in range(5):
        hits = store.query_similar(probs[q], top_k=5, kind="probs")
        assert [h.id for h in hits] == brute_force(roots[q], roots, prob_ids, 5)[0]
    store.close()


def test_a_query_that_cannot_match_says_why(store):
    rng = np.random.default_rng(2)
    states = random_states(rng, 20, 4)
    fill(store, states)
    with pytest.raises(NoStatesError, match=r"no pure states of 3 qubits.*pure-4q \(20\)"):
        store.query_similar(random_states(rng, 1, 3)[0])
    with pytest.raises(NoStatesError, match="no probs states of 4 qubits"):
        store.query_similar(np.full(16, 1 / 16), kind="probs")
    with pytest.raises(FilterError, match=r"\['backnd'\].*'backend'"):
        store.query_similar(states[0], filter={"backnd": "a"})
    # a key that exists with a value nothing has: a true empty result
    assert store.query_similar(states[0], filter={"backend": "c"}) == []
