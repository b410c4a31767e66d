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
        def forward(ctx, recording, *args):
            arrays = [a.detach().cpu().numpy() for a in args]
            # under torch.no_grad() (Keras's predict) no backward pass can follow, even
            # for parameters that require grad: an inference call (a result cache answers)
            needs_vjp = recording and any(ctx.needs_input_grad[1:])
            # inputs that need no gradient cost no derivative work (parameter shifts)
            ctx.needed = tuple(i for i, need in enumerate(ctx.needs_input_grad[1:]) if need)
            ctx.arrays = arrays
            ctx.placements = [(a.dtype, a.device) for a in args]
            value = host.forward(*arrays, keep_vjp=needs_vjp, needed=ctx.needed)
            return torch.as_tensor(value, dtype=args[0].dtype, device=args[0].device)

        @staticmethod
        @torch.compiler.disable
        def backward(ctx, upstream):
            grads = host.vjp(ctx.arrays, upstream.detach().cpu().numpy(), ctx.needed)
            placed = (
                torch.as_tensor(g, dtype=dtype, device=device) if needed else None
                for g, (dtype, device), needed in zip(
                    grads, ctx.placements, ctx.needs_input_grad[1:], strict=True
                )
            )
            return (None, *placed)  # nothing for the recording flag

    # torch.compile (Keras's jit_compile on torch) cannot trace a host call: run it
    # eagerly and compile around it
    @torch.compiler.disable
    def op(*args):
        return _HostOp.apply(torch.is_grad_enabled(), *args)

    return op
