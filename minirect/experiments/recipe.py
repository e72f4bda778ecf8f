"""The recipe of every experiment: its config, its data, its net, its optimizer.

``minirect reproduce`` (Figures 2 and 3, Tables 1 and 2), ``minirect sweep depth``
and ``minirect train`` all take their data, net and SGD from here:

* ``Config`` — one experiment: data, net, recipe, seeds; ``make_config(name)``
  gives the defaults of "fig2", "fig3", "sweep" or "table2" with the fast/full presets;
* ``load_data(config)`` — train and validation loaders (``cached_data`` reuses
  them between the runs of an experiment);
* ``build_model(config, init, ...)`` — the plain net of ``config.depth`` weighted
  layers, through ``models.plain_net`` (which owns depth → stages), or, with
  ``config.model == "model_14"``, the 14-layer model of Tables 1–2;
* ``make_optimizer(model, config)`` — SGD with momentum, weight decay off PReLU;
  ``make_schedule`` — the one step down of the learning rate (``config.lr_drop``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

from .. import data, models, optim


@dataclass(frozen=True)
class Config:
    """One convergence experiment: data, net, recipe, seeds."""

    figure: str
    dataset: str = "digits"
    depth: int = 30                       # 22 (model B layout) or 30
    widths: tuple = (16, 16, 32, 32)      # conv1, stage 1, 2, 3
    fc_width: int = 128
    spp_levels: tuple = (2, 1)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.001
    input_scale: str = "pixel"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dropout: float = 0.5
    mode: str = "fan_out"                 # the figures use the backward form
    fc_init: str = "fan_in"
    seeds: tuple = (0, 1, 2)
    inits: tuple = ("msra", "xavier")     # e.g. ("xavier",): train one side longer on its own
    device: str = "cpu"
    train_limit: int | None = None        # use only the first N training images (tests)
    val_limit: int | None = None          # validate on the first N test images only
    evals_per_epoch: int = 1              # validation passes per epoch (> 1: within epochs too)
    data_root: str | None = None          # dataset folder (default: $MINIRECT_DATA, then the cache)
    download: bool = False                # download a missing dataset (checksummed)
    cuda_graph: bool = False              # on a GPU: replay each step from a CUDA graph
    model: str = "plain"                  # "plain" (plain_net of depth) or "model_14" (Tables 1-2)
    activations: tuple = ("relu",)        # the rectifiers trained (table2: each one per seed)
    lr_drop: float = 0.0                  # > 0: lr ÷ 10 after this fraction of the epochs

    @property
    def stage_counts(self) -> tuple:
        """Stage convs of the net: ``models.stage_counts(depth)``."""
        return models.stage_counts(self.depth)


# Defaults chosen by the exploration recorded in docs/reproduction.md.
DEFAULTS = {
    "fig2": Config(figure="fig2", depth=22, epochs=120),
    "fig3": Config(figure="fig3", depth=30, epochs=30),
}

FULL = {   # the larger (GPU) setting of the notebooks and of --full: MNIST, stages at 14/7/7
    "fig2": replace(DEFAULTS["fig2"], dataset="mnist", widths=(32, 32, 64, 64), fc_width=256,
                    spp_levels=(4, 2, 1), epochs=6, evals_per_epoch=10),
    "fig3": replace(DEFAULTS["fig3"], dataset="mnist", widths=(32, 32, 64, 64), fc_width=256,
                    spp_levels=(4, 2, 1), epochs=4, evals_per_epoch=10),
}

# The depth sweep: the recipe and budget of fig3 (30 epochs on the embedded digits), with
# four validation passes per epoch so that "iterations to half of chance" is resolved to a
# quarter of an epoch. Its depths and inits: ``DEPTHS``, ``SWEEP_INITS``.
DEFAULTS["sweep"] = replace(DEFAULTS["fig3"], figure="sweep", evals_per_epoch=4)
DEPTHS = (6, 10, 14, 18, 22, 26, 30)
SWEEP_INITS = ("msra", "xavier")

# Tables 1 and 2: model 14 at the scale of notebook 03 (widths 16/32/32, fc 128, SPP {6,3,2,1}
# capped at the 8×8 digits' maps), the same recipe for ReLU, channel-shared and channel-wise
# PReLU, paired by seed. Its recipe is notebook 03's: unit-variance inputs, MSRA in the forward
# form (Eq. 15 with a = 0.25 for PReLU), lr 0.01 ÷ 10 after 75 % of 25 epochs.
DEFAULTS["table2"] = Config(
    figure="table2", model="model_14", depth=14, widths=(16, 32, 32), fc_width=128,
    spp_levels=(6, 3, 2, 1), epochs=25, lr=0.01, lr_drop=0.75, input_scale="unit", mode="fan_in",
    seeds=tuple(range(10)), inits=("msra",), activations=("relu", "prelu-shared", "prelu"))

FAST = dict(epochs=2, seeds=(0,), widths=(4, 4, 8, 8), fc_width=16, train_limit=256)
# table2 compares across seeds: three of them, and model 14's three widths
FAST_BY_FIGURE = {"table2": dict(FAST, seeds=(0, 1, 2), widths=(4, 8, 8))}


def make_config(figure: str, fast: bool = False, full: bool = False, **overrides) -> Config:
    """The default config of ``figure`` ("fig2", "fig3", "sweep", "table2"), with the
    fast/full presets and ``overrides`` (None values are left out)."""
    if figure not in DEFAULTS:
        raise ValueError(f"unknown figure {figure!r}; use 'fig2', 'fig3' or 'table2'")
    if full and figure not in FULL:
        raise ValueError(f"{figure!r} has no full setting")
    config = FULL[figure] if full else DEFAULTS[figure]
    if fast:
        config = replace(config, **FAST_BY_FIGURE.get(figure, FAST))
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(config, **overrides)


def build_model(config: Config, init: str, num_classes: int, in_channels: int, input_size: int,
                activation: str = "relu"):
    """The net of ``config`` with initialization ``init`` and rectifier ``activation``: the
    plain net of ``config.depth`` weighted layers, or model 14 (``config.model``).

    The weights are drawn in the same order whatever the rectifier (a PReLU draws nothing):
    after the same ``minirect.seed``, a PReLU net's weights are the ReLU net's draws, each
    layer's scaled by its own Eq.-15 std (× 1/sqrt(1 + 0.25²) with "msra", except the last
    fc layer, which has no rectifier after it)."""
    kw = dict(in_channels=in_channels, input_size=input_size, num_classes=num_classes,
              spp_levels=config.spp_levels, fc_width=config.fc_width, dropout=config.dropout,
              activation=activation, init=init, mode=config.mode, fc_init=config.fc_init)
    if config.model == "model_14":
        return models.model_14(widths=config.widths, **kw)
    if config.model != "plain":
        raise ValueError(f"unknown model {config.model!r}; use 'plain' or 'model_14'")
    return models.plain_net(config.depth, config.widths, **kw)


def make_optimizer(model, config: Config):
    """SGD with momentum (Eq. 4), ``config.weight_decay`` on every weight but PReLU's."""
    groups = optim.param_groups(model, config.weight_decay)
    return optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def make_schedule(optimizer, config: Config):
    """lr ÷ 10 after ``config.lr_drop`` of the epochs (at least one); None when lr_drop is 0."""
    if not config.lr_drop:
        return None
    return optim.MultiStepLR(optimizer, milestones=[max(1, int(config.lr_drop * config.epochs))],
                             gamma=0.1)


def load_data(config: Config, seed: int = 0):
    """(train loader, validation loader, classes, channels, image size), normalized with
    the training set's statistics; ``seed`` is the training loader's shuffle seed."""
    where = dict(root=config.data_root, download=config.download)
    train_set = data.load_dataset(config.dataset, "train", **where)
    val_set = data.load_dataset(config.dataset, "test", **where)
    train_x, train_y = train_set.images, train_set.labels
    if config.train_limit:
        train_x, train_y = train_x[:config.train_limit], train_y[:config.train_limit]
    transform = data.paper_input_transform(train_x, train_set.pixel_max, config.input_scale)
    train = data.DataLoader(train_x, train_y, config.batch_size, shuffle=True, seed=seed,
                            device=config.device, transform=transform)
    limit = config.val_limit or None
    val = data.DataLoader(val_set.images[:limit], val_set.labels[:limit], 500,
                          device=config.device, transform=transform)
    return train, val, len(train_set.classes), train_x.shape[1], train_x.shape[2]


# Per thread: a run moves its loaders' shuffle position, so two runs at once (the
# threads of a Dask worker) must not share them.
_data_cache = threading.local()


def cached_data(config: Config):
    """``load_data(config)``, reused while the data options stay the same (the runs of an
    experiment, one after another in a thread, share their loaders; each run resets the
    shuffle to its seed)."""
    key = (config.dataset, config.data_root, config.download, config.train_limit,
           config.val_limit, config.batch_size, config.input_scale, config.device)
    if getattr(_data_cache, "key", None) != key:
        _data_cache.loaders = load_data(config)
        _data_cache.key = key
    return _data_cache.loaders


def eval_interval(batches: int, evals_per_epoch: int) -> int:
    """Iterations between validation passes for ``fit(eval_every=...)`` so that
    an epoch has at most ``evals_per_epoch`` of them, the one at its end
    included (0: only that one)."""
    return math.ceil(batches / evals_per_epoch) if evals_per_epoch > 1 else 0
