"""Ring statistics measured on count images: fitted centre, radius, width and hit count.

Used to check the simulator (fitted radius and width track R and sigma_eff) and
to compare generated with simulated rings (issue 4). The fit treats each pixel
centre as a hit weighted by its count:

1. an algebraic circle fit (Kasa 1976): minimise sum_i c_i (x_i^2 + y_i^2 + D x_i + E y_i + F)^2,
   a linear least-squares problem, gives the centre (-D/2, -E/2);
2. the radius is the count-weighted mean distance of hits from that centre and
   the width their weighted standard deviation with the three fitted
   parameters' degrees of freedom removed (divide by hits - 3), as rings have
   few hits (the Kasa radius itself is biased up by width^2 / 2R).
"""
import numpy as np

from tfp_dgbn.validate import InputError


def ring_statistics(images, min_hits=4):
    """Fit each image's ring.

    Args:
      images: counts [N, S, S] (any non-negative numbers; pixel (row, col) has
        centre (col - S/2 + 0.5, row - S/2 + 0.5), as in `tfp_dgbn.simulate.rings`).
      min_hits: images with fewer total counts get NaN centre, radius and width (>= 4).

    Returns:
      dict of float64 arrays [N]: ``hits`` (total counts), ``cx``, ``cy``,
      ``radius`` and ``width`` (pixels).
    """
    if min_hits < 4:
        raise InputError(f"min_hits must be >= 4 (three fitted parameters), got {min_hits!r}")
    c = np.asarray(images, "float64")
    if c.ndim != 3 or c.shape[1] != c.shape[2]:
        raise InputError(f"images must have shape [N, S, S], got {c.shape}")
    size = c.shape[-1]
    axis = np.arange(size) - size / 2.0 + 0.5
    x, y = np.meshgrid(axis, axis)  # x varies along columns, y along rows
    w = c.reshape(len(c), -1)
    x, y = x.ravel(), y.ravel()
    hits = w.sum(axis=1)
    # Weighted normal equations of [x, y, 1] . (D, E, F) = -(x^2 + y^2), for every image at once.
    a = np.stack([x, y, np.ones_like(x)], axis=1)  # [P, 3]
    # As matrix products over the pixels (a three-operand einsum ran as a slow nested loop).
    ata = (w @ (a[:, :, None] * a[:, None, :]).reshape(len(a), 9)).reshape(len(c), 3, 3)
    atb = w @ (a * -(x ** 2 + y ** 2)[:, None])
    ok = hits >= min_hits
    ok &= np.abs(np.linalg.det(np.where(ok[:, None, None], ata, np.eye(3)))) > 1e-9
    sol = np.full((len(c), 3), np.nan)
    if ok.any():
        sol[ok] = np.linalg.solve(ata[ok], atb[ok][..., None])[..., 0]
    cx, cy = -sol[:, 0] / 2, -sol[:, 1] / 2
    dist = np.hypot(x[None, :] - cx[:, None], y[None, :] - cy[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = (w * dist).sum(axis=1) / hits
        width = np.sqrt((w * (dist - radius[:, None]) ** 2).sum(axis=1) / np.maximum(hits - 3, 1))
    radius[~ok], width[~ok] = np.nan, np.nan
    return {"hits": hits, "cx": cx, "cy": cy, "radius": radius, "width": width}
