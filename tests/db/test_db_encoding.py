"""State encoding: phase fixing, fidelities against direct computation, clear errors."""

import numpy as np
import pytest

from qstore_pl.db import FilterError, StateEncodingError, encoding, open_store
from qstore_pl.db.filters import parse_filter


def random_state(rng, n):
    v = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return v / np.linalg.norm(v)


def test_global_phase_is_fixed_and_encoding_round_trips():
    rng = np.random.default_rng(1)
    psi = random_state(rng, 3)
    a, _ = encoding.encode(psi, "pure")
    b, n = encoding.encode(np.exp(1.234j) * psi, "pure")
    assert n == 3 and a.shape == (16,)
    np.testing.assert_allclose(a, b, atol=1e-6)
    back = encoding.decode(a, "pure")
    assert abs(abs(np.vdot(back, psi)) ** 2 - 1) < 1e-6


def test_fidelities_equal_direct_computation():
    rng = np.random.default_rng(2)
    psi, phis = random_state(rng, 4), [random_state(rng, 4) for _ in range(6)]
    stored = np.stack([encoding.encode(p, "pure")[0] for p in phis])
    query = encoding.encode(np.exp(-0.7j) * psi, "pure")[0]
    expected = [abs(np.vdot(psi, p)) ** 2 for p in phis]
    np.testing.assert_allclose(encoding.fidelities(query, stored, "pure"), expected, atol=1e-6)


def test_probability_fidelity_is_bhattacharyya_squared():
    p, q = np.array([0.5, 0.25, 0.25, 0.0]), np.array([0.25, 0.25, 0.25, 0.25])
    fid = encoding.fidelities(
        encoding.encode(p, "probs")[0], encoding.encode(q, "probs")[0][None], "probs"
    )
    assert fid[0] == pytest.approx(np.sum(np.sqrt(p * q)) ** 2, abs=1e-6)


@pytest.mark.parametrize(
    ("state", "kind", "words"),
    [
        (np.ones(3) / np.sqrt(3), "pure", r"2\*\*n"),
        (np.ones(4), "pure", "norm 1"),
        (np.array([0.5, 0.6, 0, 0]), "probs", "sum to 1"),
        (np.array([1.5, -0.5]), "probs", "non-negative"),
        (np.array([np.nan, 1.0]), "pure", "NaN"),
        (np.ones(2) / np.sqrt(2), "mixed", "unknown state kind"),
    ],
)
def test_bad_states_are_refused_with_the_fix(state, kind, words):
    with pytest.raises(StateEncodingError, match=words):
        encoding.encode(state, kind)


def test_bad_filters_and_metadata_are_refused():
    with pytest.raises(FilterError, match=r"\$regex"):
        parse_filter({"backend": {"$regex": "x"}})
    with pytest.raises(FilterError, match="non-empty list"):
        parse_filter({"backend": {"$in": []}})
    store = open_store(path=None)
    with pytest.raises(ValueError, match="list of strings"):
        store.add(np.array([1.0, 0.0]), metadata={"params": [0.1, 0.2]})
    with pytest.raises(ValueError, match="reserved"):
        store.add(np.array([1.0, 0.0]), metadata={"kind": "x"})
