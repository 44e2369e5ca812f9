"""`pip install .` (and `pip wheel .`) from a clean checkout into a fresh
venv that holds only numpy: the standard build backend (setuptools, fetched by pip's build
isolation) compiles the engine with the Makefile, and `import vitamin`
tokenizes and embeds with no torch or Pillow present. The checkout is the
working tree's tracked and unignored files, without build/."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from vtpaths import ROOT

SCRIPT = r'''
import sys, numpy as np, vitamin
assert "torch" not in sys.modules and "PIL" not in sys.modules
tok = vitamin.get_tokenizer("ViTamin-S")
print(" ".join(map(str, tok(["a photo of a cat"])[0][:8])))
model = vitamin.create_model(sys.argv[1])
feats = model.encode_image(np.load(sys.argv[2]), normalize=True)
np.save(sys.argv[3], feats)
import importlib.util, os
cli = os.path.join(os.path.dirname(vitamin.__file__), "_bin", "vitamin")
assert os.access(cli, os.X_OK), cli
try:
    import torch  # noqa: F401
    raise SystemExit("torch importable in the fresh venv")
except ImportError:
    pass
'''


def files_of_checkout():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return [f for f in out.decode().split("\0") if f and os.path.isfile(ROOT / f)]


def test_pip_install_into_fresh_venv(tmp_path):
    import torch
    import open_clip
    import refmodel_path  # noqa: F401 - puts tests/reference on sys.path
    import refmodel

    src = tmp_path / "checkout"
    for f in files_of_checkout():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    assert not (src / "build").exists()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    def pip(*args):
        proc = subprocess.run([str(py), "-m", "pip", "-q", "--disable-pip-version-check", *args], env=env,
                              capture_output=True, text=True, timeout=1500)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    pip("install", "numpy")
    # a wheel by the same backend (the engine compiles once, in the checkout's build/) ...
    pip("wheel", "--no-deps", "-w", str(tmp_path / "wheels"), str(src))
    wheels = list((tmp_path / "wheels").glob("vitamin_c-*.whl"))
    assert len(wheels) == 1, wheels
    import zipfile
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "vitamin/_bin/vitamin" in names and any(n.startswith("vitamin/_core") for n in names), names
    # ... and `pip install .` itself, which is what users run
    pip("install", str(src))
    case = refmodel.make_case(str(tmp_path / "model"), "ViTamin-S", n_images=2, n_texts=0)
    np.save(tmp_path / "pixels.npy", case["pixels"])
    proc = subprocess.run([str(py), "-c", SCRIPT, case["ckpt"], str(tmp_path / "pixels.npy"),
                           str(tmp_path / "feats.npy")], env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    want = " ".join(map(str, open_clip.get_tokenizer("ViTamin-S")(["a photo of a cat"])[0][:8].tolist()))
    assert proc.stdout.split("\n")[0] == want
    ref = torch.nn.functional.normalize(torch.from_numpy(case["image_features"]), dim=-1).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "feats.npy"), ref, atol=1e-4, rtol=0)
