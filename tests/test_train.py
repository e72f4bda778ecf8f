"""Training loop: history files, exact resume, divergence handling, evaluation."""

import json

import numpy as np
import pytest

import minirect as mr
from minirect import data, nn, optim
from minirect import train as train_module
from minirect.train import TrainingDiverged, fit, load_checkpoint


def _read_every(monkeypatch, n):
    """Make fit read the losses n steps at a time, as accel's GPU hook does (there: 20)."""
    from minirect.accel import gpu_training
    monkeypatch.setattr(gpu_training, "applies", lambda model: n > 1)
    monkeypatch.setattr(gpu_training, "prepare", lambda step, *a: (step, n))


def setup(seed=0, device="cpu"):
    """A small MLP with dropout on the embedded digits (400 training images)."""
    mr.seed(seed)
    digits = data.Digits(train=True)
    val = data.Digits(train=False)
    train_loader = data.DataLoader(digits.images[:400], digits.labels[:400], 32, shuffle=True,
                                   seed=seed, device=device, transform=data.ToFloat(1 / 16))
    val_loader = data.DataLoader(val, batch_size=100, device=device)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.PReLU(32), nn.Dropout(0.3),
                          nn.Linear(32, 10)).to(device)
    opt = optim.SGD(optim.param_groups(model, 5e-4), lr=0.05, momentum=0.9)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    return model, opt, sched, train_loader, val_loader


def without_time(history):
    return [{k: v for k, v in row.items() if k != "time"} for row in history.epochs]


def test_fit_learns_and_writes_history(tmp_path):
    model, opt, sched, train, val = setup()
    history = fit(model, train, opt, 3, val_loader=val, schedule=sched, out_dir=tmp_path,
                  progress=False)
    errors = history.column("val_error")
    assert errors[-1] < 0.5                           # 10 classes: chance is 0.9
    assert history.column("lr") == pytest.approx([0.05, 0.025, 0.0125])
    assert len(history.iterations) == 3 * len(train)
    header = (tmp_path / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,train_error,val_loss,val_error,lr,time"
    assert json.loads((tmp_path / "history.json").read_text())["epochs"][2]["epoch"] == 3
    assert (tmp_path / "checkpoint.npz").exists()


def test_evaluations_within_epochs(tmp_path):
    """eval_every=4 on 13 batches per epoch: evaluations after iterations 4, 8
    and 12 and at the end of each epoch, at fractional epochs; the epoch-end
    ones equal the epoch rows, and training itself is unchanged."""
    model, opt, sched, train, val = setup()
    history = fit(model, train, opt, 2, val_loader=val, out_dir=tmp_path, progress=False,
                  eval_every=4)
    steps = len(train)
    assert steps == 13
    expected = [e + i / steps for e in (0, 1) for i in (4, 8, 12, 13)]
    assert [row["epoch"] for row in history.evaluations] == pytest.approx(expected)
    ends = [row for row in history.evaluations if row["epoch"] in (1, 2)]
    assert [row["val_error"] for row in ends] == history.column("val_error")
    assert (tmp_path / "evaluations.csv").read_text().startswith("epoch,val_loss,val_error")
    model2, opt2, _, train2, val2 = setup()
    plain = fit(model2, train2, opt2, 2, val_loader=val2, progress=False)
    assert without_time(plain) == without_time(history)
    with pytest.raises(ValueError, match="eval_every needs a val_loader"):
        fit(model2, train2, opt2, 1, progress=False, eval_every=4)


def test_resume_reproduces_uninterrupted_run_exactly(tmp_path):
    model, opt, sched, train, val = setup()
    full = fit(model, train, opt, 3, val_loader=val, schedule=sched, out_dir=tmp_path / "a",
               progress=False)
    model_a = model.state_dict()

    model, opt, sched, train, val = setup()
    fit(model, train, opt, 1, val_loader=val, schedule=sched, out_dir=tmp_path / "b", progress=False)
    # "interrupt": throw every object away, build fresh ones (different seed even), resume
    model, opt, sched, train, val = setup(seed=123)
    resumed = fit(model, train, opt, 3, val_loader=val, schedule=sched, out_dir=tmp_path / "b",
                  resume=True, progress=False)
    assert without_time(resumed) == without_time(full)
    assert resumed.iterations == full.iterations
    for name, value in model.state_dict().items():
        assert np.array_equal(value, model_a[name]), name


@pytest.mark.parametrize("read_every", [1, 5])
def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch, read_every):
    """read_every 5: the GPU's batched reads (READ_EVERY) report the same iteration."""
    _read_every(monkeypatch, read_every)
    model, opt, sched, train, val = setup()
    calls = {"n": 0}

    def poisoned_loss(logits, labels):
        calls["n"] += logits.requires_grad          # count training batches only
        loss = mr.functional.softmax_cross_entropy(logits, labels)
        return loss * float("nan") if calls["n"] > len(train) + 3 else loss   # NaN in epoch 2

    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, iteration 4"):
        fit(model, train, opt, 3, val_loader=val, out_dir=tmp_path, loss_fn=poisoned_loss,
            progress=False)
    fresh, opt2, sched2, train2, val2 = setup(seed=5)
    extra = load_checkpoint(tmp_path / "checkpoint.npz", fresh, opt2)
    assert extra["epoch"] == 1
    assert np.isfinite(fresh[1].weight.numpy()).all()
    loss, error = mr.evaluate(fresh, val2)
    assert np.isfinite(loss) and error < 0.9


def test_corrupt_checkpoint_message(tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"not a zip file")
    model, opt, *_ = setup()
    with pytest.raises(RuntimeError, match="cannot read checkpoint"):
        load_checkpoint(path, model, opt)


def test_training_runs_on_each_backend(xp, device):
    model, opt, sched, train, val = setup(device=device)
    history = fit(model, train, opt, 1, val_loader=val, progress=False)
    assert history.epochs[0]["val_error"] < 0.9
    assert all(p.device == device for p in model.parameters())


def test_batched_reads_record_every_iteration_as_single_reads_do(monkeypatch):
    """On a GPU losses are read back READ_EVERY at a time (here 5, over 13
    batches: 5 + 5 + 3); the history must equal reading each one at once."""
    histories = []
    for read_every in (1, 5):
        _read_every(monkeypatch, read_every)
        model, opt, sched, train, val = setup()
        histories.append(fit(model, train, opt, 2, val_loader=val, progress=False))
    assert histories[0].iterations == histories[1].iterations
    assert without_time(histories[0]) == without_time(histories[1])
    assert len(histories[1].iterations) == 2 * 13


def test_an_epoch_of_a_loader_that_stops_short_is_still_counted(monkeypatch):
    """A loader may yield fewer batches than len() (e.g. restored mid-epoch):
    the last pending reads must still be recorded."""
    model, opt, sched, train, val = setup()
    short = [batch for _, batch in zip(range(7), train)]

    class Short:
        def __len__(self):
            return len(train)

        def __iter__(self):
            return iter(short)

    history = train_module.History()
    loss, error, _ = train_module.train_one_epoch(
        model, Short(), opt, 1, history, mr.functional.softmax_cross_entropy, progress=False,
        read_every=5)
    assert len(history.iterations) == 7 and np.isfinite(loss) and 0 <= error <= 1
