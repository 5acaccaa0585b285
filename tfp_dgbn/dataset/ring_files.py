"""Ring datasets on disk (one ``.npz``) and back as arrays (train from them with `tfp_dgbn.dataset.sources.ArraySource`).

File layout (an uncompressed npz, so ``numpy.load`` reads it without pickle):

  metadata                JSON string: format, law (``photon`` or ``pattern``)
                          and its settings (``config``: the `RingConfig` of a
                          photon-law file; ``two_rings`` of a pattern file),
                          seed, split sizes, package version, feature names, arrays
  {split}/features        float32 [n, F]   (photon law: x0, y0, R, w, theta, phi;
                          pattern law: ci, cj, R, s, theta, phi, twice for two rings)
  {split}/noised          the recorded images [n, S, S]: uint16 photon counts,
                          or float32 pattern-law intensities
  {split}/true_ring       noise-free image: float16 anti-aliased photon ring in
                          [0, 1] (multiples of 1/supersample^2), or float32 g1 + b g2
  {split}/expected        float32 [n, S, S] exact mean images (val and test
                          by default; the truth every evaluation uses)
  {split}/present         pattern law only: float32 [n], the second ring's b
                          (not a feature; the truth of the two-ring evaluation)

for split in train, val, test. Each split is simulated from its own seed
sequence (seed, split index), so the test set does not change with the
training size. Each array is streamed chunk by chunk into its own entry of a
temporary zip (bounded memory: only the features, 24 bytes a ring, are held;
the noise-free and exact images are computed from them), which is renamed into
place when complete: an interrupted write never leaves a truncated file at the
target.
"""
import json
import os
import shutil
import tempfile
import zipfile

import numpy as np

import tfp_dgbn
from tfp_dgbn.atomic import writable_parent
from tfp_dgbn import seeds
from tfp_dgbn.simulate import rings
from tfp_dgbn.simulate.laws import PhotonLaw
from tfp_dgbn.validate import InputError

FORMAT = "tfp_dgbn.rings/1"
SPLITS = ("train", "val", "test")


def split_sizes(n, fractions=(0.8, 0.1, 0.1)):
    """Sizes of train/val/test for n rings; each >= 1."""
    if isinstance(n, bool) or int(n) != n or n < 3:
        raise InputError(f"n must be an integer >= 3 (one ring per split at least), got {n!r}")
    fractions = np.asarray(fractions, "float64")
    if fractions.shape != (3,) or not np.all(fractions > 0) or not np.isclose(fractions.sum(), 1):
        raise InputError(f"split fractions must be three positive numbers summing to 1, got {fractions.tolist()}")
    val, test = (max(1, int(round(n * f))) for f in fractions[1:])
    return {"train": int(n) - val - test, "val": val, "test": test}


def write_rings(path, n, seed=0, config=None, fractions=(0.8, 0.1, 0.1), expected_splits=("val", "test"),
                true_ring=True, progress=True, chunk_size=rings.BLOCK_SIZE, sizes=None, law=None):
    """Simulate n rings and write them to ``path`` (see module docstring).

    Args:
      path: target ``.npz`` file; replaced only once the new file is complete.
      n: total rings over the three splits.
      seed: integer seed.
      config: `RingConfig` of the photon law (default: the defaults).
      law: a law of `tfp_dgbn.simulate.laws` instead (e.g. ``PatternLaw(two_rings=True)``);
        ``config`` is then not used.
      fractions: train/val/test fractions.
      expected_splits: splits that also store the exact ``expected`` images
        (about 0.2 ms per ring on 2 cores).
      true_ring: also store the noise-free rings.
      progress: show a tqdm progress bar (rings).
      chunk_size: rings simulated per step (bounds memory).
      sizes: explicit rings per split instead of ``n`` and ``fractions``, e.g.
        ``{"val": 1000, "test": 5000}`` (held-out sets only; a split left out
        is not written). Each split keeps its own seed, so these are the same
        rings as in a full file of that seed.

    Returns:
      The metadata dict written into the file.
    """
    from tqdm.auto import tqdm

    law = law or PhotonLaw(config)
    if sizes is None:
        sizes = split_sizes(n, fractions)
    else:
        bad = {k: v for k, v in sizes.items() if k not in SPLITS or isinstance(v, bool) or int(v) != v or v < 1}
        if bad or not sizes:
            raise InputError(f"sizes must map splits of {SPLITS} to positive integers, got {sizes!r}")
        sizes = {k: int(sizes[k]) for k in SPLITS if k in sizes}
        n = sum(sizes.values())
    unknown = set(expected_splits) - set(SPLITS)
    if unknown:
        raise InputError(f"expected_splits must name splits of {SPLITS}, got {sorted(unknown)}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if not str(path).endswith(".npz"):
        raise InputError(f"output path must end in .npz, got {path!r}")
    try:
        parent = writable_parent(path)
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".tmp-", dir=parent)
    except OSError as e:
        raise OSError(f"cannot write {path!r}: {e.strerror or e}") from None
    metadata = {"format": FORMAT, "version": tfp_dgbn.__version__, "seed": int(seed), **law.metadata(),
                "feature_names": list(law.feature_names), "splits": sizes, "arrays": {}}
    try:
        partial = os.path.join(tmp, "rings.npz")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as zf, \
                tqdm(total=int(n), unit="ring", desc="simulating", disable=not progress) as bar:
            for split in SPLITS:
                if split in sizes:
                    _write_split(zf, split, sizes[split], seeds.key(seed, split), law, chunk_size,
                                 true_ring, split in expected_splits, metadata, bar, progress)
            zf.writestr("metadata.npy", _npy_bytes(np.array(json.dumps(metadata))))
        os.replace(partial, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return metadata


def _write_split(zf, split, count, key, law, chunk_size, true_ring, expected, metadata, bar, progress):
    """Stream one split's arrays into ``zf``, one entry after another (the noised images as they are simulated).

    The per-row arrays of the chunks (features, and what else the law keeps per
    row) are held in memory; the noise-free and expected images are computed
    from them chunk by chunk.
    """
    size = law.image_size
    parts = {name: [] for name in law.row_arrays}

    def noised():
        for chunk in law.generate(count, key, chunk_size):
            for name in law.row_arrays:
                parts[name].append(chunk[name])
            bar.update(len(chunk["features"]))
            yield chunk["noised"]

    _write_entry(zf, law, f"{split}/noised", (count, size, size), noised(), metadata)
    rows = {name: np.concatenate(p) for name, p in parts.items()}
    for name, array in rows.items():
        _write_entry(zf, law, f"{split}/{name}", array.shape, [array], metadata)
    pieces = [{name: a[i:i + chunk_size] for name, a in rows.items()} for i in range(0, count, chunk_size)]
    if true_ring:
        _write_entry(zf, law, f"{split}/true_ring", (count, size, size), map(law.true_images, pieces), metadata)
    if expected:
        _write_entry(zf, law, f"{split}/expected", (count, size, size), _exact_images(law, pieces, count, progress),
                     metadata)


def _write_entry(zf, law, arcname, shape, chunks, metadata):
    """Write an .npy entry of ``shape`` to ``zf`` from ``chunks`` (arrays along axis 0), in the law's dtype."""
    dtype = np.dtype(law.dtypes[arcname.split("/")[1]])
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    nbytes = int(np.prod(shape)) * dtype.itemsize
    with zf.open(arcname + ".npy", "w", force_zip64=nbytes > 2 ** 30) as entry:
        np.lib.format.write_array_header_1_0(entry, header)
        rows = 0
        for chunk in chunks:
            chunk = np.ascontiguousarray(chunk, dtype)
            entry.write(chunk.data)
            rows += len(chunk)
    if rows != shape[0]:  # a bug, not bad input: the entry's header would not match its data
        raise RuntimeError(f"{arcname}: wrote {rows} rows, the header says {shape[0]}")
    metadata["arrays"][arcname] = {"dtype": dtype.name, "shape": list(shape)}


def _exact_images(law, pieces, count, progress):
    """The law's expected images of each piece of rows, with a progress bar (~5,000 images/s for photon rings)."""
    from tqdm.auto import tqdm

    with tqdm(total=count, unit="ring", desc="exact images", leave=False, disable=not progress) as bar:
        for piece in pieces:
            yield law.expected_images(piece)
            bar.update(len(piece["features"]))


def _npy_bytes(array):
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def read_metadata(path):
    """The metadata dict of a ring file (raises ValueError if it is not one)."""
    with _open(path) as data:
        return _metadata(data, path)


def _open(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no ring dataset at {path!r}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise InputError(f"{path!r} is not a readable .npz ring dataset ({e})") from None


def _metadata(data, path):
    if "metadata" not in data.files:
        raise InputError(f"{path!r} has no metadata: not a tfp_dgbn ring dataset")
    meta = json.loads(str(data["metadata"]))
    if meta.get("format") != FORMAT:
        raise InputError(f"{path!r} has format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_rings(path, split="train"):
    """Arrays of one split: dict name -> array (see module docstring), plus its metadata.

    Returns:
      (arrays, metadata); `tfp_dgbn.simulate.laws.law_from_metadata` rebuilds the law
      (``metadata["config"]`` a photon law's `RingConfig`).
    """
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}")
    with _open(path) as data:
        meta = _metadata(data, path)
        arrays = {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith(split + "/")}
    return arrays, meta
