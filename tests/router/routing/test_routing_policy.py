"""Routing on plain workload features: eligibility, ranking, reasons, explanations."""

from dataclasses import replace

import pytest

from qstore_pl.exceptions import ConfigError, UnsupportedCircuitError
from qstore_pl.router.explain import RoutingExplanation
from qstore_pl.router.routing.capabilities import BackendCapabilities
from qstore_pl.router.routing.policy import PerformancePolicy, RoutingContext, get_policy, route
from qstore_pl.router.routing.spec import BackendSpec
from qstore_pl.router.routing.time_model import TimeModel
from qstore_pl.router.routing.workload import WorkloadFeatures

FAST_SINGLE = BackendSpec(
    name="fast64",
    device_name="x",
    capabilities=BackendCapabilities(
        max_wires=30,
        operations=frozenset({"RX", "RY", "CNOT"}),
        dtype="complex64",
        derivatives={"parameter-shift": frozenset({"expval"})},
    ),
    time_model=TimeModel(per_gate_amplitude=1e-10, per_gate=1e-6),
)
SLOW_DOUBLE = BackendSpec(
    name="slow128",
    device_name="y",
    capabilities=BackendCapabilities(
        max_wires=20,
        operations=None,
        max_matrix_wires=3,
        dtype="complex128",
        derivatives={"adjoint": frozenset({"expval", "state"})},
    ),
    time_model=TimeModel(per_gate_amplitude=1e-8, per_gate=1e-5),
)


def features(**kw):
    base = dict(
        num_wires=12,
        num_1q_gates=20,
        num_2q_gates=10,
        max_gate_wires=2,
        operations=frozenset({"RX", "CNOT"}),
        measurements=frozenset({"expval"}),
    )
    base.update(kw)
    return WorkloadFeatures(**base)


def test_performance_picks_the_fastest_and_says_by_how_much():
    decision = route(features(), [SLOW_DOUBLE, FAST_SINGLE], PerformancePolicy())
    assert decision.backend == "fast64"
    assert decision.ranked == ["fast64", "slow128"]
    assert "fastest" in decision.reason and "ahead of slow128" in decision.reason


def test_double_precision_excludes_complex64_backends():
    decision = route(features(), [FAST_SINGLE, SLOW_DOUBLE], PerformancePolicy(), "double")
    assert decision.backend == "slow128"
    rejected = next(c for c in decision.candidates if c.backend == "fast64")
    assert not rejected.eligible
    assert "below the requested double precision" in rejected.reasons[0]


def test_near_ties_go_to_the_more_precise_backend():
    same_speed = BackendSpec(
        name="same128",
        device_name="z",
        capabilities=BackendCapabilities(max_wires=30, operations=None),
        time_model=FAST_SINGLE.time_model,
    )
    decision = route(features(), [FAST_SINGLE, same_speed], PerformancePolicy())
    assert decision.backend == "same128"
    assert "double precision" in decision.reason


def test_a_circuit_wider_than_every_backend_names_each_limit():
    with pytest.raises(UnsupportedCircuitError) as info:
        route(features(num_wires=40), [FAST_SINGLE, SLOW_DOUBLE], PerformancePolicy())
    message = str(info.value)
    assert "fast64: 40 wires > max 30" in message
    assert "slow128: 40 wires > max 20" in message


def test_unsupported_gates_and_wide_matrix_gates():
    wide = features(operations=frozenset({"QubitUnitary"}), max_gate_wires=4)
    with pytest.raises(UnsupportedCircuitError) as info:
        route(wide, [FAST_SINGLE, SLOW_DOUBLE], PerformancePolicy())
    assert "unsupported operations ['QubitUnitary']" in str(info.value)
    assert "a 4-wire gate > max 3" in str(info.value)


def test_derivatives_use_each_backends_own_method():
    f = features(derivative="jacobian", num_trainable=20)
    decision = route(f, [FAST_SINGLE, SLOW_DOUBLE], PerformancePolicy())
    methods = {c.backend: c.derivative_method for c in decision.candidates}
    assert methods == {"fast64": "parameter-shift", "slow128": "adjoint"}


def test_no_backend_can_differentiate_a_state_without_a_method():
    f = features(derivative="vjp", measurements=frozenset({"state"}))
    decision = route(f, [FAST_SINGLE, SLOW_DOUBLE], PerformancePolicy())
    assert decision.backend == "slow128"
    rejected = next(c for c in decision.candidates if c.backend == "fast64")
    assert "no derivative method for ['state']" in rejected.reasons


def test_parameter_shift_cost_grows_with_trainable_parameters():
    few = FAST_SINGLE.time_model.estimate(
        features(derivative="jacobian", num_trainable=2), "parameter-shift"
    )
    many = FAST_SINGLE.time_model.estimate(
        features(derivative="jacobian", num_trainable=40), "parameter-shift"
    )
    forward = FAST_SINGLE.time_model.estimate(features(), None)
    assert few == pytest.approx(forward * 5)
    assert many == pytest.approx(forward * 81)


def test_vjp_needs_one_backward_sweep_a_jacobian_one_per_measurement():
    tm = SLOW_DOUBLE.time_model
    forward = tm.estimate(features(num_measurements=6), None)
    vjp = tm.estimate(features(num_measurements=6, derivative="vjp"), "adjoint")
    jac = tm.estimate(features(num_measurements=6, derivative="jacobian"), "adjoint")
    assert vjp == pytest.approx(3 * forward)
    assert jac == pytest.approx(13 * forward)


def test_time_grows_exponentially_with_width():
    tm = FAST_SINGLE.time_model
    t20 = tm.forward_seconds(features(num_wires=20))
    t21 = tm.forward_seconds(features(num_wires=21))
    assert 1.8 < t21 / t20 < 2.0


def test_vectorised_backends_pay_overheads_once_per_tape():
    looped = TimeModel(per_gate=1e-3, per_gate_amplitude=0.0, vectorised=False)
    vectorised = TimeModel(per_gate=1e-3, per_gate_amplitude=0.0, vectorised=True)
    broadcast = features(batch_size=32, num_tapes=1)
    assert looped.forward_seconds(broadcast) > 20 * vectorised.forward_seconds(broadcast)


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(ConfigError, match="performance"):
        get_policy("fastest-please")


def test_explanation_lists_every_candidate_and_the_choice():
    decision = route(features(), [FAST_SINGLE, SLOW_DOUBLE], PerformancePolicy(), "double")
    text = str(RoutingExplanation((decision,), (3,)))
    assert "group 0: 3 tape(s)" in text
    assert "->slow128" in text
    assert "fast64" in text and "below the requested double precision" in text
    assert "chosen: slow128" in text


def test_features_reject_unknown_derivative_kinds():
    with pytest.raises(ValueError, match="derivative"):
        features(derivative="hessian")


def test_a_backend_holding_the_forward_states_skips_the_forward_in_its_estimate():
    keeps = BackendSpec(
        name="keeps",
        device_name="z",
        capabilities=replace(SLOW_DOUBLE.capabilities, keeps_forward_states=True),
        time_model=SLOW_DOUBLE.time_model,
    )
    vjp = features(derivative="vjp")
    forward = SLOW_DOUBLE.time_model.estimate(features(), None)
    cold = route(vjp, [keeps, SLOW_DOUBLE], PerformancePolicy())
    warm = RoutingContext(warm=frozenset({"keeps", "slow128"}))
    hot = route(vjp, [keeps, SLOW_DOUBLE], PerformancePolicy(), context=warm)
    seconds = {c.backend: c.seconds for c in hot.candidates}
    assert {c.backend: c.seconds for c in cold.candidates}["keeps"] == pytest.approx(3 * forward)
    assert seconds["keeps"] == pytest.approx(2 * forward)  # the backward sweep only
    assert seconds["slow128"] == pytest.approx(3 * forward)  # cannot reuse states
    assert hot.backend == "keeps"


def test_a_forward_that_a_vjp_follows_is_ranked_with_it():
    # fast64 runs the forward fastest but differentiates by parameter shift; keeps
    # runs the forward slower, then the VJP from the states it kept
    fwd = features(num_trainable=40)
    keeps = BackendSpec(
        name="keeps",
        device_name="z",
        capabilities=replace(
            SLOW_DOUBLE.capabilities,
            keeps_forward_states=True,
            operations=frozenset({"RX", "CNOT"}),
        ),
        time_model=TimeModel(per_gate_amplitude=1e-9, per_gate=1e-6, backward_factor=2.0),
    )
    forward_only = route(fwd, [FAST_SINGLE, keeps], PerformancePolicy())
    assert forward_only.backend == "fast64"
    training = route(
        fwd, [FAST_SINGLE, keeps], PerformancePolicy(), context=RoutingContext(then="vjp")
    )
    assert training.backend == "keeps"
    assert "with the vjp that follows" in training.reason
    seconds = {c.backend: c.seconds for c in training.candidates}
    keeps_forward = keeps.time_model.estimate(fwd, None)
    vjp = replace(fwd, derivative="vjp")
    best_cold = min(
        keeps.time_model.estimate(vjp, "adjoint"),
        FAST_SINGLE.time_model.estimate(vjp, "parameter-shift"),
    )
    assert seconds["keeps"] == pytest.approx(keeps_forward + 2.0 * keeps_forward)
    assert seconds["fast64"] == pytest.approx(
        FAST_SINGLE.time_model.estimate(fwd, None) + best_cold
    )
