"""The model as a torch ``nn.Module``, trained in a plain torch loop."""

from __future__ import annotations

import numpy as np
import torch

from qstore_pl.model.trainer import TrainerSpec, layer_options
from qstore_pl.torch import QuantumLayer


class TorchTrainer:
    """``nn.Sequential(QuantumLayer, Linear)`` with Adam, in float64."""

    def __init__(self, spec: TrainerSpec):
        with torch.random.fork_rng():  # seeds the initial weights, not the caller's RNG
            torch.manual_seed(spec.seed)
            layer = QuantumLayer(**layer_options(spec))
            head = torch.nn.Linear(layer.output_dim, spec.n_classes)
        self.model = torch.nn.Sequential(layer, head).double()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=spec.learning_rate)
        self._loss = torch.nn.CrossEntropyLoss()

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        self.optimizer.zero_grad()
        logits = self.model(torch.as_tensor(x, dtype=torch.float64))
        labels = torch.as_tensor(y)
        loss = self._loss(logits, labels)
        loss.backward()
        self.optimizer.step()
        return loss.item(), int((logits.argmax(dim=1) == labels).sum())

    def logits(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.as_tensor(x, dtype=torch.float64)).numpy()

    def state(self) -> dict[str, np.ndarray]:
        out = {f"model/{k}": v.detach().numpy().copy() for k, v in self.model.state_dict().items()}
        for i, param_state in self.optimizer.state_dict()["state"].items():
            for name, value in param_state.items():
                out[f"optimizer/{i}/{name}"] = torch.as_tensor(value).numpy().copy()
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict(
            {
                k[len("model/") :]: torch.as_tensor(v)
                for k, v in state.items()
                if k.startswith("model/")
            }
        )
        saved = self.optimizer.state_dict()
        per_param: dict[int, dict] = {}
        for key, value in state.items():
            if key.startswith("optimizer/"):
                _, index, name = key.split("/", 2)
                per_param.setdefault(int(index), {})[name] = torch.as_tensor(value)
        saved["state"] = per_param
        self.optimizer.load_state_dict(saved)
