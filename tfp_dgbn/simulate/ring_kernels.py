"""Compiled per-ring loops of the ring simulator (numba): exact mean images and anti-aliased true rings.

Both images are sums over a ring's own geometry that do not vectorise well in
NumPy: the exact image walks each photon line through the pixels it crosses,
the true ring only needs sub-pixels near its band. Written as loops and
compiled with numba, they run in parallel over rings (``prange``) and touch
only the pixels that matter. The math, and the accuracy of each image, are
documented in `tfp_dgbn.simulate.rings` and docs/rings.md; the NumPy
formulation they replaced is kept in ``tests/ring_reference.py``, and the
tests compare the two.

The first call compiles the kernels (a few seconds); ``cache=True`` keeps the
machine code in ``__pycache__`` for later processes.
"""
import math
import threading

import numba
import numpy as np
from scipy.special import ndtr

# numba's default "workqueue" threading layer aborts the process when two
# threads launch parallel kernels at once: callers hold this lock (rings.py).
LOCK = threading.Lock()

# The normal CDF is three quarters of the exact image's time when computed with
# erfc (16 ns a call, measured). A cubic Hermite interpolant of a table of Phi
# and its derivative phi on a grid of step h is exact to h^4 / 384 max|Phi^(4)|
# = (1/128)^4 / 384 * 0.55 < 6e-12, and costs a few multiplications.
PHI_STEP = 1.0 / 128
PHI_RANGE = 8.0  # the table spans [-8, 8]; beyond it Phi is 0 or 1 to < 7e-16
_Z = np.arange(-PHI_RANGE, PHI_RANGE + PHI_STEP / 2, PHI_STEP)
PHI_TABLE = np.stack([ndtr(_Z), PHI_STEP * np.exp(-0.5 * _Z ** 2) / math.sqrt(2 * math.pi)], axis=1)


@numba.njit(cache=True, inline="always")
def _phi(z, table):
    """Standard normal CDF at z, by cubic Hermite interpolation of ``table`` (`PHI_TABLE`)."""
    x = (z + PHI_RANGE) / PHI_STEP
    if x <= 0.0:
        return 0.0
    k = int(x)
    if k >= table.shape[0] - 1:
        return 1.0
    s = x - k
    s2 = s * s
    s3 = s2 * s
    return ((2 * s3 - 3 * s2 + 1) * table[k, 0] + (s3 - 2 * s2 + s) * table[k, 1]
            + (3 * s2 - 2 * s3) * table[k + 1, 0] + (s3 - s2) * table[k + 1, 1])


@numba.njit(cache=True)
def _walk_line(img, size, cx, cy, dx, dy, r, sigma, window, weight, table):
    """Add the mass of t ~ N(r, sigma^2) along the line c + t (dx, dy) to the pixels it crosses.

    The line is walked from t = r - window sigma to r + window sigma, edge
    crossing by edge crossing (Amanatides-Woo traversal); each pixel receives
    Phi at its exit minus Phi at its entry, times ``weight``. Coordinates are in
    pixel units with the origin at the image centre; ``img`` is [size, size]
    indexed [row (y), col (x)].
    """
    half = 0.5 * size
    t = r - window * sigma
    t_end = r + window * sigma
    x, y = cx + t * dx + half, cy + t * dy + half  # position in edge units
    col, row = math.floor(x), math.floor(y)
    step_c, tx, dtx = _first_crossing(t, x, col, dx)
    step_r, ty, dty = _first_crossing(t, y, row, dy)
    f_prev = _phi((t - r) / sigma, table)
    while True:
        t_next = min(tx, ty, t_end)
        f_next = _phi((t_next - r) / sigma, table)
        if 0 <= col < size and 0 <= row < size:
            img[int(row), int(col)] += weight * (f_next - f_prev)
        if t_next >= t_end:
            return
        f_prev = f_next
        if tx <= ty:
            col += step_c
            tx += dtx
        else:
            row += step_r
            ty += dty


@numba.njit(cache=True, inline="always")
def _first_crossing(t, x, cell, d):
    """Along one axis: (cell step, t of the first edge crossed after t, t between crossings) for direction d."""
    if d > 0:
        return 1, t + (cell + 1 - x) / d, 1.0 / d
    if d < 0:
        return -1, t + (cell - x) / d, -1.0 / d
    return 0, math.inf, math.inf


@numba.njit(parallel=True, cache=True)
def expected_counts(centre, a_ax, b_ax, phi, sigma, photons, size, angles, window, table):
    """Mean photon counts per pixel of each ring (no background); float64 [B, size, size].

    Args:
      centre: float64 [B, 2] ellipse centres (x, y), pixels from the image centre.
      a_ax, b_ax, phi: float64 [B] semi-axes along / across phi, and phi (rad).
      sigma: float64 [B] radial smearing stddev (pixels).
      photons: float64 [B] mean photon number nbar.
      size: pixels per side.
      angles: midpoint-rule points over the photon azimuth alpha.
      window: half-width of each line's window, in sigma.
      table: the normal CDF's interpolation table (`PHI_TABLE`).
    """
    n = centre.shape[0]
    out = np.zeros((n, size, size))
    for i in numba.prange(n):
        cp, sp = math.cos(phi[i]), math.sin(phi[i])
        weight = photons[i] / angles
        for j in range(angles):
            alpha = (j + 0.5) * (2.0 * math.pi / angles)
            u, v = a_ax[i] * math.cos(alpha), b_ax[i] * math.sin(alpha)
            ox, oy = u * cp - v * sp, u * sp + v * cp
            r = math.hypot(ox, oy)
            _walk_line(out[i], size, centre[i, 0], centre[i, 1], ox / r, oy / r, r, sigma[i], window, weight, table)
    return out


@numba.njit(cache=True, inline="always")
def _in_band(px, py, cx, cy, cp, sp, a, b, half_width):
    """Whether the point lies within radial distance half_width of the ellipse (polar radius from its centre)."""
    x, y = px - cx, py - cy
    u, v = x * cp + y * sp, -x * sp + y * cp
    rho = math.sqrt(u * u + v * v)  # sqrt, not hypot (2-3x slower; no overflow at pixel scales)
    bu, av = b * u, a * v
    den = math.sqrt(bu * bu + av * av)
    r_e = a * b * rho / den if den > 0 else 0.0
    return abs(rho - r_e) <= half_width


@numba.njit(parallel=True, cache=True)
def band_fractions(centre, a_ax, b_ax, phi, width, size, supersample):
    """Fraction of each pixel's supersample^2 sub-pixel centres inside the ring's band; float32 [B, size, size].

    The band is |rho - r_e(psi)| <= width / 2, rho and psi the polar coordinates
    around the ellipse centre and r_e the ellipse's polar radius. Only pixels
    whose centre passes a conservative distance test are sub-sampled: g = rho -
    r_e changes by at most L delta between the pixel centre and a sub-pixel
    centre at distance <= delta, with L = sqrt(1 + (max |dr_e/dpsi| / rho_min)^2)
    (the gradient of g in polar coordinates); pixels with no sub-pixel in reach
    of the band are exactly 0, so the result equals sub-sampling every pixel.
    """
    n = centre.shape[0]
    k = supersample
    out = np.zeros((n, size, size), np.float32)
    half = 0.5 * size
    delta = math.sqrt(0.5) * (1.0 - 1.0 / k)  # farthest sub-pixel centre from the pixel centre
    for i in numba.prange(n):
        a, b = a_ax[i], b_ax[i]
        lo, hi = min(a, b), max(a, b)
        slope = hi * (hi * hi - lo * lo) / (2.0 * lo * lo)  # bounds |dr_e/dpsi| of the ellipse
        cp, sp = math.cos(phi[i]), math.sin(phi[i])
        cx, cy, hw = centre[i, 0], centre[i, 1], 0.5 * width[i]
        # Band points have rho <= hi + hw, and a pixel centre is within delta of its
        # sub-pixels: pixels outside this box around the centre hold none.
        box = hi + hw + 1.0
        rows = _index_range(cy + half - 0.5, box, size)
        cols = _index_range(cx + half - 0.5, box, size)
        for row in range(rows[0], rows[1]):
            for col in range(cols[0], cols[1]):
                x, y = col + 0.5 - half - cx, row + 0.5 - half - cy
                u, v = x * cp + y * sp, -x * sp + y * cp
                rho = math.sqrt(u * u + v * v)
                if rho - delta > 0.5:  # otherwise the pixel is near the pole: always sub-sample
                    reach = delta * math.sqrt(1.0 + (slope / (rho - delta)) ** 2)
                    r_e = a * b * rho / math.sqrt(b * b * u * u + a * a * v * v)
                    if abs(rho - r_e) > hw + reach + 1e-9:  # the 1e-9 covers rounding of this coarse test
                        continue
                hits = 0
                for si in range(k):
                    py = (row * k + si + 0.5) / k - half  # as NumPy's (arange(size k) + 0.5) / k - half
                    for sj in range(k):
                        px = (col * k + sj + 0.5) / k - half
                        if _in_band(px, py, cx, cy, cp, sp, a, b, hw):
                            hits += 1
                out[i, row, col] = hits / (k * k)
    return out


@numba.njit(cache=True, inline="always")
def _index_range(centre, half_width, size):
    """Integer indices j in [0, size) with |j - centre| <= half_width, as (start, stop)."""
    return max(0, math.ceil(centre - half_width)), min(size, math.floor(centre + half_width) + 1)
