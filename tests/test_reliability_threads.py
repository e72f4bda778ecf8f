"""Thread safety: runs in threads (a Dask worker's) compute what they compute alone.

A Dask worker runs several tasks at once in threads of one process. Every piece
of state a run touches must then be per-thread or shared safely: the grad mode
(``no_grad``), the random generator behind ``seed``, the data cache of the
experiments and BLAS's thread count. The end-to-end check: two ``fit`` calls
in two threads give, bit for bit, what the same fits give one after another.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

import minirect as mr
from minirect import backend, data, nn, optim, train
from minirect.experiments import executors, recipe


def _in_threads(*targets):
    """Run each callable in its own thread, all at once; re-raise the first failure."""
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)
    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_overlapping_no_grad_in_threads_leaves_gradients_on():
    """The issue's reproduction: two no_grad blocks started 0.1 s apart in two threads."""
    def idle():
        with mr.no_grad():
            time.sleep(0.2)

    first = threading.Thread(target=idle)
    first.start()
    time.sleep(0.1)
    _in_threads(idle)
    first.join()
    assert mr.is_grad_enabled()
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert np.array_equal(x.grad, [2.0, 4.0])


def test_no_grad_in_one_thread_does_not_switch_off_another():
    inside, seen = threading.Event(), []

    def other():
        inside.wait(5)
        seen.append(mr.is_grad_enabled())
    t = threading.Thread(target=other)
    t.start()
    with mr.no_grad():
        inside.set()
        t.join()
    assert seen == [True]


def test_seed_in_one_thread_leaves_another_threads_generator_alone():
    mr.seed(5)
    expected = np.random.default_rng(5).random(3)
    _in_threads(lambda: (mr.seed(1), backend.generator().random(100)))
    assert np.array_equal(backend.generator().random(3), expected)


def test_data_cache_is_per_thread():
    config = recipe.make_config("fig3", fast=True)
    here = recipe.cached_data(config)
    assert recipe.cached_data(config) is here        # reused within a thread
    there = []
    _in_threads(lambda: there.append(recipe.cached_data(config)))
    assert there[0][0] is not here[0]                     # the loaders are not shared


def test_blas_limit_holds_until_the_last_thread_ends(monkeypatch):
    """BLAS's thread count is one setting per process: the first of two overlapping
    runs to end must not restore it under the other (threadpoolctl alone would)."""
    import threadpoolctl
    calls = []

    class Limit:                 # records what the real threadpool_limits would do
        def __init__(self, n, user_api):
            calls.append(("set", n))

        def restore_original_limits(self):
            calls.append(("restore",))
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", Limit)
    first_in, first_out, seen = threading.Event(), threading.Event(), []

    def first():
        with executors.blas_threads(1):
            first_in.set()
            time.sleep(0.1)
        first_out.set()

    def second():
        first_in.wait(5)
        with executors.blas_threads(1):
            first_out.wait(5)
            seen.append(list(calls))
    _in_threads(first, second)
    assert seen == [[("set", 1)]]                    # still limited after the first ended
    assert calls == [("set", 1), ("restore",)]       # restored once, by the last


def _fit(seed, results):
    """A small fit with dropout (it draws from the generator every step) and
    validation after every epoch (no_grad blocks while the other thread trains)."""
    mr.seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(32, 10))
    digits = data.load_dataset("digits", "train")
    images, labels = digits.images[:256], digits.labels[:256]
    transform = data.paper_input_transform(images, digits.pixel_max)
    loader = data.DataLoader(images, labels, 16, shuffle=True, seed=seed, transform=transform)
    val = data.DataLoader(images[:64], labels[:64], 16, transform=transform)
    history = train.fit(model, loader, optim.SGD(model.parameters(), lr=1e-4, momentum=0.9), 4,
                        val_loader=val, progress=False, eval_every=2)
    results[seed] = ([{k: v for k, v in row.items() if k != "time"} for row in history.epochs],
                     history.evaluations, {k: v.copy() for k, v in model.state_dict().items()})


def test_two_fits_in_threads_equal_the_same_fits_one_after_another():
    with threadpool_limits(1, user_api="blas"):         # the same GEMM splits in both
        alone, together = {}, {}
        _fit(0, alone)
        _fit(1, alone)
        _in_threads(lambda: _fit(0, together), lambda: _fit(1, together))
    for seed in (0, 1):
        history, evaluations, state = alone[seed]
        assert together[seed][0] == history, f"seed {seed}: the histories differ"
        assert together[seed][1] == evaluations
        assert all(np.array_equal(together[seed][2][k], v) for k, v in state.items())
    assert alone[0][0][-1]["train_loss"] < alone[0][0][0]["train_loss"]   # it did train
