"""What qstore's devices decide the same way in ``setup_execution_config``.

The router, ``qstore.batched`` and ``qstore.qsim`` each resolve an
:class:`~pennylane.devices.ExecutionConfig` the way lightning's base class does: refuse
device options they do not know, compute derivatives themselves (the adjoint method)
for ``"best"``, ``"adjoint"`` and ``"device"``, and prefer vector-Jacobian products,
one backward sweep per batch, over Jacobians. Where they agree, it is decided here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from pennylane.devices import ExecutionConfig, MCMConfig
from pennylane.exceptions import DeviceError

#: ``diff_method`` values a qstore device answers with its own adjoint derivatives.
DEVICE_GRADIENTS = frozenset({"best", "adjoint", "device"})


def interface_name(config: ExecutionConfig) -> str:
    """The config's ML interface as a string (``"tf"``, ``"jax-jit"``, ``"auto"``...)."""
    return str(getattr(config.interface, "value", config.interface))


def reject_device_options(
    config: ExecutionConfig, device_name: str, allowed: Collection[str] = ()
) -> None:
    """Raise ``DeviceError`` for any device option (qstore devices take none from
    users; ``allowed`` are the device's own, set by its ``setup_execution_config``)."""
    for option in config.device_options:
        if option not in allowed:
            raise DeviceError(f"device option {option!r} is not known to {device_name}")


def needs_jacobians(config: ExecutionConfig) -> bool:
    """Whether the framework needs Jacobians rather than device VJPs: TensorFlow does,
    since ``GradientTape.jacobian`` cannot vectorise a device VJP, and so does JAX,
    whose forward mode (``jax.jacfwd``, ``jax.hessian``) cannot go through a custom
    VJP; a JAX user who asks for ``device_vjp=True`` gets VJPs."""
    return interface_name(config).startswith(("tf", "jax"))


def device_gradient_settings(
    config: ExecutionConfig, jacobians: bool, grad_on_execution: bool = False
) -> dict[str, Any]:
    """The config updates for derivatives the device computes with the adjoint method.

    Device VJPs are used unless the framework needs ``jacobians``. QNodes pass
    ``device_vjp=False`` by default, which cannot be told apart from an explicit
    choice, so only ``True`` is taken from the config.

    Parameters
    ----------
    config : ExecutionConfig
        The caller's config.
    jacobians : bool
        Whether the framework differentiates through Jacobians (see
        :func:`needs_jacobians`).
    grad_on_execution : bool
        Whether Jacobians are computed with the results (when VJPs are not used).
    """
    vjp = bool(config.use_device_jacobian_product) or not jacobians
    return {
        "gradient_method": "adjoint",
        "use_device_gradient": True,
        "use_device_jacobian_product": vjp,
        "grad_on_execution": grad_on_execution and not vjp,
    }


def deferred_mcm_only(config: ExecutionConfig, device_name: str) -> MCMConfig:
    """The config's mid-circuit-measurement settings with ``"deferred"``, the one method
    a device that cannot branch mid-circuit runs; any other raises ``DeviceError``."""
    method = config.mcm_config.mcm_method
    if method not in (None, "deferred"):
        raise DeviceError(
            f"mcm_method={method!r} is not supported on {device_name}, which cannot "
            "branch mid-circuit; use mcm_method='deferred' (the default)"
        )
    return replace(config.mcm_config, mcm_method="deferred")
