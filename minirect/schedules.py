"""Learning-rate schedules: they set each parameter group's ``lr`` once per epoch.

The paper divides the learning rate by 10 when the error plateaus
(``ReduceLROnPlateau``); fixed milestones (``MultiStepLR``) and a fixed
period (``StepLR``) are the usual alternatives. Each schedule scales every
group's ``initial_lr`` (set by ``optim.SGD``) by a factor; the update itself
is ``optim.SGD`` (Eq. 4). Also importable as ``minirect.optim.StepLR`` etc.
"""

from __future__ import annotations

import math


class _Schedule:
    """Base: sets every group's lr to initial_lr × factor()."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.epoch = 0

    def factor(self) -> float:
        return 1.0

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor()

    def get_last_lr(self) -> list:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)
        self._apply()


class StepLR(_Schedule):
    """lr = initial_lr · gamma^(epoch // step_size); call ``step()`` once per epoch."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def factor(self):
        return self.gamma ** (self.epoch // self.step_size)

    def step(self, metric=None):
        self.epoch += 1
        self._apply()


class MultiStepLR(_Schedule):
    """lr = initial_lr · gamma^(number of milestones ≤ epoch)."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1):
        super().__init__(optimizer)
        self.milestones, self.gamma = sorted(milestones), gamma

    def factor(self):
        return self.gamma ** sum(1 for m in self.milestones if m <= self.epoch)

    def step(self, metric=None):
        self.epoch += 1
        self._apply()


class ReduceLROnPlateau(_Schedule):
    """Divide lr by 1/factor (10 in the paper) when a metric stops improving.

    ``step(val_error)`` after each epoch: if the error has not improved by more
    than ``threshold`` for ``patience`` epochs, lr is multiplied by ``factor``
    (never below ``min_lr``).
    """

    def __init__(self, optimizer, factor: float = 0.1, patience: int = 5,
                 threshold: float = 1e-3, min_lr: float = 0.0):
        super().__init__(optimizer)
        self.factor_, self.patience, self.threshold, self.min_lr = factor, patience, threshold, min_lr
        self.best = math.inf
        self.bad_epochs = 0
        self.scale = 1.0

    def factor(self):
        return self.scale

    def _apply(self) -> None:
        super()._apply()
        for group in self.optimizer.param_groups:
            group["lr"] = max(group["lr"], self.min_lr)

    def step(self, metric):
        self.epoch += 1
        if metric < self.best - self.threshold:
            self.best, self.bad_epochs = metric, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.scale *= self.factor_
            self.bad_epochs = 0
            self._apply()
