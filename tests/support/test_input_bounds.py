"""Inputs have bounds (issue 12 section 6): circuit files, QASM, YAML configs and the
``db`` commands raise a clear error, quickly and without large allocations.

The pathological inputs run in one subprocess with a generous timeout, so a
regression fails the test instead of hanging it or taking the machine's memory; each
case reports its exception and the peak of traced allocations (numpy's included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pennylane as qml
import pytest

from qstore_pl.circuits import from_openqasm, tape_from_json, tape_to_json
from qstore_pl.circuits.qasm import evaluate_angle
from qstore_pl.db.circuits import final_states
from qstore_pl.exceptions import ConfigError
from qstore_pl.router.config import load_config
from qstore_pl.support.atomic_file import atomic_write
from qstore_pl.support.limits import InputLimitError, Limits, current_limits, excerpt

MiB = 2**20
#: Traced allocations any case may make; every pathological input asked for GiBs.
SMALL = 64 * MiB

_CASES = textwrap.dedent(
    r"""
    import json, sys, tracemalloc
    import pennylane as qml, numpy as np
    from qstore_pl.circuits import from_openqasm, tape_from_json, tape_to_json
    from qstore_pl.cli import main
    from qstore_pl.router.config import load_config

    work = sys.argv[1]
    tape = qml.tape.QuantumScript([qml.StatePrep(np.array([1.0, 0.0]), wires=[0, 1], pad_with=0.0)])
    padded = json.loads(tape_to_json(tape))
    padded["operations"][0]["meta"]["v"][1]["v"] = list(range(28))  # pad to 2**28 amplitudes
    laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
    ) + "backends: [" + ", ".join(["*i"] * 9) + "]\n"
    with open(f"{work}/laughs.yaml", "w") as f:
        f.write(laughs)
    with open(f"{work}/wide.json", "w") as f:
        f.write(json.dumps({"wires": 30, "ops": [["Hadamard", [], [0]]]}))

    cases = {
        "json_padded_state": lambda: tape_from_json(json.dumps(padded)),
        "json_deep": lambda: tape_from_json("[" * 100_000 + "]" * 100_000),
        "qasm_power": lambda: from_openqasm("OPENQASM 2.0;\nqreg q[1];\nrx(9^9^9) q[0];\n"),
        "qasm_wide": lambda: from_openqasm("OPENQASM 2.0;\nqreg q[100000000];\nh q;\n"),
        "yaml_laughs": lambda: load_config(f"{work}/laughs.yaml"),
        "db_query_wide": lambda: main(
            ["db", "query", "--path", work, "--circuit", f"{work}/wide.json"]
        ),
    }
    sizes = {"json_padded_state": len(json.dumps(padded)), "yaml_laughs": len(laughs)}
    tracemalloc.start()
    for name, case in cases.items():
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        try:
            outcome = {"returned": repr(case())[:200]}
        except BaseException as err:
            outcome = {"error": [c.__name__ for c in type(err).__mro__], "message": str(err)}
        outcome["peak"] = tracemalloc.get_traced_memory()[1] - before
        outcome["input_bytes"] = sizes.get(name)
        print(json.dumps({name: outcome}), flush=True)
    """
)


@pytest.fixture(scope="module")
def pathological(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("bounds")
    run = subprocess.run(
        [sys.executable, "-c", _CASES, str(work)],
        capture_output=True,
        text=True,
        timeout=300,  # each case finishes in well under a second; the old code hung
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    results = {}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            results.update(json.loads(line))
    assert len(results) == 6, run.stdout[-2000:] + run.stderr[-2000:]
    return results


def _refused(outcome: dict, kind: str = "ValueError") -> str:
    assert "error" in outcome, f"accepted: {outcome}"
    assert kind in outcome["error"], outcome
    assert len(outcome["message"]) < 600, "error messages quote short excerpts"
    assert outcome["peak"] < SMALL, f"allocated {outcome['peak'] / MiB:.0f} MiB"
    return outcome["message"]


def test_padded_state_prep_json_is_refused_before_allocating(pathological):
    outcome = pathological["json_padded_state"]
    assert outcome["input_bytes"] < 1000
    message = _refused(outcome, "InputLimitError")
    assert "StatePrep" in message and "28" in message and "QSTORE_MAX_STATE_WIRES" in message


def test_deeply_nested_json_raises_value_error_not_recursion_error(pathological):
    message = _refused(pathological["json_deep"], "InputLimitError")
    assert "nest" in message and "QSTORE_MAX_NESTING" in message


def test_qasm_integer_power_overflows_at_once(pathological):
    message = _refused(pathological["qasm_power"])
    assert "line 3" in message and "9^9^9" in message


def test_qasm_huge_register_is_refused(pathological):
    message = _refused(pathological["qasm_wide"], "InputLimitError")
    assert "line 2" in message and "100,000,000" in message and "QSTORE_MAX_WIRES" in message


def test_yaml_billion_laughs_is_refused_with_a_short_message(pathological):
    outcome = pathological["yaml_laughs"]
    assert outcome["input_bytes"] < 600
    message = _refused(outcome, "ConfigError")
    assert "alias" in message and "QSTORE_MAX_CONFIG_NODES" in message


def test_db_query_of_a_30_wire_circuit_exits_2_without_allocating(pathological):
    outcome = pathological["db_query_wide"]
    assert outcome["returned"] == "2"
    assert outcome["peak"] < SMALL


# ----------------------------------------------------------------------------- JSON


def _circuit(operations: list) -> str:
    return json.dumps(
        {"format": "qstore_pl.circuit", "version": 1, "operations": operations, "measurements": []}
    )


def test_json_text_parameter_names_the_operator_and_parameter():
    with pytest.raises(ValueError, match=r"operations\[0\] \(RX\): parameter 0 is 'abc'"):
        tape_from_json(_circuit([{"op": "RX", "wires": [0], "data": ["abc"]}]))
    with pytest.raises(ValueError, match=r"operations\[1\] \(Rot\): parameter 2 is"):
        tape_from_json(
            _circuit(
                [
                    {"op": "RX", "wires": [0], "data": [0.5]},
                    {"op": "Rot", "wires": [0], "data": [0.1, 0.2, {"$": "dict", "items": []}]},
                ]
            )
        )


def test_json_nesting_just_over_the_bound_is_refused_and_under_it_loads():
    deep = _circuit([{"op": "RX", "wires": [0], "data": ["[" * 200 + "]" * 200]}])
    deep = deep.replace('"' + "[" * 200 + "]" * 200 + '"', "[" * 200 + "]" * 200)
    with pytest.raises(InputLimitError, match="max_nesting"):
        tape_from_json(deep)
    tape = qml.tape.QuantumScript(
        [qml.prod(qml.RX(0.3, 0), qml.sum(qml.RY(0.2, 1), qml.s_prod(0.5, qml.PauliZ(0))))]
    )
    assert qml.equal(tape_from_json(tape_to_json(tape)), tape)


def test_json_state_prep_within_the_bound_round_trips():
    tape = qml.tape.QuantumScript(
        [qml.StatePrep(np.array([0.6, 0.8]), wires=range(4), pad_with=0.0)], [qml.state()]
    )
    loaded = tape_from_json(tape_to_json(tape))
    np.testing.assert_allclose(
        qml.execute([loaded], qml.device("default.qubit"))[0],
        qml.execute([tape], qml.device("default.qubit"))[0],
    )


def test_state_wire_bound_follows_the_environment(monkeypatch):
    tape = qml.tape.QuantumScript([qml.StatePrep(np.array([1.0, 0.0]), wires=range(6), pad_with=0)])
    text = tape_to_json(tape)
    monkeypatch.setenv("QSTORE_MAX_STATE_WIRES", "5")
    with pytest.raises(InputLimitError, match="6 is over the limit of 5"):
        tape_from_json(text)
    monkeypatch.setenv("QSTORE_MAX_STATE_WIRES", "6")
    assert len(tape_from_json(text).wires) == 6


# ----------------------------------------------------------------------------- QASM

_HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\n'


@pytest.mark.parametrize(
    "expression, problem",
    [
        ("(-8)^0.5", "not a finite real angle"),
        ("1e400", "not a finite real angle"),
        ("exp(1000)", "cannot evaluate"),
        ("2^2^2^2^2^2", "cannot evaluate"),
        ("-" * 300 + "1", "max_expression"),
    ],
)
def test_qasm_angle_expressions_are_bounded(expression, problem):
    with pytest.raises(ValueError, match=problem) as info:
        from_openqasm(f"{_HEADER}rx({expression}) q[0];\n")
    assert "line 4" in str(info.value) and len(str(info.value)) < 400


def test_qasm_arithmetic_is_exact_for_ordinary_angles():
    assert evaluate_angle("2^3") == 8.0
    assert evaluate_angle("pi/2") == np.pi / 2
    assert evaluate_angle("0.1") == 0.1
    assert evaluate_angle("-3*sin(pi/6)") == pytest.approx(-1.5, abs=1e-15)


def test_qasm_operation_and_wire_bounds_follow_the_environment(monkeypatch):
    broadcast = "OPENQASM 2.0;\nqreg q[20];\nh q;\nh q;\n"
    assert len(from_openqasm(broadcast).operations) == 40
    monkeypatch.setenv("QSTORE_MAX_OPERATIONS", "30")
    with pytest.raises(InputLimitError, match="line 4: operations: 40 is over the limit of 30"):
        from_openqasm(broadcast)
    monkeypatch.setenv("QSTORE_MAX_WIRES", "19")
    with pytest.raises(InputLimitError, match="line 2: qreg q: 20"):
        from_openqasm(broadcast)


def test_qasm_line_numbers_are_right_deep_into_a_large_file():
    body = "".join(
        f"rx({i / 1000}) q[{i % 2}];\n// comment;\n\ncx q[0],q[1];\n" for i in range(5000)
    )
    tape = from_openqasm(_HEADER + body)
    assert len(tape.operations) == 10_000 and tape.operations[-2].data[0] == 4.999
    with pytest.raises(ValueError, match="line 20005: unknown gate 'rq'"):
        from_openqasm(_HEADER + body + "\n  rq q[0];\n")
    with pytest.raises(ValueError, match=r"line 20006: statement 'h q\[0\]' lacks its ';'"):
        from_openqasm(_HEADER + body + "\n\n h q[0]")


def test_qasm_errors_quote_a_short_excerpt():
    with pytest.raises(ValueError) as info:
        from_openqasm(_HEADER + "barrier " + "q[0]," * 100_000 + "r[1];\n")
    assert len(str(info.value)) < 300


# ----------------------------------------------------------------------------- YAML


def test_yaml_recursive_alias_is_a_config_error(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("backends: &x [lightning.qubit, *x]\n")
    with pytest.raises(ConfigError, match="alias refers to a value that contains it"):
        load_config(path)


def test_yaml_ordinary_anchors_still_load(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "backends:\n"
        "  - {name: fast, type: lightning.qubit, options: &opts {batch_obs: true}}\n"
        "  - {name: check, type: default.qubit, use_for: validation}\n"
        "fallback_chain: &chain [fast, check]\n"
    )
    config = load_config(path)
    assert [b.name for b in config.backends] == ["fast", "check"]
    assert config.backends[0].options == {"batch_obs": True}
    assert config.fallback_chain == ("fast", "check")


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_deeply_nested_config_is_a_config_error(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    path.write_text("backends = " if suffix == ".toml" else "backends: ")
    with path.open("a") as f:
        f.write("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nests lists or tables too deeply"):
        load_config(path)


def test_yaml_alias_bound_follows_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "fanout.yaml"
    path.write_text("a: &a [lightning.qubit]\nbackends: [" + ", ".join(["*a"] * 50) + "]\n")
    monkeypatch.setenv("QSTORE_MAX_CONFIG_NODES", "60")
    with pytest.raises(ConfigError, match="over the limit of 60"):
        load_config(path)


# ----------------------------------------------------------------------------- db


def test_db_read_commands_refuse_a_missing_store_and_keep_the_output(tmp_path, capsys):
    from qstore_pl.cli import main

    output = tmp_path / "states.jsonl"
    output.write_text('{"kept": true}\n')
    missing = tmp_path / "stroe"  # a typo
    assert main(["db", "export", "--path", str(missing), str(output)]) == 2
    assert "no state store" in capsys.readouterr().err
    assert output.read_text() == '{"kept": true}\n'
    assert not missing.exists()
    assert main(["db", "stats", "--path", str(missing)]) == 2
    assert not missing.exists()


def test_db_query_circuit_file_errors_name_the_problem(tmp_path, capsys):
    from qstore_pl.cli import main
    from qstore_pl.db import open_store

    store = tmp_path / "db"
    with open_store(path=store) as opened:
        opened.add(np.array([1, 0, 0, 1]) / np.sqrt(2))
    cases = {
        "text": ({"wires": 2, "ops": [["RX", ["abc"], [0]]]}, "RX has the parameters"),
        "wire": ({"wires": 2, "ops": [["CNOT", [], [0, 2]]]}, "wires are 0 .. 1"),
        "gate": ({"wires": 2, "ops": [["Hadamrd", [], [0]]]}, "unknown gate 'Hadamrd'"),
        "shape": ({"wires": "2", "ops": []}, "not a circuit file"),
    }
    for name, (spec, problem) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(spec))
        assert main(["db", "query", "--path", str(store), "--circuit", str(path)]) == 2
        assert problem in capsys.readouterr().err


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as out:
            out.write("half")
            raise RuntimeError("store went away")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]
    with atomic_write(path) as out:
        out.write("new\n")
    assert path.read_text() == "new\n"


def test_recorded_state_width_is_checked_before_allocating():
    tape = qml.tape.QuantumScript([qml.Hadamard(0), qml.CNOT([0, 29])])
    with pytest.raises(InputLimitError, match="30 is over the limit of 24"):
        final_states(tape)


# ----------------------------------------------------------------------------- limits


def test_limits_defaults_and_bad_environment_values(monkeypatch):
    assert current_limits() == Limits()
    monkeypatch.setenv("QSTORE_MAX_NESTING", "ten")
    with pytest.raises(ConfigError, match="QSTORE_MAX_NESTING='ten'; use a positive integer"):
        current_limits()


def test_excerpt_is_short_for_huge_and_shared_values():
    shared: list = ["lol"] * 9
    for _ in range(30):  # 9**30 values once expanded
        shared = [shared] * 9
    assert len(excerpt(shared)) <= 80
    assert len(excerpt("x" * 10**7)) <= 80
    assert excerpt({"b": [1, 2]}) == "{'b': [1, 2]}"
