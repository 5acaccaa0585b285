"""Ring datasets too large for one file: TFRecord shards with a manifest (``dgbn simulate --shards K``).

Directory layout::

  manifest.json                       format, version, seed, simulator config, split sizes,
                                      and per shard: file, rings, bytes, sha256
  train-00000-of-0000K.tfrecord ...   the training rings, K shards
  heldout.npz                         val and test splits with the exact ``expected``
                                      images (the `tfp_dgbn.dataset.ring_files` format)

Each record is one ring, a ``tf.train.Example`` with two byte strings:
``features`` (6 little-endian float32: x0, y0, R, w, theta, phi) and ``noised``
(S*S little-endian uint16 counts, row-major). TFRecord was chosen over npz
shards because TensorFlow streams it natively (interleave, parallel reads, a
CRC per record) and ``tf.distribute`` shards it by file. Shard k of the train
split is simulated from the seed (seed, 0, k); the held-out splits from
(seed, 1) and (seed, 2), as in a ``.npz`` of the same seed.

The directory is written beside and renamed into place, so an interrupted
``simulate`` leaves no partial dataset. Reading checks the manifest against the
files first (missing, truncated or unlisted shards, an empty glob: a ValueError
naming the file), so a run never trains on a silent partial epoch.
"""
import glob
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

import tfp_dgbn
from tfp_dgbn.atomic import atomic_directory
from tfp_dgbn.dataset.ring_files import SPLITS, split_sizes, write_rings
from tfp_dgbn.dataset.sources import Source, _to_float
from tfp_dgbn import seeds
from tfp_dgbn.simulate import rings
from tfp_dgbn.validate import InputError, check_positive_int

FORMAT = "tfp_dgbn.ring-shards/1"
MANIFEST = "manifest.json"
HELDOUT = "heldout.npz"


def shard_name(k, shards):
    """File name of train shard ``k`` of ``shards``."""
    return f"train-{k:05d}-of-{shards:05d}.tfrecord"


def _example(features, noised):
    feature = {
        "features": tf.train.Feature(bytes_list=tf.train.BytesList(value=[features.astype("<f4").tobytes()])),
        "noised": tf.train.Feature(bytes_list=tf.train.BytesList(value=[noised.astype("<u2").tobytes()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_shards(directory, n, shards, seed=0, config=None, fractions=(0.8, 0.1, 0.1), progress=True):
    """Simulate ``n`` rings into ``shards`` TFRecord train shards, held-out npz and manifest (module docstring).

    Args:
      directory: output directory (replaced only once complete).
      n: rings over the three splits; the train split is divided evenly over the shards.
      shards: K, number of train shard files (>= 1, at most the train size).
      seed: non-negative integer seed.
      config: `RingConfig` (default: the defaults).
      fractions: train/val/test fractions.
      progress: tqdm progress bars.

    Returns:
      The manifest dict.
    """
    from tqdm.auto import tqdm

    config = config or rings.RingConfig()
    sizes = split_sizes(n, fractions)
    if isinstance(shards, bool) or int(shards) != shards or not 1 <= shards <= sizes["train"]:
        raise InputError(f"shards must be an integer in [1, {sizes['train']}] (the train size), got {shards!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    shards, seed = int(shards), int(seed)
    counts = [len(a) for a in np.array_split(np.arange(sizes["train"]), shards)]
    manifest = {"format": FORMAT, "version": tfp_dgbn.__version__, "seed": seed, "config": config.to_dict(),
                "feature_names": list(rings.FEATURE_NAMES), "splits": sizes, "heldout": HELDOUT, "shards": []}
    with atomic_directory(directory) as tmp:
        with tqdm(total=sizes["train"], unit="ring", desc="train shards", disable=not progress) as bar:
            for k, count in enumerate(counts):
                path = os.path.join(tmp, shard_name(k, shards))
                with tf.io.TFRecordWriter(path) as writer:
                    for chunk in rings.generate(count, seeds.key(seed, "shard", k), config, true_ring=False):
                        for f, y in zip(chunk["features"], chunk["noised"]):
                            writer.write(_example(f, y))
                        bar.update(len(chunk["features"]))
                manifest["shards"].append({"file": os.path.basename(path), "rings": count,
                                           "bytes": os.path.getsize(path), "sha256": _sha256(path)})
        write_rings(os.path.join(tmp, HELDOUT), None, seed=seed, config=config, progress=progress,
                    sizes={"val": sizes["val"], "test": sizes["test"]})
        with open(os.path.join(tmp, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1)
    return manifest


def _resolve(path_or_glob):
    """(manifest path, shard files given or None) from a directory, a manifest or a glob of shards."""
    if os.path.isdir(path_or_glob):
        return os.path.join(path_or_glob, MANIFEST), None
    if os.path.basename(path_or_glob) == MANIFEST:
        return path_or_glob, None
    matches = sorted(glob.glob(path_or_glob))
    if not matches:
        raise InputError(f"no files match {path_or_glob!r}")
    if any(not m.endswith(".tfrecord") for m in matches):
        raise InputError(f"{path_or_glob!r} matches files that are not .tfrecord shards: "
                         f"{[m for m in matches if not m.endswith('.tfrecord')][:3]}")
    dirs = {os.path.dirname(os.path.abspath(m)) for m in matches}
    if len(dirs) != 1:
        raise InputError(f"{path_or_glob!r} matches shards in several directories {sorted(dirs)}; "
                         "use one dataset directory")
    return os.path.join(dirs.pop(), MANIFEST), matches


def open_shards(path_or_glob, verify_checksums=False):
    """Check a shard dataset against its manifest and return a `ShardSource`.

    Args:
      path_or_glob: the dataset directory, its ``manifest.json``, or a glob of
        its shards (e.g. ``data/train-*.tfrecord``: train on those shards only).
      verify_checksums: also compare every shard's sha256 (reads all data once).

    Raises:
      ValueError: naming the file, for an empty glob, a missing or unreadable
        manifest, a missing, truncated or altered shard, or a shard not listed.
    """
    manifest_path, chosen = _resolve(str(path_or_glob))
    if not os.path.exists(manifest_path):
        raise InputError(f"no {MANIFEST} at {manifest_path!r} (write shards with dgbn simulate --shards K)")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"{manifest_path!r} is not a readable manifest ({e})") from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"{manifest_path!r} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    root = os.path.dirname(os.path.abspath(manifest_path))
    listed = {s["file"]: s for s in manifest["shards"]}
    if chosen is not None:
        unlisted = [c for c in chosen if os.path.basename(c) not in listed]
        if unlisted:
            raise InputError(f"shard {unlisted[0]!r} is not listed in {manifest_path!r}")
        entries = [listed[os.path.basename(c)] for c in chosen]
    else:
        entries = manifest["shards"]
        on_disk = {os.path.basename(p) for p in glob.glob(os.path.join(root, "*.tfrecord"))}
        extra = sorted(on_disk - set(listed))
        if extra:
            raise InputError(f"shard {os.path.join(root, extra[0])!r} is not listed in {manifest_path!r}: "
                             "the manifest does not match its shards")
    for entry in entries:
        path = os.path.join(root, entry["file"])
        if not os.path.exists(path):
            raise InputError(f"shard {path!r} listed in {manifest_path!r} is missing")
        size = os.path.getsize(path)
        if size != entry["bytes"]:
            raise InputError(f"shard {path!r} has {size} bytes, the manifest says {entry['bytes']}: "
                             f"{'truncated' if size < entry['bytes'] else 'altered'}")
        if verify_checksums and _sha256(path) != entry["sha256"]:
            raise InputError(f"shard {path!r} does not match its sha256 in {manifest_path!r}")
    heldout = os.path.join(root, manifest.get("heldout", HELDOUT))
    return ShardSource([os.path.join(root, e["file"]) for e in entries], sum(e["rings"] for e in entries),
                       rings.RingConfig.from_dict(manifest["config"]), manifest["seed"],
                       heldout if os.path.exists(heldout) else None)


class ShardSource(Source):
    """Stream TFRecord ring shards (module docstring); made by `open_shards`.

    Attributes:
      files: shard paths; num_train: their rings; heldout: the held-out ``.npz`` (or None).
      shuffle_buffer: rings in the shuffle buffer (bounds memory: about
        2 KiB per 32x32 ring).
    """

    def __init__(self, files, num_train, config, seed=0, heldout=None, shuffle_buffer=10_000):
        self.files, self.num_train, self.config = list(files), int(num_train), config
        self.seed, self.heldout, self.shuffle_buffer = int(seed), heldout, int(shuffle_buffer)
        self.name = f"{self.num_train} rings from {len(self.files)} TFRecord shard(s)"

    def dataset(self, batch_size, pipeline=0, num_pipelines=1, start_step=0):
        batch_size = check_positive_int(batch_size, "batch_size")
        size = self.config.image_size
        files = tf.data.Dataset.from_tensor_slices(self.files)
        if num_pipelines > 1:
            if len(self.files) < num_pipelines:
                raise InputError(f"{len(self.files)} shard(s) cannot feed {num_pipelines} workers: write at "
                                 f"least {num_pipelines} shards (dgbn simulate --shards)")
            files = files.shard(num_pipelines, pipeline)  # each worker reads its own files
        files = files.shuffle(len(self.files), seed=self.seed, reshuffle_each_iteration=True)
        records = files.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(self.files)),
                                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        spec = {"features": tf.io.FixedLenFeature([], tf.string), "noised": tf.io.FixedLenFeature([], tf.string)}

        def parse(serialized):
            ex = tf.io.parse_example(serialized, spec)
            features = tf.reshape(tf.io.decode_raw(ex["features"], tf.float32), [-1, rings.NUM_FEATURES])
            noised = tf.reshape(tf.io.decode_raw(ex["noised"], tf.uint16), [-1, size, size])
            return _to_float(features, noised)

        # Repeat after the shuffle: every epoch passes over each ring exactly once.
        return (records.shuffle(self.shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True).repeat()
                .batch(batch_size, drop_remainder=True)
                .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE))


def heldout_splits(source_or_path):
    """The held-out (val, test) arrays of a shard dataset (test has ``expected``)."""
    from tfp_dgbn.dataset.ring_files import load_rings

    path = source_or_path.heldout if isinstance(source_or_path, ShardSource) else source_or_path
    if path is None or not os.path.exists(path):
        raise InputError(f"the shard dataset has no {HELDOUT} with the exact held-out rings")
    return tuple(load_rings(path, split)[0] for split in SPLITS[1:])
