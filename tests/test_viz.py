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
