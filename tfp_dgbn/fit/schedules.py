"""KL-weight schedules: one interface, several laws.

A schedule maps training progress ``t`` (in epochs, fractional when updated
per batch) to the KL weight w(t) >= 0, and may take feedback from the logs:

- ``constant``: w = weight.
- ``linear`` (warm-up, Bowman et al. 2016): from ``start`` to ``end`` over
  ``epochs`` after ``delay``.
- ``step`` ("factor switch"): ``w0`` until epoch ``epoch``, then ``w1``.
- ``cyclical`` (Fu et al. 2019, "Cyclical Annealing Schedule"): in each cycle
  of ``period`` epochs, w rises linearly from 0 to ``max`` over the first
  ``ratio`` of the cycle, then stays at ``max``.
- ``adaptive`` ("kl_factor adjust"): a bounded feedback controller that moves
  w to hold the *unweighted* KL (``kl_raw``, or its ratio to |nll|) at a set
  point. The controller acts on the unweighted KL because raising w lowers
  it (negative feedback), whereas the weighted term first rises with w.

`from_spec("step:w0=0.1,w1=1,epoch=20")` builds one from a CLI string.
"""
import numpy as np

from tfp_dgbn.validate import InputError, check_kl_weight


def _nonneg(name, value):
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise InputError(f"schedule parameter {name} must be finite and >= 0, got {value!r}")
    return value


def _weight(name, value):
    try:
        return check_kl_weight(value)
    except ValueError:
        raise InputError(f"schedule parameter {name} is a KL weight and must be finite and >= 0, "
                         f"got {value!r}") from None


def _positive(name, value):
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"schedule parameter {name} must be finite and > 0, got {value!r}")
    return value


class KLSchedule:
    """Base class: w(t) for progress t in epochs; optional feedback from logs."""

    name = None

    def __call__(self, t):
        """KL weight (float >= 0) at progress ``t`` epochs."""
        raise NotImplementedError

    def observe(self, logs):
        """Take feedback from a logs dict (``kl_raw``, ``nll``, ...). No-op by default."""

    def get_config(self):
        """Constructor arguments, JSON-able."""
        raise NotImplementedError

    def get_state(self):
        """Mutable state to save with a checkpoint (empty for open-loop schedules)."""
        return {}

    def set_state(self, state):
        """Restore what `get_state` returned."""

    def spec(self):
        """The CLI string that rebuilds this schedule."""
        params = ",".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{self.name}:{params}" if params else self.name


class Constant(KLSchedule):
    """w(t) = weight."""

    name = "constant"

    def __init__(self, weight=1.0):
        self.weight = _weight("weight", weight)

    def __call__(self, t):
        return self.weight

    def get_config(self):
        return {"weight": self.weight}


class LinearWarmup(KLSchedule):
    """w rises linearly from ``start`` to ``end`` over ``epochs`` epochs after ``delay``."""

    name = "linear"

    def __init__(self, start=0.0, end=1.0, epochs=10.0, delay=0.0):
        self.start = _weight("start", start)
        self.end = _weight("end", end)
        self.epochs = _positive("epochs", epochs)
        self.delay = _nonneg("delay", delay)

    def __call__(self, t):
        frac = np.clip((t - self.delay) / self.epochs, 0.0, 1.0)
        return float(self.start + (self.end - self.start) * frac)

    def get_config(self):
        return {"start": self.start, "end": self.end, "epochs": self.epochs, "delay": self.delay}


class Step(KLSchedule):
    """The "factor switch": w0 for t < epoch, then w1."""

    name = "step"

    def __init__(self, w0=0.01, w1=1.0, epoch=10.0):
        self.w0 = _weight("w0", w0)
        self.w1 = _weight("w1", w1)
        self.epoch = _nonneg("epoch", epoch)

    def __call__(self, t):
        return self.w0 if t < self.epoch else self.w1

    def get_config(self):
        return {"w0": self.w0, "w1": self.w1, "epoch": self.epoch}


class Cyclical(KLSchedule):
    """Fu et al. (2019): per cycle of ``period`` epochs, ramp 0 -> max over ``ratio`` of it."""

    name = "cyclical"

    def __init__(self, max=1.0, period=10.0, ratio=0.5):  # noqa: A002 (the paper's name)
        self.max = _weight("max", max)
        self.period = _positive("period", period)
        self.ratio = _positive("ratio", ratio)
        if self.ratio > 1:
            raise InputError(f"schedule parameter ratio must be in (0, 1], got {ratio!r}")

    def __call__(self, t):
        tau = (t % self.period) / self.period
        return float(self.max * min(tau / self.ratio, 1.0))

    def get_config(self):
        return {"max": self.max, "period": self.period, "ratio": self.ratio}


class Adaptive(KLSchedule):
    """The "kl_factor adjust" controller: hold the unweighted KL at a set point.

    After each observation, with m the measured quantity and e = (m - target) / |target|,
    the wanted weight is ``w + gain * e`` (mode "integral") or ``initial + gain * e``
    (mode "proportional"); w moves toward it by at most ``max_step`` and stays in
    [min, max]. A KL above target raises w, which pulls the KL down.

    Which mode: under Adam, any w > 0 shrinks the KL of weights the data does not
    constrain at nearly full speed (Adam normalises the gradient's scale), so the
    KL integrates the weight. An integral controller on an integrating plant
    overshoots; the proportional mode lets w fall to ``initial`` as the KL reaches
    the set point and settles there (see docs/design.md for the measured runs).

    Args:
      target: set point of the quantity (> 0).
      quantity: "kl_raw" (KL / N_train, nats per example) or "kl_nll_ratio"
        (kl_raw / |nll|).
      initial: weight before the first observation.
      gain: proportional gain (weight per unit relative error).
      max_step: largest change of w per observation.
      min, max: bounds of w.
      mode: "integral" (incremental) or "proportional" (positional), see above.
    """

    name = "adaptive"
    QUANTITIES = ("kl_raw", "kl_nll_ratio")

    MODES = ("integral", "proportional")

    def __init__(self, target=1.0, quantity="kl_raw", initial=0.0, gain=1.0, max_step=0.05,
                 min=0.0, max=1.0, mode="proportional"):  # noqa: A002
        if mode not in self.MODES:
            raise InputError(f"adaptive mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        if quantity not in self.QUANTITIES:
            raise InputError(f"adaptive quantity must be one of {self.QUANTITIES}, got {quantity!r}")
        self.target = _positive("target", target)
        self.quantity = quantity
        self.initial = _weight("initial", initial)
        self.gain = _positive("gain", gain)
        self.max_step = _positive("max_step", max_step)
        self.min = _weight("min", min)
        self.max = _weight("max", max)
        if self.min > self.max:
            raise InputError(f"adaptive min ({min!r}) must not exceed max ({max!r})")
        self.weight = float(np.clip(self.initial, self.min, self.max))

    def measure(self, logs):
        """The controlled quantity from a logs dict."""
        if self.quantity == "kl_raw":
            return float(logs["kl_raw"])
        return float(logs["kl_raw"]) / max(abs(float(logs["nll"])), 1e-12)

    def __call__(self, t):
        return self.weight

    def observe(self, logs):
        if not logs or "kl_raw" not in logs:
            return
        error = (self.measure(logs) - self.target) / self.target
        if not np.isfinite(error):
            return  # a non-finite loss is the NaN guard's business, not the controller's
        base = self.weight if self.mode == "integral" else self.initial
        step = float(np.clip(base + self.gain * error - self.weight, -self.max_step, self.max_step))
        self.weight = float(np.clip(self.weight + step, self.min, self.max))

    def get_config(self):
        return {"target": self.target, "quantity": self.quantity, "initial": self.initial,
                "gain": self.gain, "max_step": self.max_step, "min": self.min, "max": self.max,
                "mode": self.mode}

    def get_state(self):
        return {"weight": self.weight}

    def set_state(self, state):
        self.weight = _weight("weight", state["weight"])


SCHEDULES = {cls.name: cls for cls in (Constant, LinearWarmup, Step, Cyclical, Adaptive)}


def make_schedule(name, **params):
    """Build a schedule by name with keyword parameters; errors name the bad value."""
    if name not in SCHEDULES:
        raise InputError(f"unknown KL schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    cls = SCHEDULES[name]
    try:
        return cls(**params)
    except TypeError:
        import inspect

        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        bad = sorted(set(params) - set(allowed))
        raise InputError(f"unknown parameter(s) {bad} for KL schedule {name!r}; allowed: {allowed}") from None


def from_spec(spec):
    """Parse "name" or "name:key=value,key=value" (values numbers, or words for quantity)."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"empty KL schedule spec: {spec!r}")
    name, _, rest = spec.strip().partition(":")
    params = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise InputError(f"KL schedule parameter {item!r} in {spec!r} is not key=value")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            params[key.strip()] = value.strip()
    return make_schedule(name.strip(), **params)
