"""The task a group runs for: what derivative it asks, whether results come with it."""

import pickle

import pytest

from qstore_pl.router.execution.task import Task


@pytest.mark.parametrize(
    "task, derivative, with_results",
    [
        (Task.EXECUTE, None, False),
        (Task.JACOBIAN, "jacobian", False),
        (Task.VJP, "vjp", False),
        (Task.EXECUTE_JACOBIAN, "jacobian", True),
        (Task.EXECUTE_VJP, "vjp", True),
    ],
)
def test_each_task_says_its_derivative_and_whether_results_come_too(task, derivative, with_results):
    assert task.derivative == derivative
    assert task.with_results is with_results
    # records and logs keep the plain strings callbacks have always seen
    assert task == task.value and f"{task}" == task.value
    assert Task(task.value) is task
    assert pickle.loads(pickle.dumps(task)) is task


def test_an_unknown_task_is_refused():
    with pytest.raises(ValueError, match="'hessian' is not a valid Task"):
        Task("hessian")
