"""The paper's architectures: layer counts, shapes, initialization rules."""

import math

import numpy as np
import pytest

import minirect as mr
from minirect import models, nn

SMALL = dict(widths=(4, 4, 8, 8), fc_width=16, input_size=8, in_channels=1)


def count(model, kind):
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("name,convs", [("model_a", 16), ("model_b", 19), ("model_c", 19),
                                        ("model_30", 27)])
def test_layer_counts(name, convs):
    widths = (4, 4, 8, 8)
    model = models.build(name, widths=widths, fc_width=16, input_size=28)
    assert count(model, nn.Conv2d) == convs
    assert count(model, nn.Linear) == 3
    assert model.spec.depth == convs + 3
    assert count(model, nn.SPP) == 1 and count(model, nn.Dropout) == 2


def test_model_14_uses_2x2_convs_and_keeps_the_map():
    model = models.model_14(widths=(4, 8, 8), fc_width=16, input_size=28)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 11 and all(c.kernel_size == (2, 2) for c in convs[1:])
    x = mr.tensor(np.zeros((2, 1, 28, 28), dtype=np.float32))
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize("size,final", [(8, 4), (28, 7), (224, 14)])
def test_forward_shapes_and_map_sizes(size, final):
    model = models.model_b(widths=(2, 2, 4, 4), fc_width=8, input_size=size, num_classes=7)
    assert model.final_map_size == final
    if size <= 28:
        x = mr.tensor(np.zeros((2, 1, size, size), dtype=np.float32))
        assert model(x).shape == (2, 7)


@pytest.mark.parametrize("scheme,gain", [("msra", 2.0), ("xavier", 1.0)])
def test_backward_form_init_on_convs_forward_form_on_fc(scheme, gain):
    mr.seed(0)
    model = models.model_30(**SMALL, init=scheme, mode="fan_out")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    w = np.concatenate([c.weight.numpy().ravel() for c in convs[5:10]])   # five 4→4 3×3 convs
    fan_out = convs[5].weight.shape[0] * 9
    assert abs(w.std() / math.sqrt(gain / fan_out) - 1) < 0.1
    w_fc = fcs[1].weight.numpy()
    assert abs(w_fc.std() / math.sqrt(gain / fcs[1].in_features) - 1) < 0.1
    assert all(not m.bias.numpy().any() for m in convs + fcs)


def test_prelu_models_use_eq15_and_paper_fc_option():
    mr.seed(0)
    model = models.model_b(widths=(8, 64, 64, 64), fc_width=16, input_size=8, activation="prelu",
                           init="msra", mode="fan_in")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    expected = math.sqrt(2 / ((1 + 0.25 ** 2) * 64 * 9))
    assert abs(convs[3].weight.numpy().std() / expected - 1) < 0.05
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 21 and prelus[1].weight.shape == (64,)
    paper = models.model_b(**SMALL, fc_init="paper")
    fcs = [m for m in paper.modules() if isinstance(m, nn.Linear)]
    assert abs(fcs[2].weight.numpy().std() / 0.001 - 1) < 0.5


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown model"):
        models.build("model_z")
    with pytest.raises(ValueError, match="unknown activation"):
        models.model_b(**SMALL, activation="gelu")


def test_a_widths_list_of_the_wrong_length_is_refused_not_truncated():
    """zip would quietly drop a stage: a 30-layer experiment built as 22 layers."""
    from minirect.experiments import recipe
    with pytest.raises(ValueError, match="widths"):
        models.model_b(widths=(8, 8, 8))
    config = recipe.make_config("fig3", widths=(4, 4, 8))          # 3 stages need 4 widths
    with pytest.raises(ValueError, match="widths"):
        recipe.build_model(config, "msra", num_classes=10, in_channels=1, input_size=8)
