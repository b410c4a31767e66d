"""``History``: what each epoch of a fit did, in numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """Per-epoch records: ``epoch``, ``loss``, ``accuracy``, ``seconds``, ``usd``,
    ``circuits`` and, with validation data, ``val_loss`` and ``val_accuracy``.

    ``history["loss"]`` lists one key over the epochs; ``history.history`` is the
    Keras-style dict of those lists.
    """

    epochs: list[dict[str, Any]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list:
        if self.epochs and key not in self.epochs[0]:
            raise KeyError(f"no {key!r} in the history; have {sorted(self.epochs[0])}")
        return [record[key] for record in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def history(self) -> dict[str, list]:
        """``{key: [value per epoch]}``."""
        keys = self.epochs[0] if self.epochs else {}
        return {key: self[key] for key in keys}

    def __str__(self) -> str:
        lines = []
        for r in self.epochs:
            line = (
                f"epoch {r['epoch']}: loss {r['loss']:.4f}, accuracy {r['accuracy']:.3f}, "
                f"{r['seconds']:.2f} s, {r['usd']:.2f} USD, {r['circuits']} circuits"
            )
            if "val_loss" in r:
                line += f", val_loss {r['val_loss']:.4f}, val_accuracy {r['val_accuracy']:.3f}"
            lines.append(line)
        return "\n".join(lines) or "(no epochs yet)"
