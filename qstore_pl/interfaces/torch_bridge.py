"""A :class:`HostFunction` as a differentiable torch function (``torch.autograd.Function``)."""

from __future__ import annotations

from collections.abc import Callable

from qstore_pl.interfaces.host import HostFunction


def torch_op(host: HostFunction) -> Callable:
    """Wrap ``host`` into ``op(*tensors) -> (batch, n_outputs)`` tensor."""
    import torch

    class _HostOp(torch.autograd.Function):
        @staticmethod
        @torch.compiler.disable
        def forward(ctx, *args):
            arrays = [a.detach().cpu().numpy() for a in args]
            needs_vjp = any(ctx.needs_input_grad)
            ctx.arrays = arrays
            ctx.placements = [(a.dtype, a.device) for a in args]
            value = host.forward(*arrays, keep_vjp=needs_vjp)
            return torch.as_tensor(value, dtype=args[0].dtype, device=args[0].device)

        @staticmethod
        @torch.compiler.disable
        def backward(ctx, upstream):
            grads = host.vjp(ctx.arrays, upstream.detach().cpu().numpy())
            return tuple(
                torch.as_tensor(g, dtype=dtype, device=device) if needed else None
                for g, (dtype, device), needed in zip(
                    grads, ctx.placements, ctx.needs_input_grad, strict=True
                )
            )

    # torch.compile (Keras's jit_compile on torch) cannot trace a host call: run it
    # eagerly and compile around it
    @torch.compiler.disable
    def op(*args):
        return _HostOp.apply(*args)

    return op
