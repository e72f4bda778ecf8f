"""Pictures of the autograd graph, and a backward pass you can step through.

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

``backward_steps(loss)`` replays the backward pass one function at a time,
in the order ``loss.backward()`` uses, without touching any ``.grad``;
``draw_step`` and ``step_through`` show it (a slider with ipywidgets, printed
text without). ``to_dot`` writes the graph as Graphviz DOT text, which the
optional ``graphviz`` package renders (``render_dot``).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import autograd, backend

__all__ = ["graph_nodes", "draw_graph", "backward_steps", "BackwardStep", "format_step",
           "draw_step", "step_through", "to_dot", "render_dot"]

# Colors of the node kinds in ``draw_graph``.
COLORS = {
    "leaf": "#cfe8ff",       # a leaf that requires grad (a parameter or an input we differentiate)
    "constant": "#eeeeee",   # a leaf without grad (data, constants)
    "tensor": "#d8f5d0",     # an intermediate result
    "function": "#ffd9a8",   # an operation
}
HIGHLIGHT = "#d62728"        # the frame of highlighted nodes (the active step)


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
    return _walk(tensor)[0]


def _walk(tensor):
    """``graph_nodes``'s graph, and the Tensor or Function behind each node id."""
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
    return {"nodes": nodes, "edges": edges}, keep


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
               row_height: float = 1.0, highlight=()):
    """Draw the graph behind ``tensor`` with matplotlib; returns the Axes.

    Tensors are boxes (blue: leaves that require grad, grey: constants,
    green: intermediate results) showing the name, the value (or shape) and
    the gradient when there is one; functions are orange boxes with their
    class name. Arrows follow the data: input → function → output.
    ``highlight`` lists Tensors or Functions drawn with a thick red frame
    (``draw_step`` uses it for the function a backward step is at).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    graph, objects = _walk(tensor)
    marked = {id(obj) for obj in highlight}
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
        frame = (HIGHLIGHT, 2.5) if id(objects[n["id"]]) in marked else ("0.3", 0.8)
        texts[n["id"]] = ax.text(
            x, y, n["label"], ha="center", va="center", fontsize=fontsize, zorder=3,
            bbox=dict(boxstyle=boxstyle, fc=COLORS[n["style"]], ec=frame[0], lw=frame[1]))
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


# ----------------------------------------------------------------------------
# Stepping through backward()
# ----------------------------------------------------------------------------

@dataclass
class BackwardStep:
    """One function of a backward pass, as ``backward()`` meets it.

    ``grad_outputs``: dE/d(output) arriving at each output of ``function``
    (all contributions summed). ``grad_inputs``: dE/d(input) it sends to each
    input, None for inputs that need no gradient. ``leaf_grads``: each leaf
    tensor that received a gradient so far, mapped to the sum received.
    """
    index: int
    function: object
    grad_outputs: tuple
    grad_inputs: tuple
    leaf_grads: dict

    @property
    def op(self) -> str:
        return type(self.function).__name__


def backward_steps(loss, grad=None):
    """Yield a ``BackwardStep`` per function, in the order ``loss.backward()`` uses.

    The order is autograd's own (``autograd._topological_order``: every
    function comes after all functions that consume its outputs), and
    functions that receive no gradient are skipped as ``backward()`` skips
    them. At each function the chain rule runs: the gradient at its outputs
    goes through ``Function.backward`` to its inputs; an input that is a leaf
    adds it to its gradient, any other input passes it on to its creator.
    Nothing is written to ``.grad`` and the graph is kept, so ``backward()``
    can follow; the last step's ``leaf_grads`` are the gradients that
    ``backward()`` accumulates into the leaves' ``.grad``.
    """
    if grad is None:
        if loss.size != 1:
            raise RuntimeError(f"backward_steps without a gradient needs a scalar, got shape {loss.shape}")
        grad = loss.xp.ones_like(loss.data)
    if loss.creator is None:
        return
    leaves = {}                                       # leaf tensor -> gradient so far
    order = autograd._topological_order(loss.creator)
    steps = autograd.chain_rule_steps(order, {id(loss): backend.unwrap(grad)})
    for index, (fn, _, gys, gxs) in enumerate(steps):
        sent = tuple(None if gx is None or not x.requires_grad else gx
                     for x, gx in zip(fn.inputs, gxs, strict=True))
        for x, gx in zip(fn.inputs, sent, strict=True):
            if gx is not None and x.creator is None:
                leaves[x] = leaves[x] + gx if x in leaves else gx
        yield BackwardStep(index, fn, tuple(gys), sent, dict(leaves))


def _leaf_names(steps) -> dict:
    """A name per leaf: its ``.name``, else leaf0, leaf1... in order of first gradient."""
    names = {}
    for step in steps:
        for leaf in step.leaf_grads:
            if id(leaf) not in names:
                names[id(leaf)] = leaf.name or f"leaf{len(names)}"
    return names


def format_step(step, count=None, names=None) -> str:
    """A few lines of text for one step: the function, the gradients in and out, the leaves."""
    names = names if names is not None else _leaf_names([step])
    of = f"/{count}" if count else ""
    lines = [f"step {step.index + 1}{of}: {step.op}"]
    for k, g in enumerate(step.grad_outputs):
        which = f" {k}" if len(step.grad_outputs) > 1 else ""
        lines.append(f"  gradient arriving at output{which}: {_format_array(g)}")
    for k, (x, g) in enumerate(zip(step.function.inputs, step.grad_inputs, strict=True)):
        if g is not None:
            label = x.name or ("leaf" if x.creator is None else "intermediate")
            lines.append(f"  sends to input {k} ({label}): {_format_array(g)}")
    leaves = ", ".join(f"{names.get(id(t), t.name or '?')} = {_format_array(g)}"
                       for t, g in step.leaf_grads.items())
    lines.append(f"  leaf gradients so far: {leaves or '(none yet)'}")
    return "\n".join(lines)


def draw_step(loss, step, ax=None, count=None, **kwargs):
    """``draw_graph(loss)`` with the step's function framed in red and a one-line title.

    The title names the step and the gradient arriving at the function;
    ``format_step`` gives the full text (gradients sent, leaves so far).
    """
    ax = draw_graph(loss, ax=ax, highlight=[step.function], **kwargs)
    arriving = ", ".join(_format_array(g) for g in step.grad_outputs)
    of = f"/{count}" if count else ""
    ax.set_title(f"backward step {step.index + 1}{of}: {step.op}, gradient arriving {arriving}",
                 fontsize=9)
    return ax


def step_through(loss, widgets=None):
    """Step through ``loss``'s backward pass: an ipywidgets slider over ``draw_step``.

    Without ipywidgets (or with ``widgets=False``) every step is printed
    instead. Returns the widget, or the list of steps when printed.
    """
    steps = list(backward_steps(loss))
    if not steps:
        raise ValueError("step_through: the loss has no function nodes to step through")
    names = _leaf_names(steps)
    ipywidgets = None
    if widgets is not False:
        try:
            import ipywidgets
        except ImportError:
            if widgets:
                raise ImportError("step_through(widgets=True) needs ipywidgets: "
                                  "pip install 'minirect[notebooks]'") from None
    if ipywidgets is None:
        for step in steps:
            print(format_step(step, len(steps), names))
        return steps

    def show(index):
        import matplotlib.pyplot as plt
        draw_step(loss, steps[index], count=len(steps))
        plt.show()
        print(format_step(steps[index], len(steps), names))

    slider = ipywidgets.IntSlider(value=0, min=0, max=len(steps) - 1, description="step")
    return ipywidgets.VBox([slider, ipywidgets.interactive_output(show, {"index": slider})])


# ----------------------------------------------------------------------------
# Graphviz
# ----------------------------------------------------------------------------

def _dot_text(text) -> str:
    """A DOT string literal (backslashes, quotes and newlines escaped)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(tensor, highlight=()) -> str:
    """The graph behind ``tensor`` as Graphviz DOT text (data flows left to right).

    One node per ``graph_nodes`` node, named n<id>: tensors as rounded boxes,
    functions as plain boxes, coloured as in ``draw_graph``; one edge
    ``n<src> -> n<dst>`` per edge. ``highlight`` frames Tensors/Functions in red.
    """
    graph, objects = _walk(tensor)
    marked = {id(obj) for obj in highlight}
    lines = ["digraph minirect {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for n in graph["nodes"]:
        style = "rounded,filled" if n["kind"] == "tensor" else "filled"
        attrs = [f"label={_dot_text(n['label'])}", "shape=box", f'style="{style}"',
                 f'fillcolor="{COLORS[n["style"]]}"']
        if id(objects[n["id"]]) in marked:
            attrs += [f'color="{HIGHLIGHT}"', "penwidth=2.5"]
        lines.append(f"  n{n['id']} [{', '.join(attrs)}];")
    lines += [f"  n{src} -> n{dst};" for src, dst in graph["edges"]]
    lines.append("}")
    return "\n".join(lines)


def render_dot(tensor, highlight=()):
    """A ``graphviz.Source`` of ``to_dot(tensor)`` (shows itself in a notebook).

    Needs the optional ``graphviz`` package (``pip install 'minirect[notebooks]'``)
    and Graphviz's ``dot`` program to draw.
    """
    try:
        import graphviz
    except ImportError:
        raise ImportError("render_dot needs the graphviz package: pip install 'minirect[notebooks]' "
                          "(and the Graphviz programs); to_dot() gives the text without it") from None
    return graphviz.Source(to_dot(tensor, highlight))
