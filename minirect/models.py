"""The paper's architectures, scaled to small inputs.

All models share one layout (Table 3 of the paper):

    conv1 → [max pool] → stage 1 (n₁ convs) → 2×2 pool → stage 2 → 2×2 pool →
    stage 3 → SPP → fc → dropout → fc → dropout → fc (classes)

with a rectifier (ReLU or PReLU) after every conv and the first two fc
layers. ``PlainNet`` builds it from a ``NetSpec``; the named builders fill in
the paper's layer counts:

| model            | conv1          | stages (convs × width, kernel)          | SPP          | layers |
|------------------|----------------|-----------------------------------------|--------------|--------|
| ``model_a``      | 7×7, 96, /2    | 5×256, 5×512, 5×512 (3×3)               | {7,3,2,1}    | 19     |
| ``model_b``      | 7×7, 96, /2    | 6×256, 6×512, 6×512 (3×3)               | {7,3,2,1}    | 22     |
| ``model_c``      | 7×7, 96, /2    | 6×384, 6×768, 6×896 (3×3)               | {7,3,2,1}    | 22     |
| ``model_14``     | 7×7, 64, /2    | 4×128, 6×256 (2×2) — two stages         | {6,3,2,1}    | 14     |
| ``model_30``     | 7×7, 96, /2    | 9×256, 9×512, 8×512 (3×3)               | {7,3,2,1}    | 30     |

Deviations for small inputs (``input_size`` < 64), all documented in
docs/reproduction.md:

* conv1 becomes 3×3 with stride 1 and padding 1 (a 7×7/2 conv would throw
  away most of a 28×28 or 8×8 image), and its max pool is dropped for inputs
  smaller than 16 pixels;
* the max pool after conv1 is 2×2 with stride 2 at every input size (the
  paper's is 3×3 with stride 3), like the pools between stages;
* a pool between stages is skipped when it would leave a map smaller than
  ``min_map`` (4) pixels: 3×3 convs with zero padding on a 2×2 map see only
  4 of their 9 taps, which shrinks the signal by ~4/9 in variance per layer
  for both inits alike (8×8 digits: stages at 8, 4, 4; MNIST: 14, 7, 7);
* the SPP levels are capped at the size of the last feature map;
* 2×2 convs (model 14) alternate padding 1 and 0, so the map size is kept
  every two layers instead of shrinking by one per layer;
* widths are parameters (``widths`` and ``fc_width``), the paper's are the
  defaults of the ``model_*`` builders.

The 30-layer model: the paper adds "up to sixteen conv layers with 256 2×2
filters" to the 14-layer model without saying where. We instead deepen model
B's three stages to 9, 9 and 8 convs (27 conv + 3 fc), so that the 22- and
30-layer nets differ only in depth — the variable Figures 2 and 3 compare.
``plain_net(depth, widths)`` builds that layout at any depth (``stage_counts``
says how the convs are spread over the stages): the nets of the experiments.

Initialization (``init``): "msra" (½ n Var[w] = 1, Eq. 10/14; with PReLU the
Eq. 15 form with a = 0.25) or "xavier" (the paper's n Var[w] = 1), with
``mode`` "fan_out" (the backward form n̂ = k²d, used for Figures 2 and 3) or
"fan_in" (forward, n = k²c). The fc layers follow ``fc_init``:

* "fan_in" (default) — the same scheme, forward form. The backward form on the
  last fc layer would use n̂ = number of classes (10 here, 1000 in the paper).
  Measured on the default Figure 3 net at initialization, "same" gives the
  logits 16× the variance they have with "fan_in": 12.8 from the last layer
  (n/K = 128/10) times 1.25 from fc1 (fan-in 160 over fan-out 128).
* "same" — the same scheme and mode as the convs.
* "paper" — the paper's fixed Gaussians: std 0.01, 0.01 and 0.001.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import init as init_
from . import nn

PAPER_SPP = (7, 3, 2, 1)
PAPER_SPP_14 = (6, 3, 2, 1)


@dataclass(frozen=True)
class NetSpec:
    """Everything that defines one plain net of the paper's family."""

    in_channels: int = 1
    input_size: int = 28
    num_classes: int = 10
    conv1_width: int = 32
    stages: tuple = ((6, 32), (6, 64), (6, 64))   # (number of convs, width) per stage
    kernel: int = 3                               # kernel of the stage convs (3, or 2 for model 14)
    spp_levels: tuple = (4, 2, 1)
    fc_width: int = 256
    dropout: float = 0.5
    activation: str = "relu"                      # relu | prelu | prelu-shared
    init: str = "msra"                            # msra | xavier
    mode: str = "fan_out"                         # fan_out (Eq. 14) | fan_in (Eq. 10)
    fc_init: str = "fan_in"                       # fan_in | same | paper
    min_map: int = 4                              # skip a stage pool that would go below this

    @property
    def depth(self) -> int:
        """Weighted layers: conv1 + stage convs + 3 fc."""
        return 1 + sum(n for n, _ in self.stages) + 3


def _rectifier(kind: str, channels: int):
    if kind == "relu":
        return nn.ReLU()
    if kind == "prelu":
        return nn.PReLU(channels, init=0.25)
    if kind == "prelu-shared":
        return nn.PReLU(1, init=0.25)
    raise ValueError(f"unknown activation {kind!r}; use 'relu', 'prelu' or 'prelu-shared'")


class PlainNet(nn.Sequential):
    """The plain (no shortcut) conv net of the paper, built from a ``NetSpec``."""

    def __init__(self, spec: NetSpec):
        layers, size = self._build(spec)
        super().__init__(*layers)
        self.spec = spec
        self.final_map_size = size
        initialize(self, spec)

    @staticmethod
    def _build(spec: NetSpec):
        small = spec.input_size < 64
        layers = []
        if small:
            layers += [nn.Conv2d(spec.in_channels, spec.conv1_width, 3, padding=1)]
            size = spec.input_size
        else:
            layers += [nn.Conv2d(spec.in_channels, spec.conv1_width, 7, stride=2, padding=3)]
            size = (spec.input_size + 1) // 2
        layers.append(_rectifier(spec.activation, spec.conv1_width))
        if size >= 16:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = spec.conv1_width
        for s, (count, width) in enumerate(spec.stages):
            if s > 0 and size // 2 >= spec.min_map:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            for i in range(count):
                if spec.kernel == 2:      # alternate padding so the size is kept every 2 layers
                    pad = 1 if i % 2 == 0 else 0
                    size += 1 if pad else -1
                else:
                    pad = spec.kernel // 2
                layers += [nn.Conv2d(channels, width, spec.kernel, padding=pad),
                           _rectifier(spec.activation, width)]
                channels = width
        if size < 1:
            raise ValueError(f"input_size {spec.input_size} is too small for {len(spec.stages)} "
                             "pooled stages")
        levels = tuple(sorted({min(n, size) for n in spec.spp_levels}, reverse=True))
        spp = nn.SPP(levels)
        layers += [spp,
                   nn.Linear(spp.output_size(channels), spec.fc_width),
                   _rectifier(spec.activation, spec.fc_width), nn.Dropout(spec.dropout),
                   nn.Linear(spec.fc_width, spec.fc_width),
                   _rectifier(spec.activation, spec.fc_width), nn.Dropout(spec.dropout),
                   nn.Linear(spec.fc_width, spec.num_classes)]
        return layers, size


def initialize(model, spec: NetSpec) -> None:
    """Apply the spec's init to every Conv2d and Linear layer; biases to zero."""
    a = 0.25 if spec.activation.startswith("prelu") and spec.init == "msra" else 0.0
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for conv in convs:
        init_.init_weight_(conv.weight, spec.init, mode=spec.mode, a=a)
    for i, fc in enumerate(fcs):
        if spec.fc_init == "paper":
            init_.gaussian_(fc.weight, 0.001 if i == len(fcs) - 1 else 0.01)
        elif spec.fc_init == "same":
            init_.init_weight_(fc.weight, spec.init, mode=spec.mode, a=a)
        elif spec.fc_init == "fan_in":
            last = i == len(fcs) - 1
            init_.init_weight_(fc.weight, spec.init, mode="fan_in", a=0.0 if last else a)
        else:
            raise ValueError(f"unknown fc_init {spec.fc_init!r}; use 'fan_in', 'same' or 'paper'")
    for m in convs + fcs:
        if m.bias is not None:
            init_.zeros_(m.bias)


# ----------------------------------------------------------------------------
# Named builders
# ----------------------------------------------------------------------------

def stage_plan(stages_counts, widths):
    """((convs, width), ...) per stage, refusing a widths list of the wrong length
    (zip would silently drop stages)."""
    if len(widths) != len(stages_counts):
        raise ValueError(f"widths: expected {len(stages_counts) + 1} values (conv1 and one per "
                         f"stage), got {len(widths) + 1}")
    return tuple(zip(stages_counts, widths))


def stage_counts(depth: int) -> tuple:
    """Convs per stage for a net of ``depth`` weighted layers: conv1, three stages
    and three fc layers, the earlier stages taking the spare convs (22: 6, 6, 6 as
    model B; 30: 9, 9, 8 as ``model_30``). Depth 5 is the least: one stage conv."""
    if depth < 5:
        raise ValueError(f"depth must be at least 5 (conv1, one stage conv, three fc layers), "
                         f"got {depth}")
    convs, spare = divmod(depth - 4, 3)
    return tuple(convs + (stage < spare) for stage in range(3))


def plain_net(depth: int, widths=(16, 16, 32, 32), **kw) -> PlainNet:
    """Model B's layout with its three stages deepened or thinned to ``depth``
    weighted layers (``stage_counts``): the nets of Figures 2 and 3 and of the
    depth sweep. ``widths``: conv1, then one per stage; ``kw``: other ``NetSpec`` fields."""
    return PlainNet(NetSpec(conv1_width=widths[0], stages=stage_plan(stage_counts(depth), widths[1:]),
                            **kw))


def model_a(widths=(96, 256, 512, 512), fc_width=4096, **kw) -> PlainNet:
    """Table 3, model A: 19 weighted layers (5 convs per stage)."""
    return PlainNet(NetSpec(conv1_width=widths[0], stages=stage_plan((5, 5, 5), widths[1:]),
                            fc_width=fc_width, **{"spp_levels": PAPER_SPP, **kw}))


def model_b(widths=(96, 256, 512, 512), fc_width=4096, **kw) -> PlainNet:
    """Table 3, model B: 22 weighted layers (6 convs per stage) — Figure 2's model."""
    return PlainNet(NetSpec(conv1_width=widths[0], stages=stage_plan((6, 6, 6), widths[1:]),
                            fc_width=fc_width, **{"spp_levels": PAPER_SPP, **kw}))


def model_c(widths=(96, 384, 768, 896), fc_width=4096, **kw) -> PlainNet:
    """Table 3, model C: model B with wider stages."""
    return model_b(widths=widths, fc_width=fc_width, **kw)


def model_14(widths=(64, 128, 256), fc_width=4096, **kw) -> PlainNet:
    """The 14-layer model of Tables 1–2: 4 and 6 2×2 convs, SPP {6,3,2,1}."""
    return PlainNet(NetSpec(conv1_width=widths[0], stages=stage_plan((4, 6), widths[1:]), kernel=2,
                            fc_width=fc_width, **{"spp_levels": PAPER_SPP_14, **kw}))


def model_30(widths=(96, 256, 512, 512), fc_width=4096, **kw) -> PlainNet:
    """30 weighted layers (27 conv + 3 fc) — Figure 3's depth; see the module notes."""
    return PlainNet(NetSpec(conv1_width=widths[0], stages=stage_plan((9, 9, 8), widths[1:]),
                            fc_width=fc_width, **{"spp_levels": PAPER_SPP, **kw}))


MODELS = {"model_a": model_a, "model_b": model_b, "model_c": model_c, "model_14": model_14,
          "model_30": model_30}


def build(name: str, **kw) -> PlainNet:
    """Build a named model: ``build("model_b", widths=(32, 32, 64, 64), fc_width=256, ...)``."""
    try:
        return MODELS[name](**kw)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}") from None

