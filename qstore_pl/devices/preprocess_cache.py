"""Skip a device's preprocessing for circuit structures it is known to leave alone.

A training loop sends the same circuit structure with new parameters on every step,
and a device's preprocessing (decompositions, validations, wire mapping) walks every
gate each time to conclude, again, that nothing needs to change: about 0.3-0.8 ms for
a 50-gate circuit, as much as simulating it at small widths. The first circuit of a
structure goes through the whole pipeline; when the pipeline hands back that very
tape, unchanged, later circuits with the same structure, trainable parameters and
parameter types and shapes pass straight through. Anything else (a decomposition, an
error, a split) is never remembered and runs the pipeline every time.
"""

from __future__ import annotations

from collections.abc import Hashable

from pennylane.tape import QuantumScript
from pennylane.transforms.core import CompilePipeline, transform

from qstore_pl.devices.grouping import ndim, structure_key
from qstore_pl.support.bounded_cache import BoundedCache

_REMEMBERED = 1024  # structures per pipeline


def skip_known_structures(pipeline: CompilePipeline) -> CompilePipeline:
    """``pipeline`` as one transform that skips it for structures it left unchanged.

    Parameters
    ----------
    pipeline : CompilePipeline
        A device's preprocessing; it must depend only on what
        :func:`preprocessing_key` captures (not on parameter values).
    """
    wrapped = CompilePipeline()
    wrapped.add_transform(
        _known_or_preprocess, pipeline=pipeline, unchanged=BoundedCache(_REMEMBERED)
    )
    return wrapped


def preprocessing_key(tape: QuantumScript) -> Hashable:
    """What a preprocessing decision may depend on, besides parameter values.

    The structure (gates, wires, hyperparameters, measurements, shots), which
    parameters are trainable, and each parameter's type and number of dimensions
    (broadcasting, and interfaces whose tensors the pipeline treats differently).
    """
    params = tuple((type(p), ndim(p)) for op in tape.operations for p in op.data)
    return structure_key(tape), tuple(tape.trainable_params), params


@transform
def _known_or_preprocess(
    tape: QuantumScript, pipeline: CompilePipeline, unchanged: BoundedCache[Hashable, bool]
):
    key = preprocessing_key(tape)
    if key in unchanged:
        return (tape,), _only
    tapes, postprocess = pipeline((tape,))
    if len(tapes) == 1 and tapes[0] is tape and _passes_through(postprocess):
        unchanged[key] = True
    return tapes, lambda results: postprocess(results)[0]


def _only(results):
    return results[0]


def _passes_through(postprocess) -> bool:
    """Whether ``postprocess`` hands a single result back untouched."""
    sentinel = object()
    try:
        return postprocess((sentinel,))[0] is sentinel
    except Exception:  # a real postprocessing step cannot digest the sentinel
        return False
