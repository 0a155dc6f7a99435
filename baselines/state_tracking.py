"""Running parity's supervised training and its length-generalization test (docs/state_tracking.md).

The protocol of Deletang et al. (ICLR 2023, "Parity Check") and Grazzi et al. (ICLR 2025): train on short
trials (lengths 3-40) with the running label (x_1 + ... + x_t) mod k at every step, then test the final
network on longer trials (40-256, and one far length, 1,000). A test length scores the answer at the last
step of each sequence (the parity of the whole sequence), as scaled accuracy
(accuracy - 1/k) / (1 - 1/k): 0 at chance, 1 when every answer is right; the card's number is its mean
over ``test_lengths``, with the far length beside it.

:class:`RunningParityTrainer` is the supervised :class:`~baselines.trainer.Trainer` with running parity's
batches (every-step labels), loss (the mean cross-entropy over every step), evaluation (accuracy at the last
step, at the training lengths in force) and schedule (:class:`memory_envs.curriculum.LengthCurriculum`).
Its run folder is the Trainer's plus ``checkpoints/final`` (the network the test scored) and, in
``summary.json``, ``length_test`` (:func:`length_test`'s result) and ``longest_length_passed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import agents
from baselines.trainer import Trainer, TrainConfig
from memory_envs import make_batch, tasks
from memory_envs.curriculum import LengthCurriculum

NOT_TESTED = ("interrupted", "non_finite")
"""Stops after which the network is not tested: a resume goes on, or its numbers are not finite."""


@torch.no_grad()
def length_test(model: agents.MultiHeadModel, config: TrainConfig, device: torch.device, seed: int
                ) -> dict[str, Any]:
    """The accuracy at the last step, per length of ``config.test_lengths`` and ``config.far_length``, over
    ``eval_batches`` fresh batches of ``batch_size`` sequences each, plus the scaled accuracies and their mean
    over ``test_lengths``. Data and initial states are drawn on the CPU from ``seed``, then moved to ``device``."""
    rng = np.random.default_rng([seed, 3])
    generator = torch.Generator().manual_seed(seed)
    lengths = (*config.test_lengths, *(() if config.far_length is None else (config.far_length,)))
    accuracy: dict[str, float] = {}
    for length in lengths:
        correct = 0
        for _ in range(config.eval_batches):
            batch = make_batch(tasks.RUNNING_PARITY, None, config.batch_size, rng=rng, p=config.p, length=length,
                               modulus=config.modulus)
            x = torch.from_numpy(batch.inputs).to(device)
            logits = model(x, ns=[tasks.RUNNING_N], state=model.core.initial_state(x.shape[1], generator=generator))
            correct += int((logits[tasks.RUNNING_N].argmax(dim=-1).cpu().numpy() == batch.labels[:, 0]).sum())
        accuracy[str(length)] = correct / (config.eval_batches * config.batch_size)
    scaled = {length: tasks.scaled_accuracy(value, config.modulus) for length, value in accuracy.items()}
    far = None if config.far_length is None else scaled[str(config.far_length)]
    return {"modulus": config.modulus, "train_lengths": list(tasks.check_running_lengths(config.length_range)),
            "sequences_per_length": config.eval_batches * config.batch_size, "accuracy": accuracy, "scaled": scaled,
            "scaled_mean": float(np.mean([scaled[str(length)] for length in config.test_lengths])),
            "far_length": config.far_length, "scaled_far": far}


class RunningParityTrainer(Trainer):
    """Train one network on running parity into a run folder (see the module doc and :class:`Trainer`).

    Populations (:mod:`baselines.population`) read each member's last step only, so running parity, which
    is scored at every step, trains one network at a time."""

    def make_curriculum(self) -> LengthCurriculum:
        c = self.config
        return LengthCurriculum(c.curriculum, c.length_range, c.threshold)

    def batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh batch at the training lengths in force: inputs [T, B, 1] and the labels of every step [T, B]."""
        batch = make_batch(tasks.RUNNING_PARITY, None, self.config.batch_size, rng=rng, p=self.config.p,
                           length_range=self.curriculum.lengths, streaming=True, modulus=self.config.modulus)
        tensors = batch.to_torch(self.device)
        return tensors["inputs"], tensors["streaming_labels"][:, :, 0]

    def _logits(self, inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        return self.model(inputs, ns=self.curriculum.ns, every_step=True, state=self.initial_state(inputs.shape[1]))

    def loss(self, logits: dict[int, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The mean cross-entropy over every step of every sequence."""
        return F.cross_entropy(logits[tasks.RUNNING_N].flatten(0, 1), labels.flatten())

    def correct(self, logits: dict[int, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Correct answers at the last step (the parity of the whole sequence), a tensor [1]."""
        return (logits[tasks.RUNNING_N][-1].argmax(dim=-1) == labels[-1]).sum().reshape(1)

    def _advance(self, solved_before: int | None) -> None:
        """The length curriculum moved on: nothing to add (one head), nothing to checkpoint (no N solved)."""

    def evaluate(self) -> dict[int, float]:
        """Accuracy at the last step at the training lengths in force (which the metrics line records)."""
        self._evaluated_lengths = self.curriculum.lengths
        return super().evaluate()

    def metrics_fields(self) -> dict[str, Any]:
        return {"lengths": list(self._evaluated_lengths)}

    def summary_fields(self, stopped_because: str) -> dict[str, Any]:
        """No N (``max_n`` None); the longest length the length curriculum passed; and, unless the run was
        interrupted or turned non-finite, the network as ``checkpoints/final`` and its :func:`length_test`."""
        fields: dict[str, Any] = {"max_n": None, "longest_length_passed": self.curriculum.solved,
                                  "length_test": None}
        if stopped_because not in NOT_TESTED:
            agents.save(self.model, self.run_dir / "checkpoints" / "final")
            fields["length_test"] = length_test(self.model, self.config, self.device, self.config.seed)
        return fields


__all__ = ["NOT_TESTED", "RunningParityTrainer", "length_test"]
