"""The router's per-structure memory: where the last forward pass ran, and the guess of
the derivative that follows it (a training loop) or of none (inference)."""

from qstore_pl.router.execution.task import Task
from qstore_pl.router.memory import StructureMemory


def test_a_new_trainable_structure_expects_the_configured_derivative():
    memory = StructureMemory()
    assert memory.expected_derivative("s", "vjp", trainable=True) == "vjp"
    assert memory.expected_derivative("s", "vjp", trainable=False) is None
    assert memory.last_forward("s") is None


def test_what_followed_the_last_forward_pass_is_expected_next():
    memory = StructureMemory()
    memory.note("s", Task.EXECUTE, "lightning.qubit")
    assert memory.last_forward("s") == "lightning.qubit"
    memory.note("s", Task.JACOBIAN, "lightning.qubit")
    assert memory.expected_derivative("s", "vjp", trainable=True) == "jacobian"


def test_two_forward_passes_in_a_row_mean_inference():
    memory = StructureMemory()
    memory.note("s", Task.EXECUTE, "a")
    memory.note("s", Task.VJP, "a")
    memory.note("s", Task.EXECUTE, "a")
    assert memory.expected_derivative("s", "vjp", trainable=True) is None  # awaiting
    memory.note("s", Task.EXECUTE, "b")  # no derivative came: forget the guess
    assert memory.last_forward("s") == "b"
    memory.note("s", Task.VJP, "b")
    assert memory.expected_derivative("s", "jacobian", trainable=True) == "vjp"


def test_results_with_derivatives_teach_nothing_about_the_sequence():
    memory = StructureMemory()
    memory.note("s", Task.EXECUTE_VJP, "a")
    assert memory.last_forward("s") is None
    assert memory.expected_derivative("s", "jacobian", trainable=True) == "jacobian"


def test_memory_is_bounded_per_structure():
    memory = StructureMemory(kept=2)
    for key in "abc":
        memory.note(key, Task.EXECUTE, "x")
    assert memory.last_forward("a") is None and memory.last_forward("c") == "x"
