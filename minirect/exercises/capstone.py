"""The capstone: Figure 3 reproduced with the student's own functions inside the engine.

    minirect exercises train student.py            # the default Figure 3 experiment
    minirect exercises train student.py --fast     # a two-epoch check (about 10 s)

Every function of the student's file that the Figure 3 net uses (the ReLU,
convolution, pooling and loss backward passes, im2col, the MSRA std, the SGD
step) is first graded like ``minirect exercises check`` (in a separate
process); one that fails stops the capstone, naming the exercise to fix
first. The passing ones replace minirect's own code inside the engine
(with the fast paths off, so nothing else stands in for them), the experiment
of ``minirect reproduce fig3`` runs in this process, and the command prints,
for each op, whose code ran and how often, then the verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import pathlib
import sys
from dataclasses import replace

from .. import accel, backend, init, optim
from ..functional import activations, conv, losses
from . import _get, sandbox

# The exercises whose answers can run inside the Figure 3 net, in the order to fix them.
OPS = ("relu_backward", "prelu_backward", "im2col", "conv2d_forward", "conv2d_backward",
       "max_pool2d_backward", "softmax_cross_entropy_backward", "msra_std", "sgd_step")


class Calls:
    """How often each student function ran, and how often minirect's code stood in."""

    def __init__(self):
        self.student, self.engine = {}, {}

    def count(self, name: str, ran_student: bool) -> None:
        table = self.student if ran_student else self.engine
        table[name] = table.get(name, 0) + 1


def _square(pair):
    """An int when a (height, width) pair is square (the exercises take ints), else None."""
    return pair[0] if pair[0] == pair[1] else None


@contextlib.contextmanager
def swapped_in(student, calls: Calls):
    """Inside this block the engine runs the student's functions (fast paths off)."""
    mine = {name: getattr(student, name) for name in OPS if callable(getattr(student, name, None))}
    patches = _patches(mine, calls)
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
    was_fast = accel.enabled()
    accel.fast_paths(False)
    try:
        for owner, attr, new in patches:
            setattr(owner, attr, new)
        yield sorted(mine)
    finally:
        for owner, attr, old in saved:
            setattr(owner, attr, old)
        accel.fast_paths(was_fast)


def _patches(mine: dict, calls: Calls) -> list:
    """(owner, attribute, replacement) for every op the student wrote."""
    np = backend.module_for("cpu")
    patches = []
    originals = {"relu": activations.ReLU.backward, "prelu": activations.PReLU.backward,
                 "im2col": conv.im2col, "conv_fwd": conv.Conv2d.forward,
                 "conv_bwd": conv.Conv2d.backward, "pool_fwd": conv.MaxPool2d.forward,
                 "pool_bwd": conv.MaxPool2d.backward, "ce": losses.SoftmaxCrossEntropy.backward,
                 "sgd": optim.SGD._update}

    if "relu_backward" in mine:
        def relu_backward(self, gy):
            calls.count("relu_backward", True)
            (y,) = self.saved                     # y > 0 exactly where x > 0
            return np.asarray(mine["relu_backward"](y, gy), dtype=gy.dtype)
        patches.append((activations.ReLU, "backward", relu_backward))

    if "prelu_backward" in mine:
        def prelu_backward(self, gy):
            x, a_b = self.saved
            if a_b.size == 1 and x.shape[1] != 1:  # channel-shared: not this exercise
                calls.count("prelu_backward", False)
                return originals["prelu"](self, gy)
            calls.count("prelu_backward", True)
            gx, ga = mine["prelu_backward"](x, a_b.reshape(-1), gy)
            return np.asarray(gx, dtype=gy.dtype), np.asarray(ga, dtype=gy.dtype).reshape(a_b.size)
        patches.append((activations.PReLU, "backward", prelu_backward))

    if "im2col" in mine:
        def im2col(x, kernel_size, stride=1, padding=0):
            (kh, kw), s, p = kernel_size, conv._pair(stride, "stride", "im2col"), \
                conv._pair(padding, "padding", "im2col")
            if _square(s) is None or _square(p) is None:
                calls.count("im2col", False)
                return originals["im2col"](x, kernel_size, stride, padding)
            calls.count("im2col", True)
            return np.asarray(mine["im2col"](backend.unwrap(x), kh, kw, s[0], p[0]), dtype=x.dtype)
        patches.append((conv, "im2col", im2col))

    if "conv2d_forward" in mine:
        def conv_forward(self, x, W, b=None):
            self._setup(x, W, b)
            s, p = _square(self.stride), _square(self.padding)
            if s is None or p is None:
                calls.count("conv2d_forward", False)
                return originals["conv_fwd"](self, x, W, b)
            calls.count("conv2d_forward", True)
            self.save_for_backward(x, W)
            bias = b if b is not None else np.zeros(W.shape[0], dtype=W.dtype)
            return np.asarray(mine["conv2d_forward"](x, W, bias, s, p), dtype=x.dtype)
        patches.append((conv.Conv2d, "forward", conv_forward))

    if "conv2d_backward" in mine:
        def conv_backward(self, gy):
            s, p = _square(self.stride), _square(self.padding)
            if s is None or p is None:
                calls.count("conv2d_backward", False)
                return originals["conv_bwd"](self, gy)
            calls.count("conv2d_backward", True)
            x, W = self.saved
            gx, gW = mine["conv2d_backward"](x, W, gy, s, p)
            gx, gW = np.asarray(gx, dtype=gy.dtype), np.asarray(gW, dtype=gy.dtype)
            if len(self.inputs) > 2:
                return gx, gW, gy.sum(axis=(0, 2, 3))
            return gx, gW
        patches.append((conv.Conv2d, "backward", conv_backward))

    if "max_pool2d_backward" in mine:
        def pool_forward(self, x):
            self._input = x                      # the exercise's backward takes x itself
            return originals["pool_fwd"](self, x)

        def pool_backward(self, gy):
            k, s = _square(self.kernel), _square(self.stride)
            if k is None or s is None or self.padding != (0, 0):
                calls.count("max_pool2d_backward", False)
                return originals["pool_bwd"](self, gy)
            calls.count("max_pool2d_backward", True)
            return np.asarray(mine["max_pool2d_backward"](self._input, gy, k, s), dtype=gy.dtype)
        patches += [(conv.MaxPool2d, "forward", pool_forward), (conv.MaxPool2d, "backward", pool_backward)]

    if "softmax_cross_entropy_backward" in mine:
        def ce_backward(self, gy):
            calls.count("softmax_cross_entropy_backward", True)
            log_p, t = self.saved
            logits = log_p                       # softmax(log_p) = softmax(logits)
            g = mine["softmax_cross_entropy_backward"](logits, t)
            return np.asarray(g, dtype=log_p.dtype) * gy.astype(log_p.dtype), None
        patches.append((losses.SoftmaxCrossEntropy, "backward", ce_backward))

    if "msra_std" in mine:
        def msra_std(shape, a=0.0, mode="fan_in"):
            calls.count("msra_std", True)
            return float(mine["msra_std"](tuple(shape), a, mode))
        patches.append((init, "msra_std", msra_std))

    if "sgd_step" in mine:
        def update(self, p, group):
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            if group["nesterov"]:
                calls.count("sgd_step", False)
                return originals["sgd"](self, p, group)
            calls.count("sgd_step", True)
            v = self._velocity(p)
            none = np.zeros(1, dtype=p.data.dtype)   # the exercise's PReLU slot, unused here
            W, vW, _, _ = mine["sgd_step"](p.data, p.grad, v, none, none, none, lr, mu, wd)
            p.data[...] = W
            v[...] = vW
        patches.append((optim.SGD, "_update", update))
    return patches


# ----------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------

def load_checked(path):
    """The student's file as a module, after the grader's import rules (sandbox.static_check)."""
    sandbox.static_check(path)
    spec = importlib.util.spec_from_file_location("student_capstone", pathlib.Path(path).resolve())
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(pathlib.Path(path).resolve().parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


def first_failure(path, defined, timeout: float = 60.0):
    """The first of the student's capstone functions that fails its check, with its verdict."""
    for name in OPS:
        if name in defined:
            verdict = sandbox.grade_in_child(_get(name), path, timeout=timeout)
            if not verdict:
                return name, verdict
    return None, None


def train(path, out_dir="runs/capstone", fast=False, epochs=None, seeds=None, resume=False,
          overwrite=False, progress=True):
    """Check the student's functions, then run Figure 3 with them; returns (result, calls)."""
    from ..experiments import recipe, runner
    from . import defined_names

    sandbox.static_check(path)                     # the grader's rules before anything runs
    defined = [n for n in OPS if n in defined_names(path)]
    name, verdict = first_failure(path, defined)
    if name is not None:
        raise CapstoneRefused(f"{name} fails its check, so it cannot run in the net:\n  {verdict}\n"
                              f"Fix it first: minirect exercises check {path} --only {name}")
    student = load_checked(path)
    config = recipe.make_config("fig3", fast=fast, epochs=epochs, seeds=seeds)
    config = replace(config, device="cpu")
    calls = Calls()
    with swapped_in(student, calls) as mine:
        if progress:
            _print_whose(mine)
        result = runner.reproduce("fig3", out_dir, progress=progress, config=config, workers=1,
                                  resume=resume, overwrite=overwrite)
    return result, calls


class CapstoneRefused(Exception):
    """A student function failed its check: the capstone does not run it."""


def _print_whose(mine):
    print("Whose code runs in the net:")
    for name in OPS:
        print(f"  {name:32s} {'yours' if name in mine else 'minirect (not in your file)'}")


def print_calls(calls: Calls) -> None:
    print("Calls during training (yours / minirect's where your function does not apply):")
    for name in OPS:
        mine, engine = calls.student.get(name, 0), calls.engine.get(name, 0)
        if mine or engine:
            print(f"  {name:32s} {mine:>9,} / {engine:,}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="minirect exercises train",
        description="The capstone: reproduce Figure 3 with your own functions inside the engine.")
    parser.add_argument("file", help="your solutions (.py), as graded by minirect exercises check")
    parser.add_argument("--out", default="runs/capstone", help="output folder (default runs/capstone)")
    parser.add_argument("--fast", action="store_true",
                        help="a small net, 2 epochs, one seed (about 10 s): a first check")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: Figure 3's 30)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted capstone")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier capstone in --out")
    args = parser.parse_args(argv)
    try:
        result, calls = train(args.file, args.out, args.fast, args.epochs,
                              tuple(args.seeds) if args.seeds else None, args.resume, args.overwrite)
    except (CapstoneRefused, sandbox.RefusedFile) as error:
        print(f"minirect exercises train: {error}", file=sys.stderr)
        return 1
    print_calls(calls)
    print(f"\nCurves: {args.out}/curves.png; summary: {args.out}/summary.txt")
    print("\n".join(result["summary"]["verdict"]))
    return 0
