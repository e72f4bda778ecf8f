"""Pictures of the autograd graph, drawn with matplotlib alone (no graphviz).

    x = minirect.tensor([1.0, 2.0], requires_grad=True); x.name = "x"
    y = (x * x).sum(); y.name = "y"
    minirect.viz.draw_graph(y)            # x → Mul → · → Sum → y

``graph_nodes(t)`` walks the graph behind a tensor (``t.creator`` and each
function's ``inputs``) and returns it as plain data — lists of dicts and id
pairs — so the structure can be printed or tested; ``draw_graph`` lays that
data out in columns by depth from the output (the output on the right) and
draws it.

Remember that ``backward()`` frees the graph unless it is called with
``retain_graph=True``: draw before backward to see the whole graph, or retain
it to see the gradients next to the values. A function whose graph was freed
is still shown (its inputs are gone), marked "freed".
"""

from __future__ import annotations

from . import backend

__all__ = ["graph_nodes", "draw_graph"]

# Colors of the node kinds in ``draw_graph``.
COLORS = {
    "leaf": "#cfe8ff",       # a leaf that requires grad (a parameter or an input we differentiate)
    "constant": "#eeeeee",   # a leaf without grad (data, constants)
    "tensor": "#d8f5d0",     # an intermediate result
    "function": "#ffd9a8",   # an operation
}


def _format_array(array, max_values: int = 4) -> str:
    """A short text for a small array: its values, or just its shape when large."""
    host = backend.to_numpy(array)
    if host.size == 1:
        return f"{host.reshape(()).item():.4g}"
    if host.size <= max_values:
        return "[" + ", ".join(f"{v:.3g}" for v in host.reshape(-1).tolist()) + "]"
    return "shape " + "×".join(str(s) for s in host.shape)


def _tensor_node(t, node_id: int) -> dict:
    grad = None if t.grad is None else _format_array(t.grad)
    kind = ("leaf" if t.requires_grad else "constant") if t.creator is None else "tensor"
    name = t.name
    if name:
        title = name
    elif t.creator is None:
        title = "leaf" if t.requires_grad else "constant"
    else:
        title = ""
    lines = [title]
    lines.append(("= " if t.size <= 4 else "") + _format_array(t.data))
    if grad is not None:
        lines.append(f"grad {grad}")
    return {
        "id": node_id, "kind": "tensor", "style": kind, "name": name,
        "shape": tuple(int(s) for s in t.shape),
        "value": _format_array(t.data), "grad": grad,
        "requires_grad": bool(t.requires_grad), "is_leaf": t.creator is None,
        "label": "\n".join(line for line in lines if line),
    }


def _function_node(fn, node_id: int) -> dict:
    freed = fn.saved is None and not fn.inputs
    op = type(fn).__name__
    return {"id": node_id, "kind": "function", "style": "function", "op": op, "name": None,
            "freed": freed, "label": op + ("\n(freed)" if freed else "")}


def graph_nodes(tensor) -> dict:
    """The graph that produced ``tensor``, as plain data.

    Returns ``{"nodes": [...], "edges": [...]}``. Each node is a dict with an
    integer ``id``, ``kind`` ("tensor" or "function"), a text ``label`` and
    ``depth`` (0 for ``tensor``, growing towards the inputs: the longest path
    to the output). Tensor nodes also carry ``name`` (``Tensor.name``),
    ``shape``, ``value`` and ``grad`` (short texts; ``grad`` is None when the
    tensor has none), ``requires_grad`` and ``is_leaf``; function nodes carry
    ``op`` (the Function's class name) and ``freed`` (its graph was released
    by a backward pass without ``retain_graph=True``).

    Edges are ``(source id, target id)`` pairs in the direction data flows:
    input tensor → function, and function → output tensor. The root tensor
    has id 0; ids follow the order of discovery (a function's inputs in
    argument order). A tensor used twice by one function gives two edges.
    """
    nodes, edges = [], []
    ids = {}                       # id(python object) -> node id
    keep = []                      # keep objects alive so id() stays unique during the walk

    def node_for(obj, make):
        key = id(obj)
        if key not in ids:
            ids[key] = len(nodes)
            nodes.append(make(obj, ids[key]))
            keep.append(obj)
            return ids[key], True
        return ids[key], False

    root, _ = node_for(tensor, _tensor_node)
    stack = [tensor]
    while stack:
        t = stack.pop(0)           # breadth first: ids grow with the distance from the output
        fn = t.creator
        if fn is None:
            continue
        t_id = ids[id(t)]
        fn_id, new_fn = node_for(fn, _function_node)
        edges.append((fn_id, t_id))
        if not new_fn:
            continue               # a multi-output function already walked
        for x in fn.inputs:
            x_id, new_x = node_for(x, _tensor_node)
            edges.append((x_id, fn_id))
            if new_x:
                stack.append(x)

    # Depth: the longest path from each node to the output, so that every edge
    # points from a larger depth to a smaller one (a layered drawing).
    consumers = {n["id"]: [] for n in nodes}
    for src, dst in edges:
        consumers[src].append(dst)
    depth = {root: 0}
    for node_id in _topological_from_output(root, nodes, edges):
        if node_id != root:
            depth[node_id] = max(depth[c] for c in consumers[node_id]) + 1
    for n in nodes:
        n["depth"] = depth[n["id"]]
    return {"nodes": nodes, "edges": edges}


def _topological_from_output(root, nodes, edges):
    """Node ids ordered so that every node comes after all its consumers."""
    pending = {n["id"]: 0 for n in nodes}      # consumers not yet placed
    producers = {n["id"]: [] for n in nodes}
    for src, dst in edges:
        pending[src] += 1
        producers[dst].append(src)
    order, ready = [], [root]
    while ready:
        node_id = ready.pop(0)
        order.append(node_id)
        for p in producers[node_id]:
            pending[p] -= 1
            if pending[p] == 0:
                ready.append(p)
    return order


def _layout(graph) -> dict:
    """(x, y) per node id: x = -depth (output right), y spread within a column.

    Columns are filled from the output leftwards; within a column nodes are
    sorted by the mean height of their consumers (the barycentre heuristic),
    which keeps most edges from crossing.
    """
    nodes, edges = graph["nodes"], graph["edges"]
    consumers = {n["id"]: [] for n in nodes}
    for src, dst in edges:
        consumers[src].append(dst)
    by_depth = {}
    for n in nodes:
        by_depth.setdefault(n["depth"], []).append(n["id"])
    pos = {}
    for d in sorted(by_depth):
        column = by_depth[d]
        if d > 0:
            def centre(node_id):
                ys = [pos[c][1] for c in consumers[node_id] if c in pos]
                return sum(ys) / len(ys) if ys else 0.0
            column = sorted(column, key=lambda i: (-centre(i), i))
        count = len(column)
        for k, node_id in enumerate(column):
            pos[node_id] = (-float(d), (count - 1) / 2.0 - k)
    return pos


def _blocked(pos, src, dst, clearance: float = 0.35) -> bool:
    """Whether the straight line src → dst passes through another node's position."""
    (x0, y0), (x1, y1) = pos[src], pos[dst]
    for node_id, (x, y) in pos.items():
        if node_id in (src, dst) or not min(x0, x1) < x < max(x0, x1):
            continue
        if abs(y0 + (y1 - y0) * (x - x0) / (x1 - x0) - y) < clearance:
            return True
    return False


def draw_graph(tensor, ax=None, fontsize: float = 8, column_width: float = 1.3,
               row_height: float = 1.0):
    """Draw the graph behind ``tensor`` with matplotlib; returns the Axes.

    Tensors are boxes (blue: leaves that require grad, grey: constants,
    green: intermediate results) showing the name, the value (or shape) and
    the gradient when there is one; functions are orange boxes with their
    class name. Arrows follow the data: input → function → output.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    graph = graph_nodes(tensor)
    pos = _layout(graph)
    depth = max(n["depth"] for n in graph["nodes"])
    rows = max(sum(1 for n in graph["nodes"] if n["depth"] == d) for d in range(depth + 1))
    if ax is None:
        width = max(4.0, column_width * (depth + 1) + 1.0)
        height = max(2.0, row_height * rows + 0.8)
        _, ax = plt.subplots(figsize=(width, height))
    texts = {}
    for n in graph["nodes"]:
        x, y = pos[n["id"]]
        boxstyle = "round,pad=0.35" if n["kind"] == "tensor" else "square,pad=0.35"
        texts[n["id"]] = ax.text(
            x, y, n["label"], ha="center", va="center", fontsize=fontsize, zorder=3,
            bbox=dict(boxstyle=boxstyle, fc=COLORS[n["style"]], ec="0.3", lw=0.8))
    # Arrows are drawn after the boxes (higher zorder): each box's frame is sized
    # when its text is drawn, and the arrow is clipped to the frames at draw time.
    seen = {}
    for src, dst in graph["edges"]:
        repeat = seen.get((src, dst), 0)       # x * x: a second arrow, bent
        seen[(src, dst)] = repeat + 1
        if repeat:
            rad = 0.35 * (1 if repeat % 2 else -1) * ((repeat + 1) // 2)
        else:   # an edge that skips columns is bent when a box sits on its straight line
            rad = -0.3 if _blocked(pos, src, dst) else 0.0
        ax.annotate("", xy=pos[dst], xytext=pos[src], zorder=4,
                    arrowprops=dict(arrowstyle="-|>", color="0.35", lw=0.9, mutation_scale=9,
                                    patchA=texts[src].get_bbox_patch(),
                                    patchB=texts[dst].get_bbox_patch(),
                                    shrinkA=1, shrinkB=1, connectionstyle=f"arc3,rad={rad}"))
    ax.set_xlim(-depth - 0.6, 0.6)
    ax.set_ylim(-(rows - 1) / 2.0 - 0.6, (rows - 1) / 2.0 + 0.6)
    ax.axis("off")
    used = {n["style"] for n in graph["nodes"]}
    names = {"leaf": "leaf (requires grad)", "constant": "constant", "tensor": "intermediate",
             "function": "function"}
    handles = [Patch(fc=COLORS[k], ec="0.3", label=names[k]) for k in COLORS if k in used]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
              fontsize=fontsize, frameon=False)
    return ax
