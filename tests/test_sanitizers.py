"""The library under AddressSanitizer + UBSan and ThreadSanitizer (`make asan`,
`make tsan`: build/asan, build/tsan): every C unit test (both ISA paths), an
embedding run, a short training run with decode workers, and several caller
threads encoding with one model. Any sanitizer report fails the test (ASan
with leak detection, UBSan without recovery, TSan halting on the first race).

TSan runs with OMP_NUM_THREADS=1: libgomp itself is not instrumented, so its
barriers would be reported as races; the threads under test are ours (caller
threads sharing a model and its scratch pool, the training data loader's
decode workers and queue)."""
import os
import subprocess

import pytest
from PIL import Image

from vtpaths import BUILD, ROOT

ASAN_ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1",
                UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
TSAN_ENV = dict(os.environ, OMP_NUM_THREADS="1", TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1")
UNIT_TESTS = ["test_checkpoint", "test_csv", "test_eval_metrics", "test_hub_names", "test_image", "test_json",
              "test_kernels", "test_optimizer", "test_schema", "test_sha256", "test_tokenizer"]


def make(target):
    proc = subprocess.run(["make", "-j2", target], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return BUILD / target


@pytest.fixture(scope="module")
def asan():
    return make("asan")


@pytest.fixture(scope="module")
def tsan():
    return make("tsan")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("san")
    rows = ["filepath\ttitle"]
    for i in range(8):
        Image.new("RGB", (40 + i, 30), (30 * i, 80, 200 - 20 * i)).save(d / f"{i}.png")
        rows.append(f"{d / f'{i}.png'}\ta picture of shape {i}")
    (d / "train.csv").write_text("\n".join(rows) + "\n")
    return d


def run(args, env, cwd=ROOT, timeout=900):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr[-5000:]
    return proc


def test_every_unit_test_binary_is_covered():
    sources = sorted(p.stem for p in ROOT.glob("tests/unit/*/test_*.c"))
    assert sources == UNIT_TESTS, "update UNIT_TESTS to the unit tests tests/unit/ has"


@pytest.mark.parametrize("isa", ["default", "scalar"])
@pytest.mark.parametrize("name", UNIT_TESTS)
def test_unit_tests_under_asan(asan, name, isa):
    env = dict(ASAN_ENV)
    if isa == "scalar":
        env["VITAMIN_ISA"] = "scalar"
    run([asan / "tests" / name], env)


def test_train_then_embed_under_asan(asan, data, tmp_path):
    run([asan / "vitamin", "train", "--model", "ViTamin-Tiny", "--train-data", data / "train.csv", "--batch-size", 4,
         "--steps", 2, "--warmup", 0, "--save-dir", tmp_path / "run", "--workers", 2], ASAN_ENV)
    ckpt = tmp_path / "run" / (tmp_path / "run" / "latest").read_text().strip()
    run([asan / "vitamin", "embed", "-m", ckpt, "--image", data / "0.png", "--image", data / "1.png", "--text",
         "a picture", "-o", tmp_path / "e.npy"], ASAN_ENV)
    run([asan / "vitamin", "tokenize", "Ünïcödé & emoji 🙂 and a long " + "word " * 100], ASAN_ENV)
    run([asan / "testtools" / "api_threads", ckpt / "open_clip_model.safetensors", data / "0.png", "a picture"],
        ASAN_ENV)


def test_threads_under_tsan(tsan, data, tmp_path):
    run([tsan / "vitamin", "train", "--model", "ViTamin-Tiny", "--train-data", data / "train.csv", "--batch-size", 4,
         "--steps", 4, "--warmup", 0, "--save-dir", tmp_path / "run", "--workers", 3], TSAN_ENV)
    ckpt = tmp_path / "run" / (tmp_path / "run" / "latest").read_text().strip()
    run([tsan / "testtools" / "api_threads", ckpt / "open_clip_model.safetensors", data / "0.png", "a picture"],
        TSAN_ENV)
