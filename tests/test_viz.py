"""minirect.viz: the graph walk as plain data, and the matplotlib drawing."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import minirect  # noqa: E402
import minirect.viz as viz  # noqa: E402


def _expression():
    """y = sum((x * w) * (x * w) + x): a tensor used twice by one function (h * h)."""
    x = minirect.tensor([1.0, 2.0], requires_grad=True)
    w = minirect.tensor(3.0, requires_grad=True)
    x.name, w.name = "x", "w"
    h = x * w
    h.name = "h"
    y = (h * h + x).sum()
    y.name = "y"
    return x, w, h, y


def _by_label(graph):
    return {n["name"]: n for n in graph["nodes"] if n["kind"] == "tensor" and n["name"]}


def test_graph_nodes_counts_and_kinds():
    x, w, h, y = _expression()
    graph = viz.graph_nodes(y)
    tensors = [n for n in graph["nodes"] if n["kind"] == "tensor"]
    functions = [n for n in graph["nodes"] if n["kind"] == "function"]
    # tensors: y, h*h + x, h*h, x, h, w  (x is shared by two functions, counted once)
    assert len(tensors) == 6
    assert sorted(f["op"] for f in functions) == ["Add", "Mul", "Mul", "Sum"]
    assert len({n["id"] for n in graph["nodes"]}) == len(graph["nodes"])
    assert graph["nodes"][0]["id"] == 0 and graph["nodes"][0]["name"] == "y"
    assert graph["nodes"][0]["depth"] == 0


def test_graph_nodes_edges_follow_the_data():
    x, w, h, y = _expression()
    graph = viz.graph_nodes(y)
    nodes = {n["id"]: n for n in graph["nodes"]}
    named = _by_label(graph)
    # Every edge joins a tensor and a function, in either direction.
    for src, dst in graph["edges"]:
        assert {nodes[src]["kind"], nodes[dst]["kind"]} == {"tensor", "function"}
        assert nodes[src]["depth"] > nodes[dst]["depth"]
    # Each function has exactly one outgoing edge here (single-output ops).
    for fid, node in nodes.items():
        if node["kind"] == "function":
            assert sum(1 for s, _ in graph["edges"] if s == fid) == 1
    # h * h: two edges from h into the same Mul.
    into_from_h = [d for s, d in graph["edges"] if s == named["h"]["id"]]
    assert len(into_from_h) == 2 and len(set(into_from_h)) == 1
    assert nodes[into_from_h[0]]["op"] == "Mul"
    # x feeds two functions (x * w and the Add); w feeds one.
    x_targets = {nodes[d]["op"] for s, d in graph["edges"] if s == named["x"]["id"]}
    assert x_targets == {"Mul", "Add"}
    # The output's creator is Sum.
    (creator,) = [s for s, d in graph["edges"] if d == 0]
    assert nodes[creator]["op"] == "Sum"
    # Leaves are the deepest nodes: x is further from y than the Add it feeds.
    assert named["x"]["depth"] == max(n["depth"] for n in graph["nodes"])
    assert named["x"]["is_leaf"] and not named["h"]["is_leaf"]


def test_graph_nodes_values_and_gradients():
    x, w, h, y = _expression()
    graph = viz.graph_nodes(y)
    named = _by_label(graph)
    assert named["w"]["shape"] == () and named["w"]["value"] == "3"
    assert named["x"]["shape"] == (2,) and named["x"]["grad"] is None
    assert "y" in named["y"]["label"]
    y.backward(retain_graph=True)          # keep the graph to see the gradients
    named = _by_label(viz.graph_nodes(y))
    # dy/dx = 2 x w² + 1 = [19, 37]; dy/dw = Σ 2 x² w = 30
    assert named["x"]["grad"] == "[19, 37]"
    assert named["w"]["grad"] == "30"
    assert "grad 30" in named["w"]["label"]


def test_graph_nodes_large_tensor_shows_shape():
    big = minirect.tensor([[0.0] * 5] * 4, requires_grad=True)
    out = big.sum()
    node = [n for n in viz.graph_nodes(out)["nodes"] if n["kind"] == "tensor" and n["is_leaf"]][0]
    assert node["value"] == "shape 4×5"


def test_graph_nodes_of_a_leaf_and_of_a_freed_graph():
    x = minirect.tensor([1.0, 2.0], requires_grad=True)
    graph = viz.graph_nodes(x)
    assert len(graph["nodes"]) == 1 and graph["edges"] == []
    y = (x * x).sum()
    y.backward()                            # frees the graph
    graph = viz.graph_nodes(y)
    functions = [n for n in graph["nodes"] if n["kind"] == "function"]
    assert [f["op"] for f in functions] == ["Sum"] and functions[0]["freed"]
    assert "freed" in functions[0]["label"]


def test_graph_nodes_constants():
    x = minirect.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    kinds = {n["style"] for n in viz.graph_nodes(y)["nodes"]}
    assert kinds == {"tensor", "function", "leaf", "constant"}


@pytest.mark.parametrize("with_axes", [False, True])
def test_draw_graph_runs_on_agg(with_axes):
    x, w, h, y = _expression()
    ax = plt.subplots()[1] if with_axes else None
    out = viz.draw_graph(y, ax=ax)
    if with_axes:
        assert out is ax
    texts = [t.get_text() for t in out.texts]
    assert any(t.startswith("y") for t in texts)
    assert sum(t.split("\n")[0] == "Mul" for t in texts) == 2
    out.figure.canvas.draw()                # lays out and clips the arrows
    plt.close(out.figure)


# --- stepping through backward() ---------------------------------------------

import re  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

import minirect.functional as F  # noqa: E402
from minirect import autograd, nn  # noqa: E402


def _record_backward_calls(loss):
    """Wrap every function's backward so that the order backward() calls them is recorded."""
    calls = []
    for fn in autograd._topological_order(loss.creator):
        def recorded(*grads, fn=fn, original=fn.backward):
            calls.append(fn)
            return original(*grads)
        fn.backward = recorded
    return calls


def test_backward_steps_order_values_and_leaves():
    x, w, h, y = _expression()
    steps = list(viz.backward_steps(y))
    assert [s.op for s in steps] == ["Sum", "Add", "Mul", "Mul"]
    assert [s.index for s in steps] == [0, 1, 2, 3]
    add, square, xw = steps[1], steps[2], steps[3]
    # Add sends [1, 1] to h*h and to x: x is the first leaf to receive a gradient.
    assert add.grad_outputs[0].tolist() == [1, 1]
    assert [g.tolist() for g in add.grad_inputs] == [[1, 1], [1, 1]]
    assert list(add.leaf_grads) == [x] and add.leaf_grads[x].tolist() == [1, 1]
    # h * h: the gradient 1 arriving becomes h = x w = [3, 6] for each of the two uses.
    assert square.function.inputs == (h, h)
    assert [g.tolist() for g in square.grad_inputs] == [[3, 6], [3, 6]]
    # x * w receives both uses of h summed: 2 h = [6, 12]; w gets Σ 2 h x = 30.
    assert xw.grad_outputs[0].tolist() == [6, 12]
    assert xw.leaf_grads[x].tolist() == [19, 37] and xw.leaf_grads[w].item() == 30
    assert x.grad is None and w.grad is None           # nothing written; graph kept
    y.backward()
    assert x.grad.tolist() == [19, 37]


def _small_net_loss(seed=0):
    minirect.seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.PReLU(3), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(12, 4))
    rng = np.random.default_rng(seed)
    x = minirect.tensor(rng.standard_normal((2, 2, 4, 4)).astype("float32"), requires_grad=True)
    logits = model(x)
    loss = F.softmax_cross_entropy(logits * 0.5 + logits, minirect.tensor(np.array([1, 3])))
    return loss, [x] + list(model.parameters())


def test_backward_steps_follow_backward_exactly_and_end_at_its_gradients():
    loss, leaves = _small_net_loss()
    steps = list(viz.backward_steps(loss))
    last = steps[-1].leaf_grads
    assert set(map(id, last)) == set(map(id, leaves))
    calls = _record_backward_calls(loss)
    loss.backward()
    assert [s.function for s in steps] == calls       # the same functions, in the same order
    for leaf in leaves:
        np.testing.assert_array_equal(last[leaf], leaf.grad)
    # leaf gradients only grow along the way: each step's leaves include the previous ones
    for before, after in zip(steps, steps[1:]):
        assert set(map(id, before.leaf_grads)) <= set(map(id, after.leaf_grads))


def test_backward_steps_needs_a_live_graph_and_a_scalar():
    x = minirect.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="freed"):
        list(viz.backward_steps(y))
    with pytest.raises(RuntimeError, match="scalar"):
        list(viz.backward_steps(x * x))
    z = x * x
    steps = list(viz.backward_steps(z, grad=np.array([1.0, 0.5], dtype="float32")))
    assert steps[-1].leaf_grads[x].tolist() == [2.0, 2.0]
    leaf = minirect.tensor(1.0, requires_grad=True)
    assert list(viz.backward_steps(leaf)) == []            # a leaf: no function to step through


def test_format_step_and_printed_fallback(capsys, monkeypatch):
    x, w, h, y = _expression()
    steps = list(viz.backward_steps(y))
    text = viz.format_step(steps[3], count=4)
    assert text.splitlines()[0] == "step 4/4: Mul"
    assert "gradient arriving at output: [6, 12]" in text
    assert "sends to input 1 (w): 30" in text and "x = [19, 37], w = 30" in text
    monkeypatch.setitem(sys.modules, "ipywidgets", None)        # as if not installed
    result = viz.step_through(y)
    out = capsys.readouterr().out
    assert [s.op for s in result] == ["Sum", "Add", "Mul", "Mul"]
    assert out.count("step ") == 4 and "step 2/4: Add" in out
    with pytest.raises(ImportError, match="ipywidgets"):
        viz.step_through(y, widgets=True)
    assert len(viz.step_through(y, widgets=False)) == 4


def test_step_through_builds_a_slider_with_ipywidgets():
    widgets = pytest.importorskip("ipywidgets")
    x, w, h, y = _expression()
    box = viz.step_through(y)
    slider = box.children[0]
    assert isinstance(slider, widgets.IntSlider) and (slider.min, slider.max) == (0, 3)
    plt.close("all")


def test_draw_step_highlights_the_active_function():
    x, w, h, y = _expression()
    steps = list(viz.backward_steps(y))
    ax = viz.draw_step(y, steps[1], count=len(steps))
    framed = [t.get_text() for t in ax.texts
              if t.get_bbox_patch() is not None and t.get_bbox_patch().get_linewidth() > 2]
    assert framed == ["Add"]
    assert "step 2/4: Add" in ax.get_title()
    plt.close(ax.figure)


# --- Graphviz DOT -------------------------------------------------------------

def test_to_dot_nodes_and_edges():
    x, w, h, y = _expression()
    dot = viz.to_dot(y)
    graph = viz.graph_nodes(y)
    lines = dot.splitlines()
    assert lines[0] == "digraph minirect {" and lines[-1] == "}"
    node_lines = [s for s in lines if re.match(r"\s*n\d+ \[", s)]
    edge_lines = [s.strip() for s in lines if "->" in s]
    assert len(node_lines) == len(graph["nodes"]) == 10
    assert edge_lines == [f"n{a} -> n{b};" for a, b in graph["edges"]]
    assert len(set(edge_lines)) == len(edge_lines) - 1       # h * h: one edge drawn twice
    assert 'n0 [label="y\\n= 48"' in dot
    assert sum('label="Mul"' in s for s in node_lines) == 2
    assert f'fillcolor="{viz.COLORS["leaf"]}"' in dot


def test_to_dot_highlight_and_escaping():
    x = minirect.tensor([1.0], requires_grad=True)
    x.name = 'say "hi"\\'
    y = x * 2.0
    dot = viz.to_dot(y, highlight=[y.creator])
    assert 'label="say \\"hi\\"\\\\\\n= 1"' in dot
    (mul_line,) = [s for s in dot.splitlines() if 'label="Mul"' in s]
    assert viz.HIGHLIGHT in mul_line and "penwidth" in mul_line


def test_render_dot_needs_graphviz(monkeypatch):
    x, w, h, y = _expression()
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match="to_dot"):
        viz.render_dot(y)
