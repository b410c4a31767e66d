"""Metered work on a Dask cluster: one priced group stays one IonQ job (one minimum
charge), and workers sign in with their own environment's key (none is sent to them)."""

import pennylane as qml
import pytest
from distributed import LocalCluster
from ionq_support import API_KEY, emulator_server, ionq

import qstore_pl
from qstore_pl.devices.ionq.pricing import PricingModel

FLAT = {"model": "per_gate_shot", "cost_1q": 1e-9, "cost_2q": 1e-9, "minimum": 2.0}
emulator = pytest.fixture(emulator_server, name="emulator")


def test_a_priced_group_is_one_job_on_a_cluster(emulator, tmp_path):
    emulator.pricing = PricingModel(**FLAT)
    worker_env = {"QSTORE_IONQ_URL": emulator.url, "IONQ_API_KEY": API_KEY}
    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0", env=worker_env
    ) as cluster:
        # a key written into the config never reaches the workers: they use their own
        options = {"api_key": "sk-config-only-5e1", "retries": 1, "backoff": 0.01}
        cfg = {
            "backends": [ionq("hardware", "qpu.aria-1", pricing=FLAT, options=options)],
            "ledger": str(tmp_path / "ledger.sqlite"),
            "executor": {"kind": "dask", "address": cluster.scheduler_address},
        }
        dev = qml.device("qstore.router", wires=2, router_config=cfg)
        tapes = [
            qml.tape.QuantumScript(
                [qml.RX(0.2 * i, 0), qml.CNOT([0, 1])], [qml.expval(qml.Z(1))], shots=200
            )
            for i in range(8)
        ]
        try:
            with qstore_pl.purpose("validation"):
                results = qml.execute(tapes, dev)
        finally:
            dev.executor.close()
    assert len(results) == 8
    [job] = emulator.jobs.values()  # one job of 8 circuits, not one per worker
    assert len(job.payload["input"]["circuits"]) == 8
    assert emulator.billing()["usd"] == dev.cost_report().total == 2.0
