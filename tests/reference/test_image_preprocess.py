"""Pixel parity of the C image pipeline (decode + open_clip eval transform) with
PIL.Image.open + open_clip.transform.image_transform(S, is_train=False).

Inputs are generated here (scikit-image's sample photos re-encoded with PIL,
PNGs written byte by byte for the modes PIL cannot write, crafted broken files)
or taken from the fuzz corpus, run through build/testtools/image_dump and
compared with the reference:
  * the decoded image's Pillow mode and size,
  * the uint8 S x S RGB crop ToTensor sees: must be identical,
  * the normalised float32 tensor: max |diff| <= 1e-6 (expected 0),
  * for broken or odd files: we refuse exactly the files Pillow refuses.

The binary is <build>/testtools/image_dump (built by `make`; <build> is the
build_dir fixture, i.e. $VITAMIN_BUILD or build/), or $VITAMIN_IMAGE_DUMP.
`python tests/reference/test_image_preprocess.py` prints the max diff of every case.
"""
import ctypes
import io
import os
import pathlib
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import PIL  # noqa: E402
from PIL import Image  # noqa: E402

import open_clip.transform as open_clip_transform  # noqa: E402
import skimage.data as skimage_data  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIZES = (224, 256, 336, 384)
PHOTOS = pathlib.Path(skimage_data.__file__).parent
FLOAT_TOLERANCE = 1e-6


BUILD_DIR = ROOT / os.environ.get("VITAMIN_BUILD", "build")  # replaced by the build_dir fixture


@pytest.fixture(scope="session", autouse=True)
def _use_build_dir(build_dir):
    global BUILD_DIR
    BUILD_DIR = build_dir


def image_dump_binary():
    path = os.environ.get("VITAMIN_IMAGE_DUMP") or str(BUILD_DIR / "testtools" / "image_dump")
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: run `make` (or set VITAMIN_IMAGE_DUMP)")
    return path


# --------------------------------------------------------------------------
# A PNG writer for what PIL cannot write (16-bit colour, 2/4-bit gray, short
# palettes, Adam7 interlacing, arbitrary tRNS)
# --------------------------------------------------------------------------

ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _pack_rows(samples, bit_depth):
    """samples: (h, w, c) ints -> filtered scanlines (filter type 0)."""
    h, w, c = samples.shape
    out = bytearray()
    for y in range(h):
        row = samples[y].reshape(-1)
        out.append(0)
        if bit_depth == 16:
            out += row.astype(">u2").tobytes()
        elif bit_depth == 8:
            out += row.astype(np.uint8).tobytes()
        else:
            per_byte = 8 // bit_depth
            padded = np.zeros(-(-len(row) // per_byte) * per_byte, dtype=np.int64)
            padded[: len(row)] = row
            for i in range(0, len(padded), per_byte):
                byte = 0
                for v in padded[i : i + per_byte]:
                    byte = (byte << bit_depth) | int(v)
                out.append(byte)
    return bytes(out)


def write_png(path, samples, bit_depth, color_type, palette=None, trns=None, interlace=False):
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, _ = samples.shape
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += _pack_rows(sub, bit_depth)
    else:
        raw = _pack_rows(samples, bit_depth)
    png = b"\x89PNG\r\n\x1a\n"
    png += _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace)))
    if palette is not None:
        png += _chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        png += _chunk(b"tRNS", trns)
    png += _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    pathlib.Path(path).write_bytes(png)


# --------------------------------------------------------------------------
# Test inputs
# --------------------------------------------------------------------------

def rng(seed):
    return np.random.default_rng(seed)


def photo(name):
    return Image.open(PHOTOS / name)


def smooth_noise(seed, h, w, c):
    """Random but image-like content (upsampled noise), so that JPEG/WebP and
    the bicubic filter see both edges and gradients."""
    base = rng(seed).integers(0, 256, (max(h // 8, 2), max(w // 8, 2), c)).astype(np.uint8)
    im = Image.fromarray(base[..., 0] if c == 1 else base)
    arr = np.asarray(im.resize((w, h), Image.BILINEAR))
    arr = arr.reshape(h, w, c).astype(np.int64) + rng(seed + 1).integers(-20, 21, (h, w, c))
    return np.clip(arr, 0, 255).astype(np.uint8)


CASES = {}  # name -> (builder(path), sizes)


def case(name, sizes=SIZES, suffix=".png"):
    def register(builder):
        CASES[name] = (builder, tuple(sizes), suffix)
        return builder
    return register


# Sample photos, as shipped (PNG) and re-encoded.
for _name in ("astronaut.png", "chelsea.png", "coffee.png", "camera.png", "horse.png", "logo.png", "page.png"):
    case("photo_" + _name.split(".")[0])(lambda p, n=_name: pathlib.Path(p).write_bytes((PHOTOS / n).read_bytes()))
for _name in ("retina.jpg", "rocket.jpg", "hubble_deep_field.jpg"):
    case("photo_" + _name.split(".")[0], suffix=".jpg")(
        lambda p, n=_name: pathlib.Path(p).write_bytes((PHOTOS / n).read_bytes()))

for _quality in (50, 95):
    for _sub, _sub_name in ((0, "444"), (1, "422"), (2, "420")):
        for _progressive in (False, True):
            _n = f"jpeg_chelsea_q{_quality}_{_sub_name}_{'prog' if _progressive else 'base'}"
            case(_n, suffix=".jpg")(lambda p, q=_quality, s=_sub, pr=_progressive: photo("chelsea.png").save(
                p, "JPEG", quality=q, subsampling=s, progressive=pr))
# Odd sizes exercise the chroma upsampling at the right and bottom edges.
case("jpeg_odd_420", suffix=".jpg")(lambda p: photo("astronaut.png").crop((3, 5, 336, 222)).save(
    p, "JPEG", quality=85, subsampling=2))
case("jpeg_odd_422_prog", suffix=".jpg")(lambda p: photo("coffee.png").crop((1, 0, 258, 387)).save(
    p, "JPEG", quality=75, subsampling=1, progressive=True))
case("jpeg_gray", suffix=".jpg")(lambda p: photo("camera.png").save(p, "JPEG", quality=90))
case("jpeg_gray_prog", suffix=".jpg")(lambda p: photo("camera.png").crop((0, 0, 301, 257)).save(
    p, "JPEG", quality=70, progressive=True))
case("jpeg_keep_rgb", suffix=".jpg")(lambda p: photo("chelsea.png").save(p, "JPEG", keep_rgb=True, quality=80))
case("jpeg_cmyk", suffix=".jpg")(lambda p: photo("astronaut.png").convert("CMYK").save(p, "JPEG", quality=90))
case("jpeg_cmyk_prog", suffix=".jpg")(lambda p: photo("chelsea.png").convert("CMYK").save(
    p, "JPEG", quality=80, progressive=True))
# Short side == S: torchvision skips the resize, the crop shows the raw decode.
case("jpeg_raw_decode_420", sizes=(256,), suffix=".jpg")(lambda p: photo("coffee.png").crop((0, 0, 256, 343)).save(
    p, "JPEG", quality=92, subsampling=2))
case("jpeg_raw_decode_prog", sizes=(224,), suffix=".jpg")(lambda p: photo("chelsea.png").crop((0, 0, 331, 224)).save(
    p, "JPEG", quality=60, subsampling=1, progressive=True))


def _jpeg_without_eoi(p):
    buf = io.BytesIO()
    photo("chelsea.png").save(buf, "JPEG", quality=80)
    data = buf.getvalue()
    assert data.endswith(b"\xff\xd9")
    pathlib.Path(p).write_bytes(data[:-2])


case("webp_lossy", suffix=".webp")(lambda p: photo("chelsea.png").save(p, "WEBP", quality=80))
case("webp_lossless", suffix=".webp")(lambda p: photo("coffee.png").save(p, "WEBP", lossless=True))
case("webp_lossy_alpha", suffix=".webp")(lambda p: photo("horse.png").save(p, "WEBP", quality=70))
case("webp_lossy_alpha_noise", suffix=".webp")(lambda p: Image.fromarray(smooth_noise(36, 211, 157, 4)).save(
    p, "WEBP", quality=60))
case("webp_lossless_alpha", suffix=".webp")(lambda p: photo("horse.png").save(p, "WEBP", lossless=True))
case("webp_odd_lossy", suffix=".webp")(lambda p: photo("astronaut.png").crop((0, 0, 301, 233)).save(
    p, "WEBP", quality=50))

# Geometry edge cases.
case("rgb_1x1")(lambda p: Image.new("RGB", (1, 1), (200, 30, 90)).save(p))
case("rgb_10000x3", sizes=(224,))(lambda p: Image.fromarray(rng(1).integers(0, 256, (3, 10000, 3), dtype=np.uint8)).save(p))
case("gray_3x10000", sizes=(224,))(lambda p: Image.fromarray(rng(2).integers(0, 256, (10000, 3), dtype=np.uint8)).save(p))
case("rgb_1000x3")(lambda p: Image.fromarray(rng(3).integers(0, 256, (3, 1000, 3), dtype=np.uint8)).save(p))
case("rgba_3x1000")(lambda p: Image.fromarray(rng(4).integers(0, 256, (1000, 3, 4), dtype=np.uint8)).save(p))
case("rgb_small_50x37")(lambda p: Image.fromarray(smooth_noise(5, 37, 50, 3)).save(p))
for _s in SIZES:
    case(f"rgb_exact_{_s}", sizes=(_s,))(lambda p, s=_s: Image.fromarray(smooth_noise(6, s, s, 3)).save(p))
    # short side == S, long side not: crop only, half-to-even offsets (odd differences)
    case(f"rgb_short_side_{_s}", sizes=(_s,))(lambda p, s=_s: Image.fromarray(smooth_noise(7, s + 3, s, 3)).save(p))
    case(f"rgba_short_side_{_s}", sizes=(_s,))(lambda p, s=_s: Image.fromarray(
        rng(8).integers(0, 256, (s, s + 5, 4), dtype=np.uint8)).save(p))

# Modes.
case("gray_L")(lambda p: Image.fromarray(smooth_noise(10, 200, 300, 1)[..., 0]).save(p))
case("gray_alpha_LA")(lambda p: Image.fromarray(rng(11).integers(0, 256, (150, 170, 2), dtype=np.uint8), "LA").save(p))
case("rgba_random_alpha")(lambda p: Image.fromarray(rng(12).integers(0, 256, (180, 230, 4), dtype=np.uint8)).save(p))
case("palette_adaptive")(lambda p: photo("astronaut.png").quantize(256).save(p))
case("palette_transparency_index")(lambda p: photo("chelsea.png").quantize(64).save(p, transparency=3))
case("palette_4bit", sizes=(224, 336))(lambda p: write_png(
    p, rng(13).integers(0, 16, (90, 70)), 4, 3, palette=rng(14).integers(0, 256, (16, 3))))
case("palette_1bit")(lambda p: write_png(p, rng(15).integers(0, 2, (33, 47)), 1, 3, palette=[[255, 0, 0], [0, 0, 255]]))
case("palette_trns_bytes")(lambda p: write_png(
    p, rng(16).integers(0, 8, (60, 80)), 8, 3, palette=rng(17).integers(0, 256, (8, 3)), trns=bytes([0, 128, 255, 7])))
# Indices past the end of PLTE: black in Pillow 13.
case("palette_short")(lambda p: write_png(p, rng(18).integers(0, 4, (40, 40)), 2, 3, palette=[[10, 200, 30], [250, 5, 5]]))
case("gray_1bit")(lambda p: Image.fromarray(rng(19).integers(0, 2, (70, 90), dtype=np.uint8) * 255).convert("1").save(p))
case("gray_2bit")(lambda p: write_png(p, rng(20).integers(0, 4, (51, 77)), 2, 0))
case("gray_4bit")(lambda p: write_png(p, rng(21).integers(0, 16, (64, 33)), 4, 0))
case("gray_16bit_full")(lambda p: write_png(p, rng(22).integers(0, 65536, (120, 100)), 16, 0))
# Mostly below 256, where I;16 -> RGB (a clip, not a scale) is informative.
case("gray_16bit_low")(lambda p: write_png(p, rng(23).integers(0, 400, (120, 100)), 16, 0))
case("gray_16bit_pil")(lambda p: Image.fromarray(rng(24).integers(0, 300, (80, 90)).astype(np.uint16)).save(p))
case("rgb_16bit")(lambda p: write_png(p, rng(25).integers(0, 65536, (90, 110, 3)), 16, 2))
case("rgba_16bit")(lambda p: write_png(p, rng(26).integers(0, 65536, (90, 110, 4)), 16, 6))
case("gray_alpha_16bit")(lambda p: write_png(p, rng(27).integers(0, 65536, (70, 60, 2)), 16, 4))
case("gray_alpha_8bit_raw")(lambda p: write_png(p, rng(28).integers(0, 256, (70, 60, 2)), 8, 4))
case("rgb_trns")(lambda p: write_png(p, rng(29).integers(0, 4, (50, 60, 3)) * 80, 8, 2, trns=struct.pack(">HHH", 80, 0, 160)))
case("gray_trns")(lambda p: write_png(p, rng(30).integers(0, 256, (50, 60)), 8, 0, trns=struct.pack(">H", 17)))
case("interlaced_rgb")(lambda p: write_png(p, smooth_noise(31, 101, 77, 3), 8, 2, interlace=True))
case("interlaced_gray_1bit")(lambda p: write_png(p, rng(32).integers(0, 2, (29, 43)), 1, 0, interlace=True))
case("interlaced_palette_4bit")(lambda p: write_png(
    p, rng(33).integers(0, 16, (37, 41)), 4, 3, palette=rng(34).integers(0, 256, (16, 3)), interlace=True))
case("interlaced_rgba_16bit")(lambda p: write_png(p, rng(35).integers(0, 65536, (23, 19, 4)), 16, 6, interlace=True))

# Random sizes and modes.
_RANDOM_MODES = ("L", "LA", "RGB", "RGBA", "P", "1", "I;16", "CMYK")
for _i in range(16):
    _r = rng(100 + _i)
    _w, _h = int(_r.integers(1, 700)), int(_r.integers(1, 700))
    _mode = _RANDOM_MODES[_i % len(_RANDOM_MODES)]

    def _build(p, w=_w, h=_h, mode=_mode, seed=200 + _i):
        if mode == "I;16":
            write_png(p, rng(seed).integers(0, 600, (h, w)), 16, 0)
        elif mode == "CMYK":
            Image.fromarray(smooth_noise(seed, h, w, 3)).convert("CMYK").save(p, "JPEG", quality=85)
        elif mode == "P":
            Image.fromarray(smooth_noise(seed, h, w, 3)).quantize(200).save(p)
        elif mode == "1":
            Image.fromarray(smooth_noise(seed, h, w, 1)[..., 0]).convert("1").save(p)
        else:
            pixels = smooth_noise(seed, h, w, len(mode))
            Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode).save(p)

    case(f"random_{_mode.replace(';', '')}_{_w}x{_h}", suffix=".jpg" if _mode == "CMYK" else ".png")(_build)


# Tall and wide images: Pillow 13 runs the vertical pass first when the height
# shrinks by more than twice as many pixels as the width (PR #9549), and the
# passes round in between. For a tall image resized to short side S that is an
# aspect ratio just above 2:1 (300x600: horizontal first, 300x601: vertical
# first), for every S below the width; wide images always go horizontal first.
# High-contrast noise, so that the two pass orders give different bytes.
ASPECT_SHAPES = ((300, 1000), (100, 700), (1000, 300), (225, 460), (500, 1001), (500, 999), (300, 599),
                 (300, 600), (300, 601), (64, 1000), (460, 225), (1001, 500), (257, 515))
ASPECT_MODES = ("RGB", "L", "RGBA", "LA", "P", "I;16")
for _i, (_w, _h) in enumerate(ASPECT_SHAPES):
    for _mode in ASPECT_MODES:
        def _build(p, w=_w, h=_h, mode=_mode, seed=300 + _i):
            r = rng(seed)
            if mode == "I;16":  # mostly below 256, where I;16 -> RGB (a clip) keeps the differences
                write_png(p, r.integers(0, 400, (h, w)), 16, 0)
            elif mode == "P":
                Image.fromarray(r.integers(0, 256, (h, w, 3), dtype=np.uint8)).quantize(200).save(p)
            else:
                pixels = r.integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
                Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode).save(p)

        case(f"aspect_{_mode.replace(';', '')}_{_w}x{_h}", sizes=(224, 256, 32))(_build)


# --------------------------------------------------------------------------
# Running both sides
# --------------------------------------------------------------------------

_built = {}


def case_path(tmp_dir, name):
    if name not in _built:
        builder, _, suffix = CASES[name]
        path = pathlib.Path(tmp_dir) / (name + suffix)
        builder(path)
        _built[name] = path
    return _built[name]


def reference(path, size):
    transform = open_clip_transform.image_transform(size, is_train=False)
    steps = transform.transforms
    assert type(steps[-2]).__name__ == "MaybeToTensor" and type(steps[-1]).__name__ == "Normalize"
    with Image.open(path) as im:
        mode, dims = im.mode, im.size
        pil = im
        for step in steps[:-2]:  # Resize, CenterCrop, MaybeConvertMode
            pil = step(pil)
        crop = np.asarray(pil)
        tensor = transform(im).numpy()
    return mode, dims, crop, tensor


def run_dump(path, size, out_prefix):
    proc = subprocess.run([image_dump_binary(), "--size", str(size), str(path), str(out_prefix)],
                          capture_output=True, text=True, timeout=300)
    return proc


def compare(path, size, out_prefix):
    proc = run_dump(path, size, out_prefix)
    assert proc.returncode == 0, f"image_dump failed: {proc.stderr}"
    mode, width, height = proc.stdout.split()
    crop = np.fromfile(f"{out_prefix}.u8", dtype=np.uint8).reshape(size, size, 3)
    tensor = np.fromfile(f"{out_prefix}.f32", dtype=np.float32).reshape(3, size, size)
    ref_mode, ref_dims, ref_crop, ref_tensor = reference(path, size)
    assert (mode, int(width), int(height)) == (ref_mode, *ref_dims)
    u8_diff = int(np.abs(crop.astype(np.int64) - ref_crop.astype(np.int64)).max())
    f32_diff = float(np.abs(tensor.astype(np.float64) - ref_tensor.astype(np.float64)).max())
    return mode, u8_diff, f32_diff, int((crop != ref_crop).any(axis=2).sum())


PARAMS = [(name, size) for name, (_, sizes, _) in CASES.items() for size in sizes]


@pytest.fixture(scope="module")
def inputs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("image_inputs")


@pytest.mark.filterwarnings("ignore:Palette images with Transparency")
@pytest.mark.parametrize("name,size", PARAMS, ids=[f"{n}-{s}" for n, s in PARAMS])
def test_matches_open_clip(name, size, inputs_dir, tmp_path):
    path = case_path(inputs_dir, name)
    mode, u8_diff, f32_diff, bad_pixels = compare(path, size, tmp_path / "out")
    assert u8_diff == 0, f"{name} ({mode}) S={size}: uint8 crop differs, max {u8_diff}, {bad_pixels} pixels"
    assert f32_diff <= FLOAT_TOLERANCE, f"{name} S={size}: float max diff {f32_diff}"


# --------------------------------------------------------------------------
# Broken inputs: a clear message and exit status 1, never a crash. Pillow must
# refuse the same files (so we are not rejecting something it accepts).
# --------------------------------------------------------------------------

def _truncated(source_builder, keep):
    def build(p):
        tmp = pathlib.Path(str(p) + ".full")
        source_builder(tmp)
        data = tmp.read_bytes()
        pathlib.Path(p).write_bytes(data[: int(len(data) * keep)])
    return build


def _png_bomb(p):
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    pathlib.Path(p).write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) +
                                _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b""))


ERROR_CASES = {
    "truncated_jpeg": (_truncated(lambda p: photo("chelsea.png").save(p, "JPEG"), 0.5), ".jpg", "JPEG", True),
    "truncated_jpeg_prog": (_truncated(lambda p: photo("chelsea.png").save(p, "JPEG", progressive=True), 0.7),
                            ".jpg", "JPEG", True),
    # Even with every entropy-coded byte present, Pillow calls this truncated.
    "jpeg_missing_eoi": (_jpeg_without_eoi, ".jpg", "JPEG", True),
    "jpeg_header_only": (_truncated(lambda p: photo("chelsea.png").save(p, "JPEG"), 0.02), ".jpg", "JPEG", True),
    "truncated_png": (_truncated(lambda p: photo("chelsea.png").save(p, "PNG"), 0.5), ".png", "PNG", True),
    "png_signature_only": (lambda p: pathlib.Path(p).write_bytes(b"\x89PNG\r\n\x1a\n"), ".png", "PNG", True),
    "truncated_webp": (_truncated(lambda p: photo("chelsea.png").save(p, "WEBP"), 0.5), ".webp", "WebP", True),
    "truncated_webp_lossless": (_truncated(lambda p: photo("chelsea.png").save(p, "WEBP", lossless=True), 0.6),
                                ".webp", "WebP", True),
    "random_bytes": (lambda p: pathlib.Path(p).write_bytes(rng(40).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
                     ".jpg", "not a JPEG, PNG or WebP image", True),
    "empty_file": (lambda p: pathlib.Path(p).write_bytes(b""), ".png", "empty", True),
    "png_100000x100000": (_png_bomb, ".png", "100000x100000", True),
    "gif": (lambda p: pathlib.Path(p).write_bytes((PHOTOS / "no_time_for_that_tiny.gif").read_bytes()),
            ".xyz", "not a JPEG, PNG or WebP image", False),
}


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_broken_input_fails_cleanly(name, inputs_dir, tmp_path):
    builder, suffix, expected, pillow_refuses = ERROR_CASES[name]
    path = inputs_dir / (name + suffix)
    builder(path)
    proc = run_dump(path, 224, tmp_path / "out")
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stdout} {proc.stderr}"
    assert expected in proc.stderr and str(path) in proc.stderr, proc.stderr
    if pillow_refuses:
        with pytest.raises(Exception):
            with Image.open(path) as im:
                im.load()


# --------------------------------------------------------------------------
# The fuzz corpus (tests/fuzz/corpus/image: hand-made seeds, including JPEG
# variants PIL cannot write -- YCCK, arithmetic coding, restart markers -- and
# the fuzzer's mutants, most of them broken): on every file we must accept
# exactly what Pillow accepts and produce the same pixels.
# --------------------------------------------------------------------------

CORPUS = sorted((ROOT / "tests" / "fuzz" / "corpus" / "image").glob("*"))


def assert_agrees_with_pillow(path, tmp_path, size=32):
    """Same accept/refuse decision as Image.open(path).load(), same pixels."""
    proc = run_dump(path, size, tmp_path / "out")
    assert proc.returncode in (0, 1), f"exit {proc.returncode}: {proc.stderr}"
    try:
        ref_mode, ref_dims, ref_crop, _ = reference(path, size)
    except Exception as e:  # noqa: BLE001 - any Pillow failure means "refused"
        if proc.returncode == 0 and path.read_bytes()[:4] == b"RIFF" and (
                "decoder object" in str(e) or "next frame" in str(e)):
            pytest.xfail("known: Pillow's WebPAnimDecoder (libwebpdemux) checks the RIFF chunk "
                         "layout more strictly than WebPDecode (see decode_webp)")
        assert proc.returncode == 1, f"Pillow refuses ({type(e).__name__}: {e}), we decoded it"
        return
    assert proc.returncode == 0, f"Pillow decodes it, we fail: {proc.stderr}"
    mode, width, height = proc.stdout.split()
    assert (mode, int(width), int(height)) == (ref_mode, *ref_dims)
    crop = np.fromfile(tmp_path / "out.u8", dtype=np.uint8).reshape(size, size, 3)
    assert np.array_equal(crop, ref_crop)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_agrees_with_pillow(path, tmp_path):
    assert_agrees_with_pillow(path, tmp_path)


# --------------------------------------------------------------------------
# PNG chunks Pillow inspects around the image data (and may reject) although
# no pixel depends on them
# --------------------------------------------------------------------------

def _png_with_chunks(before=(), after=(), after_iend=b"", cut=0):
    base = io.BytesIO()
    Image.fromarray(smooth_noise(50, 20, 30, 3)).save(base, "PNG")
    data = base.getvalue()
    idat = data.index(b"IDAT") - 4
    iend = data.index(b"IEND") - 4
    extra_before = b"".join(_chunk(t, d) for t, d in before)
    extra_after = b"".join(_chunk(t, d) for t, d in after)
    out = data[:idat] + extra_before + data[idat:iend] + extra_after + data[iend:] + after_iend
    return out[: len(out) - cut] if cut else out


_BOMB = zlib.compress(b"\0" * (2 * 1024 * 1024))
PNG_CHUNK_CASES = {
    "short_gAMA_before": _png_with_chunks(before=[(b"gAMA", b"\0\0")]),
    "short_gAMA_after": _png_with_chunks(after=[(b"gAMA", b"\0\0")]),
    "good_gAMA_sRGB_pHYs": _png_with_chunks(before=[(b"gAMA", b"\0\0\xb1\x8f"), (b"sRGB", b"\0"),
                                                    (b"pHYs", bytes(9))]),
    "empty_sRGB_after": _png_with_chunks(after=[(b"sRGB", b"")]),
    "short_cHRM_before": _png_with_chunks(before=[(b"cHRM", bytes(20))]),
    "short_tRNS_rgb": _png_with_chunks(before=[(b"tRNS", b"\0\1")]),
    "zTXt_bad_method": _png_with_chunks(after=[(b"zTXt", b"key\0\x05" + zlib.compress(b"x"))]),
    "zTXt_bomb_after": _png_with_chunks(after=[(b"zTXt", b"key\0\0" + _BOMB)]),
    "zTXt_bomb_before": _png_with_chunks(before=[(b"zTXt", b"key\0\0" + _BOMB)]),
    "zTXt_corrupt": _png_with_chunks(before=[(b"zTXt", b"key\0\0garbage")]),
    "zTXt_no_nul": _png_with_chunks(before=[(b"zTXt", b"keyonly")]),
    "iCCP_empty": _png_with_chunks(before=[(b"iCCP", b"")]),
    "iCCP_bad_method": _png_with_chunks(before=[(b"iCCP", b"name\0\x01abc")]),
    "iTXt_bomb": _png_with_chunks(after=[(b"iTXt", b"key\0\x01\0en\0k\0" + _BOMB)]),
    "iTXt_malformed": _png_with_chunks(after=[(b"iTXt", b"key\0\x01")]),
    "tEXt_cut_after_image": _png_with_chunks(after=[(b"tEXt", b"comment\0" + b"x" * 100)], cut=60),
    "private_chunk_cut_after_image": _png_with_chunks(after=[(b"prIv", bytes(200))], cut=150),
    "second_IHDR_after_image": _png_with_chunks(after=[(b"IHDR", bytes(11) + b"\1\0")]),
    "junk_after_IEND": _png_with_chunks(after_iend=b"\xff" * 40),
}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(PNG_CHUNK_CASES))
def test_png_chunk_rules_agree_with_pillow(name, inputs_dir, tmp_path):
    path = inputs_dir / f"chunks_{name}.png"
    path.write_bytes(PNG_CHUNK_CASES[name])
    assert_agrees_with_pillow(path, tmp_path)


def test_missing_file_fails_cleanly(tmp_path):
    proc = run_dump(tmp_path / "does_not_exist.png", 224, tmp_path / "out")
    assert proc.returncode == 1 and "does_not_exist.png" in proc.stderr


# --------------------------------------------------------------------------
# pillow_resize_bicubic directly (libvitamin.so): any window of any resize,
# both pass orders, every sample type, against Image.resize(...).crop(window)
# --------------------------------------------------------------------------

class _ResampleImage(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("channels", ctypes.c_int),
                ("type", ctypes.c_int), ("pixels", ctypes.c_void_p)]


class _ResampleWindow(ctypes.Structure):
    _fields_ = [("left", ctypes.c_int), ("top", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int)]


class _VtError(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("message", ctypes.c_char * 1024)]


# Pillow mode -> (resample_sample_type, channels, numpy dtype)
_RESAMPLE_MODES = {"L": (0, 1, np.uint8), "RGB": (0, 3, np.uint8), "CMYK": (0, 4, np.uint8),
                   "I;16": (1, 1, np.uint16), "I": (2, 1, np.int32)}


@pytest.fixture(scope="module")
def libvitamin():
    path = BUILD_DIR / "libvitamin.so"
    if not path.exists():
        pytest.fail(f"{path} missing: run `make`")
    lib = ctypes.CDLL(str(path))
    lib.pillow_resize_bicubic.argtypes = [ctypes.POINTER(_ResampleImage), ctypes.c_int, ctypes.c_int,
                                          _ResampleWindow, ctypes.POINTER(_ResampleImage),
                                          ctypes.POINTER(_VtError)]
    lib.pillow_resize_bicubic.restype = ctypes.c_int
    lib.pillow_resize_vertical_first.argtypes = [ctypes.c_int] * 4
    lib.pillow_resize_vertical_first.restype = ctypes.c_int
    return lib


def _pillow_image(mode, pixels):
    h, w = pixels.shape[:2]
    if mode in ("I;16", "I"):
        return Image.frombytes(mode, (w, h), pixels.astype("<u2" if mode == "I;16" else "<i4").tobytes())
    return Image.frombytes(mode, (w, h), np.ascontiguousarray(pixels).tobytes())


def _random_pixels(r, mode, w, h):
    _, channels, dtype = _RESAMPLE_MODES[mode]
    high = {np.uint8: 256, np.uint16: 65536, np.int32: 1 << 20}[dtype]
    pixels = r.integers(0, 2, (h, w, channels)) * (high - 1)  # extremes: overshoot and clipping
    pixels = np.where(r.random((h, w, channels)) < 0.5, r.integers(0, high, (h, w, channels)), pixels)
    if mode == "I":
        pixels -= high // 2
    return pixels.astype(dtype)


def _resize_window(lib, mode, pixels, out_w, out_h, window):
    sample_type, channels, dtype = _RESAMPLE_MODES[mode]
    h, w = pixels.shape[:2]
    src = np.ascontiguousarray(pixels)
    dst = np.zeros((window[3], window[2], channels), dtype=dtype)
    image_in = _ResampleImage(w, h, channels, sample_type, src.ctypes.data)
    image_out = _ResampleImage(0, 0, 0, 0, dst.ctypes.data)
    err = _VtError()
    status = lib.pillow_resize_bicubic(ctypes.byref(image_in), out_w, out_h, _ResampleWindow(*window),
                                       ctypes.byref(image_out), ctypes.byref(err))
    assert status == 0, err.message.decode()
    return dst


def _vertical_first(w, h, out_w, out_h):
    return out_h < h and h - out_h > 2 * (w - out_w)


def test_vertical_first_rule(libvitamin):
    r = rng(500)
    for _ in range(2000):
        w, h, out_w, out_h = (int(v) for v in r.integers(1, 400, 4))
        assert libvitamin.pillow_resize_vertical_first(w, h, out_w, out_h) == _vertical_first(w, h, out_w, out_h)
    assert not libvitamin.pillow_resize_vertical_first(300, 600, 224, 448)  # equal: horizontal first
    assert libvitamin.pillow_resize_vertical_first(300, 601, 224, 448)
    assert libvitamin.pillow_resize_vertical_first(2**30, 2**31 - 1, -(2**30), 1) == 0  # no int overflow


def _window_cases():
    r = rng(501)
    cases = []
    for i in range(60):
        mode = tuple(_RESAMPLE_MODES)[i % len(_RESAMPLE_MODES)]
        w, h = int(r.integers(1, 120)), int(r.integers(1, 360))
        if i % 3 == 0:  # vertical first: the height shrinks by more than twice the width
            out_w = int(r.integers(max(1, w - 30), w + 30))
            out_h = int(r.integers(1, h)) if h > 1 else 1
        else:
            out_w, out_h = int(r.integers(1, 160)), int(r.integers(1, 200))
        ww, wh = int(r.integers(1, out_w + 1)), int(r.integers(1, out_h + 1))
        window = (int(r.integers(0, out_w - ww + 1)), int(r.integers(0, out_h - wh + 1)), ww, wh)
        cases.append((mode, w, h, out_w, out_h, window, 600 + i))
    # hand-picked: both orders around the boundary, with inner windows
    for mode in _RESAMPLE_MODES:
        for w, h, out_w, out_h in ((30, 100, 20, 80), (30, 100, 20, 79), (30, 100, 20, 81), (30, 90, 40, 20),
                                   (90, 30, 20, 20), (100, 300, 60, 100), (7, 300, 7, 50), (300, 7, 50, 7)):
            window = (out_w // 4, out_h // 3, max(1, out_w // 2), max(1, out_h // 2))
            cases.append((mode, w, h, out_w, out_h, window, 700))
            cases.append((mode, w, h, out_w, out_h, (0, 0, out_w, out_h), 701))
    return cases


WINDOW_CASES = _window_cases()


@pytest.mark.parametrize("mode,w,h,out_w,out_h,window,seed", WINDOW_CASES,
                         ids=[f"{c[0]}-{c[1]}x{c[2]}-{c[3]}x{c[4]}-{c[5]}" for c in WINDOW_CASES])
def test_resize_window_matches_pillow(libvitamin, mode, w, h, out_w, out_h, window, seed):
    pixels = _random_pixels(rng(seed), mode, w, h)
    ours = _resize_window(libvitamin, mode, pixels, out_w, out_h, window)
    left, top, ww, wh = window
    ref = _pillow_image(mode, pixels).resize((out_w, out_h), Image.BICUBIC).crop((left, top, left + ww, top + wh))
    ref = np.asarray(ref).reshape(ours.shape)
    diff = np.abs(ours.astype(np.int64) - ref.astype(np.int64))
    order = "vertical" if _vertical_first(w, h, out_w, out_h) else "horizontal"
    assert diff.max() == 0, f"{mode} {w}x{h} -> {out_w}x{out_h} ({order} first) {window}: max diff {diff.max()}"


# --------------------------------------------------------------------------
# `python tests/reference/test_image_preprocess.py`: the max diffs, per case
# --------------------------------------------------------------------------

if __name__ == "__main__":
    import tempfile

    if not os.environ.get("VITAMIN_IMAGE_DUMP"):
        os.environ["VITAMIN_IMAGE_DUMP"] = str(BUILD_DIR / "testtools" / "image_dump")
    only = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        worst = 0
        for name, size in PARAMS:
            if only and not any(o in name for o in only):
                continue
            mode, u8_diff, f32_diff, bad = compare(case_path(tmp, name), size, pathlib.Path(tmp) / "out")
            worst = max(worst, u8_diff)
            print(f"{name:40s} {mode:5s} S={size:3d}  uint8 max diff {u8_diff:3d} ({bad} px)  float {f32_diff:.3g}")
        print("worst uint8 diff:", worst)
