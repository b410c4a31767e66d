"""Cost estimates before anything runs: shots x gates x gradient method.

A training step differentiates its circuits, and the gradient method decides how many
circuits that takes: the parameter-shift rule runs two shifted circuits per trainable
parameter, SPSA two per step whatever the number of parameters. On hardware priced
per gate-shot the difference is orders of magnitude, so every estimate shows both,
with gate counts and prices before and after compilation to native gates.
"""

from __future__ import annotations

from dataclasses import dataclass

from qstore_pl.devices.ionq.pricing import PricingModel

#: Gradient methods an estimate prices.
GRADIENT_METHODS = ("parameter-shift", "spsa")


def gradient_circuits(method: str, trainable: int, spsa_samples: int = 1) -> int:
    """Extra circuits one gradient of one circuit needs (besides the forward pass)."""
    if method == "parameter-shift":
        return 2 * trainable
    if method == "spsa":
        return 2 * spsa_samples if trainable else 0
    raise ValueError(f"unknown gradient method {method!r}; use one of {GRADIENT_METHODS}")


@dataclass(frozen=True)
class CostLine:
    """One backend's price for a workload.

    Attributes
    ----------
    backend : str
        Backend name.
    pricing : PricingModel
        Its price list.
    gates : tuple[int, int]
        (1q, 2q) gates per circuit as written (after the router's decomposition).
    native_gates : tuple[int, int] or None
        (1q, 2q) gates per circuit after native compilation, when the backend compiles.
    circuits : int
        Circuits in one forward pass.
    trainable : int
        Trainable parameters per circuit.
    shots : int
        Shots per circuit.
    """

    backend: str
    pricing: PricingModel
    gates: tuple[int, int]
    native_gates: tuple[int, int] | None
    circuits: int
    trainable: int
    shots: int

    @property
    def submitted_gates(self) -> tuple[int, int]:
        """Gate counts as submitted (native when the backend compiles)."""
        return self.native_gates or self.gates

    def cost(self, method: str | None = None, native: bool = True) -> float:
        """USD of a forward pass (``method=None``) or a training step with ``method``.

        Parameters
        ----------
        method : {None, "parameter-shift", "spsa"}
            Gradient method of the training step.
        native : bool
            Price the gate counts after native compilation (when available).
        """
        gates = self.submitted_gates if native else self.gates
        forward = self.pricing.job_cost(self.circuits, self.shots, *gates)
        if method is None:
            return forward
        # the gradient circuits go out as a second job (PennyLane batches them)
        extra = self.circuits * gradient_circuits(method, self.trainable)
        return forward + self.pricing.job_cost(extra, self.shots, *gates)


@dataclass(frozen=True)
class CostEstimate:
    """Prices of one workload on every backend; ``str()`` gives a table."""

    lines: tuple[CostLine, ...]

    def __getitem__(self, backend: str) -> CostLine:
        for line in self.lines:
            if line.backend == backend:
                return line
        raise KeyError(
            f"no estimate for backend {backend!r}; have {[x.backend for x in self.lines]}"
        )

    def __str__(self) -> str:
        out = ["cost estimate (USD): forward pass and one training step per gradient method"]
        out.append(
            f"  {'backend':<18}{'gates 1q/2q':>13}{'native 1q/2q':>14}{'circuits':>9}"
            f"{'shots':>7}{'forward':>11}{'param-shift':>13}{'spsa':>11}"
        )
        for x in self.lines:
            gates = f"{x.gates[0]}/{x.gates[1]}"
            native = f"{x.native_gates[0]}/{x.native_gates[1]}" if x.native_gates else "-"
            out.append(
                f"  {x.backend:<18}{gates:>13}{native:>14}{x.circuits:>9}{x.shots:>7}"
                f"{x.cost():>11.2f}{x.cost('parameter-shift'):>13.2f}{x.cost('spsa'):>11.2f}"
            )
            if x.native_gates and not x.pricing.is_free:
                out.append(
                    f"  {'':<18}before native compilation: forward {x.cost(native=False):.2f}, "
                    f"param-shift {x.cost('parameter-shift', native=False):.2f}, "
                    f"spsa {x.cost('spsa', native=False):.2f}"
                )
        return "\n".join(out)
