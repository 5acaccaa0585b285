"""Input checks shared by every entry point: errors name the bad value and where it is."""
import numpy as np


class InputError(ValueError):
    """A value the caller gave is not acceptable: the message names it (the CLI's one-line error, exit 2).

    Every check of the package raises this; any other exception is an internal error.
    """


def shown(value):
    """``repr`` of a value as a user wrote it: numbers as numbers (``nan``, not ``np.float64(nan)``)."""
    return repr(value.item()) if isinstance(value, np.generic) else repr(value)


def check_positive_int(value, name):
    """``int(value)``; ValueError "{name} must be a positive integer, got {value!r}" otherwise (bools refused)."""
    try:
        ok = not isinstance(value, bool) and float(value) == int(value) and int(value) > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InputError(f"{name} must be a positive integer, got {shown(value)}")
    return int(value)


def check_features(x, num_features=1, name="features"):
    """Return x as float32 [B, D]; raise ValueError naming bad shape or non-finite values."""
    x = np.asarray(x, dtype="float64")
    if x.ndim == 1 and num_features == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != num_features:
        raise InputError(f"{name} must have shape [batch, {num_features}], got {list(x.shape)}")
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        row, col = bad[0]
        raise InputError(f"{name} must be finite: row {row}, column {col} is {shown(x[row, col])}")
    # Models take float32: a finite float64 beyond float32's range would become inf.
    too_big = np.argwhere(np.abs(x) > np.finfo(np.float32).max)
    if too_big.size:
        row, col = too_big[0]
        raise InputError(f"{name} must fit in float32 (|x| <= 3.4e38): row {row}, column {col} is {shown(x[row, col])}")
    return x.astype("float32")


def check_kl_weight(value):
    """Return value as float, raising ValueError if it is negative or not finite."""
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise InputError(f"kl_weight must be a number, got {value!r}") from None
    if not np.isfinite(w) or w < 0:
        raise InputError(f"kl_weight must be finite and >= 0, got {value!r}")
    return w
