"""Training data pipeline (src/train/data_loader.c and friends) against
open_clip / torchvision / webdataset behaviour, through
build/testtools/data_loader_dump:
  * shard specs expand like braceexpand; tar shards are indexed like
    webdataset groups them (ustar prefix, GNU long names, pax paths);
    empty and truncated shards fail clearly;
  * data_crop_params is torchvision's RandomResizedCrop.get_params run on the
    documented counter RNG (a Python port of both must give the same boxes);
  * the crop + resize + normalise is pixel-exact with
    torchvision.transforms.functional.resized_crop on the PIL image;
  * batches depend only on the seed: CSV == tar, 1 worker == 3 workers,
    world 2 slices concatenated == world 1, seek(k) == k-th batch;
  * bad samples are replaced and counted, or fail in strict mode;
  * `vitamin dataset fashion-mnist` on a tiny fake IDX set.
"""
import gzip
import io
import math
import os
import struct
import subprocess
import tarfile

import numpy as np
import pytest
from PIL import Image

import torch  # noqa: E402
import torchvision.transforms.functional as F  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@pytest.fixture(scope="module")
def dump(build_dir):
    path = build_dir / "testtools" / "data_loader_dump"
    assert path.exists(), f"{path} missing: run make"
    return str(path)


@pytest.fixture(scope="module")
def vocab(root):
    return str(root / "share" / "bpe_simple_vocab_16e6.txt.gz")


def run(args, check=True, timeout=60):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def make_image(mode, w, h, seed):
    rng = np.random.default_rng(seed)
    # smooth gradients + noise, so resampling errors show
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 255 // max(w - 1, 1) + yy * 97 // max(h - 1, 1)) % 256
    noise = rng.integers(0, 64, size=(h, w, 4))
    arr = ((base[..., None] + noise + np.array([0, 60, 120, 180])) % 256).astype(np.uint8)
    if mode == "P":
        img = Image.fromarray(arr[..., 0], "L").convert("P")
        palette = rng.integers(0, 256, size=768).astype(np.uint8).tobytes()
        img.putpalette(palette)
        return img
    if mode == "L":
        return Image.fromarray(arr[..., 0], "L")
    if mode == "LA":
        return Image.fromarray(arr[..., :2], "LA")
    if mode == "RGBA":
        return Image.fromarray(arr, "RGBA")
    return Image.fromarray(arr[..., :3], "RGB")


# (mode, width, height, format); the first ones are RGB/L so CSV and tar agree.
SPECS = [("RGB", 40, 30, "png"), ("L", 23, 57, "png"), ("RGB", 64, 64, "jpg"), ("RGB", 17, 19, "png"),
         ("L", 50, 20, "png"), ("RGB", 32, 32, "png"), ("RGB", 90, 45, "webp"), ("L", 33, 41, "png"),
         ("RGB", 28, 28, "png"), ("RGB", 70, 52, "jpg"), ("L", 31, 29, "png"), ("RGB", 45, 61, "png")]
CAPTIONS = ["a photo of a cat.", "Zwei Hunde — im Schnee", "a " + "very " * 60 + "long caption",
            "x", "  spaces   and  more ", "émoji 🐱 test", "numbers 123 456", "a sneaker.",
            "nan", "a dress", "the coat!", "ankle boot"]


def write_dataset(directory):
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (mode, w, h, fmt) in enumerate(SPECS):
        img = make_image(mode, w, h, i)
        name = f"img{i:03d}.{fmt}"
        img.save(directory / name, quality=90) if fmt != "png" else img.save(directory / name)
        files.append(name)
    return files


def add_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    files = write_dataset(root / "images")
    with open(root / "train.csv", "w") as f:
        f.write("filepath\ttitle\n")
        for name, caption in zip(files, CAPTIONS):
            f.write(f"images/{name}\t{caption}\n")
    # The same samples in two shards, in the same order.
    for shard, part in enumerate((range(0, 7), range(7, 12))):
        with tarfile.open(root / f"shard-{shard:03d}.tar", "w", format=tarfile.GNU_FORMAT) as tar:
            for i in part:
                key = f"{i:06d}"
                add_member(tar, key + "." + files[i].split(".")[1], (root / "images" / files[i]).read_bytes())
                add_member(tar, key + ".txt", CAPTIONS[i].encode())
    return root


def batches(dump, vocab, data, out, *extra, check=True):
    proc = run([dump, "batches", "--data", str(data), "--out", str(out), "--vocab", vocab, *map(str, extra)],
               check=check)
    if not check:
        return proc
    lines = proc.stdout.split("\n")
    skipped = [int(l.split()[-1]) for l in lines if l.startswith("step ")]
    return (np.load(out / "pixels.npy"), np.load(out / "tokens.npy").astype(np.int64),
            np.load(out / "index.npy").astype(np.int64), skipped, proc.stdout)


# --------------------------------------------------------------------------
# Shard specs and tar indexing
# --------------------------------------------------------------------------

def test_shard_expansion(dump):
    out = run([dump, "shards", "d/s-{000..011..5}.tar::e-{a,b{8..10}}.tar::f-{c..a}.tar"]).stdout.split()
    assert out == ["d/s-000.tar", "d/s-005.tar", "d/s-010.tar", "e-a.tar", "e-b8.tar", "e-b9.tar", "e-b10.tar",
                   "f-c.tar", "f-b.tar", "f-a.tar"]
    assert run([dump, "shards", "x-{1}.tar"]).stdout.split() == ["x-{1}.tar"]
    proc = run([dump, "shards", "x-{000..009.tar"], check=False)
    assert proc.returncode == 1 and "unbalanced" in proc.stderr


def test_tar_grouping_and_name_formats(dump, tmp_path):
    long_dir = "d" * 120 + "/sub"
    members = [
        ("a/0001.jpg", b"J1"), ("a/0001.txt", b"cap1"), ("a/0001.json", b"{}"),   # kept, jpg
        ("a/0002.txt", b"cap2"),                                                   # no image: dropped
        ("a/0003.PNG", b"P3"), ("a/0003.webp", b"W3"), ("a/0003.txt", b"c3"),      # png before webp
        ("__meta__", b"m"), ("noext", b"x"),                                       # ignored
        (long_dir + "/0004.jpeg", b"J4"), (long_dir + "/0004.txt", b"c4"),         # long names
        ("a/0006.seg.jpg", b"J7"), ("a/0006.txt", b"c7"),                         # suffix "seg.jpg": no image
        ("b/0005.jpg", b"J5"), ("b/0005.txt", b"c5"), ("b/0005.jpg", b"J6"), ("b/0005.txt", b"c6"),  # repeat: 2 samples
    ]
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        path = tmp_path / f"t{fmt}.tar"
        with tarfile.open(path, "w", format=fmt) as tar:
            tar.addfile(tarfile.TarInfo("a/"))  # a directory entry (type 0, name ends in /)
            dir_info = tarfile.TarInfo("dir")
            dir_info.type = tarfile.DIRTYPE
            tar.addfile(dir_info)
            for name, data in members:
                if fmt == tarfile.USTAR_FORMAT and len(name) > 100 and len(name.split("/")[-1]) > 100:
                    continue
                add_member(tar, name, data)
        with tarfile.open(path) as tar:
            infos = {}
            for m in tar.getmembers():
                infos.setdefault(m.name, []).append(m)
        out = run([dump, "tar", str(path)]).stdout.strip().split("\n")
        rows = [line.split() for line in out]
        names = [r[0] for r in rows]
        assert names == ["a/0001.jpg", "a/0003.PNG", long_dir + "/0004.jpeg", "b/0005.jpg", "b/0005.jpg"], fmt
        with open(path, "rb") as f:
            blob = f.read()
        for r in rows:
            img = blob[int(r[1]):int(r[1]) + int(r[2])]
            txt = blob[int(r[3]):int(r[3]) + int(r[4])]
            assert img[:1] in (b"J", b"P") and txt[:1] == b"c"
        assert [blob[int(r[1]):int(r[1]) + 2] for r in rows][-2:] == [b"J5", b"J6"]


def test_empty_truncated_and_non_tar_shards(dump, tmp_path):
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as tar:
        add_member(tar, "0.txt", b"caption without image")
    proc = run([dump, "tar", str(empty)], check=False)
    assert proc.returncode == 1 and "holds no samples" in proc.stderr and str(empty) in proc.stderr

    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        add_member(tar, "0.jpg", b"x" * 3000)
        add_member(tar, "0.txt", b"cap")
    blob = good.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(blob[:2000])
    proc = run([dump, "tar", str(cut)], check=False)
    assert proc.returncode == 1 and "truncated" in proc.stderr and "0.jpg" in proc.stderr

    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file" * 40)
    proc = run([dump, "tar", str(junk)], check=False)
    assert proc.returncode == 1 and "not a tar file" in proc.stderr

    proc = run([dump, "tar", str(tmp_path / "missing.tar")], check=False)
    assert proc.returncode == 1 and "cannot open shard" in proc.stderr


# --------------------------------------------------------------------------
# RandomResizedCrop.get_params on the counter RNG
# --------------------------------------------------------------------------

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
CROP_DOMAIN = 0x63726F70


def mix64(x):
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


class Stream:
    """Python port of src/train/rng.c (rng_stream_for + draws)."""

    def __init__(self, seed, domain, a, b):
        h = mix64((seed + GAMMA) & M64)
        h = mix64(h ^ ((domain + GAMMA) & M64))
        h = mix64(h ^ ((a + 2 * GAMMA) & M64))
        self.key, self.counter = mix64(h ^ ((b + 3 * GAMMA) & M64)), 0

    def u64(self):
        self.counter += 1
        return mix64((self.key + self.counter * GAMMA) & M64)

    def uniform_(self, lo, hi):  # torch float32 uniform_: u * (hi - lo) + lo in float32
        u = np.float32(self.u64() >> 40) * np.float32(2.0 ** -24)
        return float(np.float32(np.float32(u * np.float32(np.float32(hi) - np.float32(lo))) + np.float32(lo)))

    def randint(self, n):  # Lemire
        m = self.u64() * n
        if (m & M64) < n:
            t = ((1 << 64) - n) % n
            while (m & M64) < t:
                m = self.u64() * n
        return m >> 64


def reference_get_params(seed, epoch, sample, width, height, smin, smax):
    """torchvision RandomResizedCrop.get_params with its torch draws replaced."""
    s = Stream(seed, CROP_DOMAIN, epoch, sample)
    area = height * width
    ratio = (3.0 / 4.0, 4.0 / 3.0)
    log_ratio = np.log(np.array(ratio, dtype=np.float32))
    for _ in range(10):
        target_area = area * s.uniform_(np.float32(smin), np.float32(smax))
        aspect_ratio = float(np.exp(np.float32(s.uniform_(log_ratio[0], log_ratio[1]))))
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = s.randint(height - h + 1)
            j = s.randint(width - w + 1)
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def test_crop_params_follow_get_params(dump):
    rng = np.random.default_rng(0)
    cases = []
    for k in range(3000):
        w, h = (int(v) for v in rng.integers(1, 600, size=2))
        if k % 7 == 0:
            w = h * 5 + 1  # extreme aspect: fallback path
        smin = float(np.float32(rng.choice([0.08, 0.5, 0.9, 1.0])))
        smax = 1.0
        cases.append((int(rng.integers(0, 2**63)), int(rng.integers(0, 5)), k, w, h, smin, smax))
    text = "".join(f"{s} {e} {i} {w} {h} {a!r} {b!r}\n" for s, e, i, w, h, a, b in cases)
    out = subprocess.run([dump, "crop"], input=text, capture_output=True, text=True, check=True).stdout.split("\n")
    again = subprocess.run([dump, "crop"], input=text, capture_output=True, text=True, check=True).stdout.split("\n")
    assert out == again
    fallbacks = 0
    for case, line in zip(cases, out):
        top, left, ch, cw = map(int, line.split())
        seed, epoch, sample, w, h, smin, smax = case
        assert 0 < cw <= w and 0 < ch <= h and 0 <= top <= h - ch and 0 <= left <= w - cw, (case, line)
        assert (top, left, ch, cw) == reference_get_params(*case), (case, line)
        fallbacks += (top, left) == ((h - ch) // 2, (w - cw) // 2) and (cw == w or ch == h)
    assert fallbacks > 100  # the extreme aspect ratios reached the fallback
    # Different epochs / samples give different crops.
    boxes = {line for line in out[:500]}
    assert len(boxes) > 400


# --------------------------------------------------------------------------
# Pixel exactness of the crop + resize + normalise
# --------------------------------------------------------------------------

def reference_resized_crop(path, box, size, rgb_first):
    img = Image.open(path)
    if rgb_first:
        img = img.convert("RGB")
    top, left, h, w = box
    out = F.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BICUBIC)
    out = out.convert("RGB")
    return F.normalize(F.to_tensor(out), MEAN, STD).numpy()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "LA"])
def test_transform_pixel_exact(dump, tmp_path, mode):
    rng = np.random.default_rng(hash(mode) % 1000)
    for k, (w, h) in enumerate([(50, 37), (13, 21), (64, 64)]):
        path = tmp_path / f"{mode}{k}.png"
        make_image(mode, w, h, k).save(path)
        for size in (16, 32):
            boxes = [(0, 0, h, w), (1, 2, min(size, h - 1), min(size, w - 2))]
            for _ in range(3):
                ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
                boxes.append((int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw))
            if h >= size and w >= size:
                boxes.append((h - size, w - size, size, size))  # no resize: plain crop
            for box in boxes:
                for rgb_first in (0, 1):
                    out = tmp_path / "out.f32"
                    run([dump, "transform", str(path), str(size), *map(str, box), str(rgb_first), str(out)])
                    got = np.fromfile(out, dtype=np.float32).reshape(3, size, size)
                    want = reference_resized_crop(path, box, size, rgb_first)
                    diff = np.abs(got - want).max()
                    assert diff <= 1e-6, (mode, w, h, size, box, rgb_first, diff)


# --------------------------------------------------------------------------
# Loader: order, equivalences, reference pixels and tokens
# --------------------------------------------------------------------------

def test_csv_and_tar_give_the_same_batches(dump, vocab, dataset, tmp_path):
    common = ("--batch", 4, "--steps", 5, "--seed", 7, "--size", 24)
    csv = batches(dump, vocab, dataset / "train.csv", tmp_path / "csv", *common)
    tar = batches(dump, vocab, str(dataset / "shard-{000..001}.tar"), tmp_path / "tar", *common)
    assert "samples 12 steps_per_epoch 3" in csv[4] and "samples 12 steps_per_epoch 3" in tar[4]
    for a, b in zip(csv[:3], tar[:3]):
        np.testing.assert_array_equal(a, b)
    # 5 steps: epoch 0 (3 steps) is a permutation of all samples, epoch 1 a different one
    index = csv[2]
    assert sorted(index[:3].ravel().tolist()) == list(range(12))
    assert index[3:].ravel().tolist() != index[:2].ravel().tolist()


def test_order_independent_of_workers_and_world(dump, vocab, dataset, tmp_path):
    common = ("--batch", 4, "--steps", 4, "--seed", 3, "--size", 16)
    data = dataset / "train.csv"
    one = batches(dump, vocab, data, tmp_path / "w1", *common, "--workers", 1)
    three = batches(dump, vocab, data, tmp_path / "w3", *common, "--workers", 3)
    for a, b in zip(one[:3], three[:3]):
        np.testing.assert_array_equal(a, b)
    r0 = batches(dump, vocab, data, tmp_path / "r0", *common, "--world", 2, "--rank", 0)
    r1 = batches(dump, vocab, data, tmp_path / "r1", *common, "--world", 2, "--rank", 1)
    np.testing.assert_array_equal(np.concatenate([r0[2], r1[2]], axis=1), one[2])
    for part in (0, 1):  # pixels / tokens: rows are [step][slot]
        a = np.concatenate([r0[part].reshape(4, 2, -1), r1[part].reshape(4, 2, -1)], axis=1)
        np.testing.assert_array_equal(a, one[part].reshape(4, 4, -1))
    # another seed, another order
    other = batches(dump, vocab, data, tmp_path / "s9", "--batch", 4, "--steps", 4, "--seed", 9, "--size", 16)
    assert other[2].tolist() != one[2].tolist()


def test_seek_resumes_at_any_step(dump, vocab, dataset, tmp_path):
    common = ("--batch", 4, "--seed", 5, "--size", 16)
    full = batches(dump, vocab, dataset / "train.csv", tmp_path / "full", *common, "--steps", 7)
    resumed = batches(dump, vocab, dataset / "train.csv", tmp_path / "seek", *common, "--steps", 3, "--seek", 4)
    np.testing.assert_array_equal(resumed[2], full[2][4:])
    np.testing.assert_array_equal(resumed[0], full[0][16:])


def test_batch_pixels_and_tokens_match_reference(dump, vocab, dataset, tmp_path):
    import open_clip
    size, seed = 24, 11
    pixels, tokens, index, _, _ = batches(dump, vocab, dataset / "train.csv", tmp_path / "b", "--batch", 4,
                                          "--steps", 4, "--seed", seed, "--size", size, "--scale", 0.3, 1.0)
    files = sorted((dataset / "images").iterdir())
    for row, sample in enumerate(index.ravel()):
        step = row // 4
        epoch = step // 3
        path = files[sample]
        w, h = Image.open(path).size
        line = subprocess.run([dump, "crop"], input=f"{seed} {epoch} {sample} {w} {h} 0.3 1.0\n",
                              capture_output=True, text=True, check=True).stdout
        box = tuple(map(int, line.split()))
        want = reference_resized_crop(path, box, size, 0).ravel()
        assert np.abs(pixels[row] - want).max() <= 1e-6, (row, sample, box)
        np.testing.assert_array_equal(tokens[row], open_clip.tokenize([CAPTIONS[sample]])[0].numpy())


def test_eval_transform_without_augment(dump, vocab, dataset, tmp_path):
    import open_clip  # noqa: F401
    from open_clip.transform import image_transform
    pixels, _, index, _, _ = batches(dump, vocab, dataset / "train.csv", tmp_path / "e", "--batch", 4, "--steps", 1,
                                     "--size", 20, "--eval")
    files = sorted((dataset / "images").iterdir())
    transform = image_transform(20, is_train=False)
    for row, sample in enumerate(index.ravel()):
        want = transform(Image.open(files[sample])).numpy().ravel()
        assert np.abs(pixels[row] - want).max() <= 1e-6


# --------------------------------------------------------------------------
# Bad samples and bad input
# --------------------------------------------------------------------------

def test_bad_samples_replaced_or_strict(dump, vocab, dataset, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with open(tmp_path / "bad.csv", "w") as f:
        f.write("filepath\ttitle\n")
        for i in range(36):
            f.write(f"{dataset}/images/{sorted(os.listdir(dataset / 'images'))[i % 12]}\tgood {i}\n")
        f.write(f"{tmp_path}/broken.png\tbroken\n")
        f.write(f"{tmp_path}/missing.jpg\tmissing\n")
    pixels, _, index, skipped, _ = batches(dump, vocab, tmp_path / "bad.csv", tmp_path / "o", "--batch", 7,
                                           "--steps", 10, "--seed", 1, "--size", 8)
    assert not set(index.ravel().tolist()) & {36, 37}
    assert skipped[-1] >= 3  # the 2 bad rows come once per epoch (38 rows, 5 steps of 7), 2 epochs
    assert skipped == sorted(skipped)
    # batches never hold the same replacement twice
    for row in index:
        assert len(set(row.tolist())) == len(row)
    proc = batches(dump, vocab, tmp_path / "bad.csv", tmp_path / "s", "--batch", 7, "--steps", 10, "--seed", 1,
                   "--size", 8, "--strict", check=False)
    assert proc.returncode == 1
    assert "broken.png" in proc.stderr or "missing.jpg" in proc.stderr, proc.stderr


def test_invalid_utf8_caption_is_a_bad_sample(dump, vocab, dataset, tmp_path):
    png = (dataset / "images" / "img000.png").read_bytes()
    with tarfile.open(tmp_path / "u.tar", "w") as tar:
        for i in range(6):
            add_member(tar, f"{i}.png", png)
            add_member(tar, f"{i}.txt", b"bad \xff caption" if i == 2 else b"fine")
    _, _, index, skipped, _ = batches(dump, vocab, tmp_path / "u.tar", tmp_path / "o", "--batch", 3, "--steps", 2,
                                      "--size", 8)
    assert 2 not in index.ravel().tolist() and skipped[-1] == 1
    proc = batches(dump, vocab, tmp_path / "u.tar", tmp_path / "s", "--batch", 3, "--steps", 2, "--size", 8,
                   "--strict", check=False)
    assert proc.returncode == 1 and "UTF-8" in proc.stderr and "2.png" in proc.stderr


def test_clear_errors_for_wrong_input(dump, vocab, dataset, tmp_path):
    proc = batches(dump, vocab, dataset / "train.csv", tmp_path / "o", "--csv-caption-key", "caption", check=False)
    assert proc.returncode == 1
    assert "caption" in proc.stderr and "filepath, title" in proc.stderr and "--csv-caption-key" in proc.stderr
    with tarfile.open(tmp_path / "e.tar", "w") as tar:
        add_member(tar, "readme.md", b"nothing")
    proc = batches(dump, vocab, tmp_path / "e.tar", tmp_path / "o", check=False)
    assert proc.returncode == 1 and "holds no samples" in proc.stderr
    proc = batches(dump, vocab, dataset / "train.csv", tmp_path / "o", "--batch", 13, check=False)
    assert proc.returncode == 1 and "fewer than one global batch" in proc.stderr
    proc = batches(dump, vocab, dataset / "train.csv", tmp_path / "o", "--batch", 3, "--world", 2, check=False)
    assert proc.returncode == 1 and "multiple" in proc.stderr
    proc = batches(dump, vocab, tmp_path / "x.parquet", tmp_path / "o", check=False)
    assert proc.returncode == 1 and ".csv/.tsv" in proc.stderr


def test_close_mid_epoch_does_not_hang(dump, vocab, dataset, tmp_path):
    proc = batches(dump, vocab, dataset / "train.csv", tmp_path / "o", "--batch", 4, "--steps", 3, "--size", 64,
                   "--workers", 4, "--close-early", check=False)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# vitamin dataset fashion-mnist
# --------------------------------------------------------------------------

def write_idx(path, magic_type, dims, data, gz):
    header = struct.pack(">BBBB", 0, 0, magic_type, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    blob = header + bytes(data)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(blob))
    else:
        path.write_bytes(blob)


def test_dataset_fashion_mnist(vitamin_cli, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    write_idx(src / "train-images-idx3-ubyte", 0x08, (5, 28, 28), train.tobytes(), gz=True)
    write_idx(src / "train-labels-idx1-ubyte", 0x08, (5,), bytes([0, 7, 9, 3, 7]), gz=True)
    write_idx(src / "t10k-images-idx3-ubyte", 0x08, (3, 28, 28), test.tobytes(), gz=False)
    write_idx(src / "t10k-labels-idx1-ubyte", 0x08, (3,), bytes([1, 8, 5]), gz=False)
    out = tmp_path / "fm"
    for _ in range(2):  # idempotent
        proc = run([vitamin_cli, "dataset", "fashion-mnist", "--src", str(src), "--out", str(out)])
    for i in range(5):
        img = Image.open(out / "train" / f"{i:05d}.png")
        assert img.mode == "L" and img.size == (28, 28)
        np.testing.assert_array_equal(np.asarray(img), train[i])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "test" / "00002.png")), test[2])
    lines = (out / "train.csv").read_text().splitlines()
    assert lines[0] == "filepath\ttitle" and len(lines) == 6
    assert lines[1].split("\t")[0] == "train/00000.png" and "t-shirt" in lines[1]
    assert "sneaker" in lines[2] and "ankle boot" in lines[3] and "dress" in lines[4]
    phrasings = {l.split("\t")[1] for l in lines[1:]}
    for name in ("t-shirt", "ankle boot", "sneaker", "dress"):
        phrasings = {p.replace(name, "X").replace("an X", "a X") for p in phrasings}
    assert len(phrasings) > 1, phrasings  # captions vary, not one template
    test_lines = (out / "test.csv").read_text().splitlines()
    assert test_lines == ["filepath\tlabel", "test/00000.png\t1", "test/00001.png\t8", "test/00002.png\t5"]
    names = (out / "classnames.txt").read_text().splitlines()
    assert names[0] == "t-shirt" and names[9] == "ankle boot" and len(names) == 10
    templates = (out / "templates.txt").read_text().splitlines()
    assert templates and all("{}" in t for t in templates)

    (src / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09")  # count mismatch
    proc = run([vitamin_cli, "dataset", "fashion-mnist", "--src", str(src), "--out", str(tmp_path / "x")],
               check=False)
    assert proc.returncode == 1 and "t10k-labels" in proc.stderr
