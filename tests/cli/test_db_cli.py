"""``qstore-pl db stats | query | export`` on an embedded store on disk."""

import json

import numpy as np

from qstore_pl.cli import main
from qstore_pl.db import open_store


def test_db_commands(tmp_path, capsys):
    path = tmp_path / "db"
    bell = np.array([1, 0, 0, 1]) / np.sqrt(2)
    with open_store(path=path) as store:
        bell_id = store.add(bell, metadata={"backend": "lightning.qubit"})
        store.add(np.array([1, 0, 0, 0]), metadata={"backend": "default.qubit"})
    assert main(["db", "stats", "--path", str(path)]) == 0
    assert "2 states" in capsys.readouterr().out

    circuit = tmp_path / "bell.json"
    ops = [["Hadamard", [], [0]], ["CNOT", [], [0, 1]]]
    circuit.write_text(json.dumps({"wires": 2, "ops": ops}))
    db = ["db", "query", "--path", str(path)]
    assert main([*db, "--circuit", str(circuit), "--top-k", "1"]) == 0
    out = capsys.readouterr().out
    assert bell_id in out and "1.000000" in out

    state_file = tmp_path / "q.npy"
    np.save(state_file, np.array([0, 1, 0, 0], dtype=complex))
    flt = json.dumps({"backend": "default.qubit"})
    assert (
        main(["db", "query", "--path", str(path), "--state", str(state_file), "--filter", flt]) == 0
    )
    assert "0.000000" in capsys.readouterr().out  # |01> is orthogonal to |00>

    out_file = tmp_path / "states.jsonl"
    assert main(["db", "export", "--path", str(path), str(out_file)]) == 0
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    exported = {line["id"]: np.array(line["real"]) + 1j * np.array(line["imag"]) for line in lines}
    np.testing.assert_allclose(exported[bell_id], bell, atol=1e-6)

    np.save(state_file, np.ones(3))
    assert main([*db, "--state", str(state_file)]) == 2
    assert "2**n" in capsys.readouterr().err
