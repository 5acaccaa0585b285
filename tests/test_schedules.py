"""Trajectories of every KL schedule, the adaptive controller, parsing and the callback."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfp_dgbn.fit.callbacks import KLAnnealing
from tfp_dgbn.fit.schedules import SCHEDULES, Adaptive, Cyclical, LinearWarmup, Step, from_spec


def test_constant():
    s = from_spec("constant:weight=0.3")
    assert [s(t) for t in (0, 5, 100)] == [0.3, 0.3, 0.3]


def test_linear_warmup_trajectory():
    s = LinearWarmup(start=0.0, end=1.0, epochs=10, delay=2)
    np.testing.assert_allclose([s(t) for t in (0, 2, 4.5, 7, 12, 50)], [0, 0, 0.25, 0.5, 1, 1])


def test_step_factor_switch_trajectory():
    s = Step(w0=0.01, w1=1.0, epoch=3)
    assert [s(t) for t in (0, 2, 2.99, 3, 10)] == [0.01, 0.01, 0.01, 1.0, 1.0]


def test_cyclical_trajectory_fu_2019():
    s = Cyclical(max=1.0, period=4, ratio=0.5)
    np.testing.assert_allclose([s(t) for t in (0, 1, 2, 3, 4, 5, 7.5)], [0, 0.5, 1, 1, 0, 0.5, 1])


def _plant(w):
    # Stand-in for training: the equilibrium unweighted KL falls as the weight rises.
    return 2.0 / (1.0 + 4.0 * w)


def test_adaptive_reaches_set_point_on_a_plant():
    target = 0.8  # reached at w = 0.375
    # A static plant: the integral mode removes the steady-state error.
    s = Adaptive(target=target, quantity="kl_raw", initial=0.0, gain=0.2, max_step=0.05, mode="integral")
    trace = []
    for epoch in range(200):
        w = s(epoch)
        s.observe({"kl_raw": _plant(w), "nll": 1.0})
        trace.append(w)
    assert trace[0] == 0.0
    assert np.max(np.abs(np.diff(trace))) <= 0.05 + 1e-12  # bounded step
    assert _plant(trace[-1]) == pytest.approx(target, rel=1e-3)
    assert trace[-1] == pytest.approx(0.375, rel=1e-2)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(scale=st.floats(0.5, 5.0), slope=st.floats(0.5, 10.0), floor=st.floats(0.0, 0.3),
       where=st.floats(0.05, 0.95), initial=st.floats(0.0, 1.0))
def test_adaptive_reaches_the_set_point_of_any_reachable_decreasing_plant(scale, slope, floor, where, initial):
    """Not one recorded trajectory: any plant kl(w) = floor + scale / (1 + slope w) whose set point
    lies inside [0, 1], from any start; the integral mode settles on it with bounded steps."""
    def plant(w):
        return floor + scale / (1.0 + slope * w)

    target = plant(where)
    s = Adaptive(target=target, quantity="kl_raw", initial=initial, gain=0.2, max_step=0.05, mode="integral")
    trace = []
    for epoch in range(400):
        trace.append(s(epoch))
        s.observe({"kl_raw": plant(trace[-1]), "nll": 1.0})
    assert np.max(np.abs(np.diff(trace))) <= 0.05 + 1e-12
    assert plant(trace[-1]) == pytest.approx(target, rel=1e-2)
    assert trace[-1] == pytest.approx(where, abs=2e-2)


def test_adaptive_stays_within_bounds_when_set_point_is_unreachable():
    s = Adaptive(target=0.1, initial=0.5, gain=1.0, max_step=0.1, min=0.0, max=1.0, mode="integral")
    for epoch in range(100):
        s.observe({"kl_raw": _plant(s(epoch)), "nll": 1.0})
    assert s(100) == 1.0  # pinned at the upper bound (plant(1) = 0.4 > 0.1)


def test_adaptive_ratio_quantity_and_state():
    s = Adaptive(target=0.5, quantity="kl_nll_ratio", initial=0.2, gain=0.1, max_step=1.0, mode="integral")
    s.observe({"kl_raw": 2.0, "nll": -2.0})  # ratio 1.0 -> error +1 -> +0.1
    assert s(1) == pytest.approx(0.3)
    t = Adaptive(target=0.5, quantity="kl_nll_ratio")
    t.set_state(s.get_state())
    assert t(0) == pytest.approx(0.3)


@pytest.mark.parametrize("spec,match", [
    ("bogus", "unknown KL schedule 'bogus'"),
    ("step:w0=-1", "w0"),
    ("step:foo=1", "foo"),
    ("linear:epochs=0", "epochs"),
    ("adaptive:quantity=elbo", "elbo"),
    ("adaptive:mode=pid", "pid"),
    ("constant:weight", "not key=value"),
    ("", "empty"),
])
def test_bad_specs_name_the_bad_value(spec, match):
    with pytest.raises(ValueError, match=match):
        from_spec(spec)


def test_spec_round_trip():
    for name, cls in SCHEDULES.items():
        s = cls()
        assert from_spec(s.spec()).get_config() == s.get_config()


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(SCHEDULES)), t=st.floats(0, 1e4), kl=st.floats(0, 1e6),
       nll=st.floats(-1e6, 1e6))
def test_every_schedule_gives_a_finite_nonnegative_weight(name, t, kl, nll):
    s = SCHEDULES[name]()
    s.observe({"kl_raw": kl, "nll": nll})
    w = s(t)
    assert np.isfinite(w) and w >= 0


class _FakeModel:
    def __init__(self):
        self.weights = []

    def set_kl_weight(self, w):
        self.weights.append(w)


def test_callback_updates_per_epoch_and_per_batch():
    cb = KLAnnealing(LinearWarmup(0.0, 1.0, epochs=2), update="batch")
    cb.set_model(_FakeModel())
    cb.set_params({"steps": 4, "epochs": 2})
    for epoch in range(2):
        cb.on_epoch_begin(epoch)
        for batch in range(4):
            cb.on_train_batch_begin(batch)
            cb.on_train_batch_end(batch, {"kl_raw": 1.0, "nll": 1.0})
        cb.on_epoch_end(epoch, {})
    np.testing.assert_allclose(cb.model.weights, np.arange(8) / 8)
    cb = KLAnnealing(Step(0.1, 1.0, epoch=1), update="epoch")
    cb.set_model(_FakeModel())
    cb.set_params({"steps": 4, "epochs": 3})
    for epoch in range(3):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, {})
    assert cb.model.weights == [0.1, 1.0, 1.0]


def test_callback_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'sometimes'"):
        KLAnnealing(Step(), update="sometimes")
    with pytest.raises(TypeError, match="KLSchedule"):
        KLAnnealing("step")


def test_adaptive_proportional_mode_moves_weight_with_the_error():
    s = Adaptive(target=1.0, initial=0.1, gain=0.5, max_step=1.0, mode="proportional")
    s.observe({"kl_raw": 1.6, "nll": 1.0})  # e = 0.6 -> w = 0.1 + 0.3
    assert s(1) == pytest.approx(0.4)
    s.observe({"kl_raw": 1.0, "nll": 1.0})  # on target -> back to initial
    assert s(2) == pytest.approx(0.1)


@pytest.mark.slow
def test_adaptive_reaches_its_set_point_on_the_gaussian_toy(tmp_path):
    from tfp_dgbn.tasks.runner import fit

    target = 1.5  # nats per example of unweighted KL; it starts near 3.8
    r = fit("toy-gaussian", epochs=150, verbose=0, plot_every=1000,
                          kl_schedule=f"adaptive:target={target},gain=1,max_step=0.05",
                          logdir=str(tmp_path / "logs"), out=str(tmp_path / "m"))
    kl = np.array(r.history["kl_raw"])
    w = np.array(r.history["kl_weight"])
    # Settled on the set point (within 5%; the epoch means of the KL wander by ~1%), starting
    # from above it (about 3.8 at weight 0: the weight had to rise), with bounded steps.
    assert kl[0] > 1.5 * target and w.max() > w[0]
    assert abs(kl[-10:].mean() - target) <= 0.05 * target
    assert np.all(np.abs(np.diff(w)) <= 0.05 + 1e-6)


def test_epoch_tensorboard_writes_epoch_scalars_and_builds_none_per_batch(tmp_path, monkeypatch):
    """With a callback that needs batch hooks (KLAnnealing per batch), the stock TensorBoard callback
    builds its batch scalars on every batch; `EpochTensorBoard` builds none and logs every epoch."""
    import tensorflow as tf
    from tf_keras.src import callbacks as keras_callbacks

    from tfp_dgbn.fit.callbacks import EpochTensorBoard
    from tfp_dgbn.model.heads import NormalHead
    from tfp_dgbn.model.mlp import bayesian_mlp
    from tfp_dgbn.tfk import keras

    names = []
    scalar = keras_callbacks.tf.summary.scalar
    monkeypatch.setattr(keras_callbacks.tf.summary, "scalar", lambda name, *a, **k: names.append(name) or
                        scalar(name, *a, **k))
    x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    for board in (keras.callbacks.TensorBoard, EpochTensorBoard):
        names.clear()
        model = bayesian_mlp(1, NormalHead(), 64, hidden=(4,), seed=0)
        model.compile(keras.optimizers.Adam(1e-2))
        model.fit(x, x[:, 0], epochs=2, batch_size=16, verbose=0, validation_data=(x, x[:, 0]),
                  callbacks=[KLAnnealing(from_spec("linear:epochs=2"), update="batch"),
                             board(str(tmp_path / board.__name__), write_graph=False)])
        batch = [n for n in names if n.startswith("batch_")]
        assert names.count("epoch_kl_weight") == 2 * 2, (board, names)  # train and validation, per epoch
        assert len(batch) == (0 if board is EpochTensorBoard else 2 * 4 * 5), (board, batch)
    assert tf.io.gfile.glob(str(tmp_path / "EpochTensorBoard" / "train" / "events.out.tfevents.*"))
