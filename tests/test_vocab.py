"""The BPE vocabulary is part of the build: share/bpe_simple_vocab_16e6.txt.gz
is byte for byte the file open_clip ships, and a binary copied away from the
source tree, with no $VITAMIN_BPE_VOCAB, tokenizes exactly like open_clip."""
import hashlib
import os
import pathlib
import shutil
import subprocess

import open_clip
from vtpaths import BUILD  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def test_vocabulary_in_repo_is_open_clips():
    shipped = pathlib.Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    assert sha256(ROOT / "share" / "bpe_simple_vocab_16e6.txt.gz") == sha256(shipped)


def test_binary_outside_the_tree_tokenizes_with_builtin_vocabulary(tmp_path):
    exe = tmp_path / "elsewhere" / "vitamin"
    exe.parent.mkdir()
    shutil.copy(BUILD / "vitamin", exe)
    env = {k: v for k, v in os.environ.items() if k != "VITAMIN_BPE_VOCAB"}
    texts = ["a photo of a cat", "Über-naïve café 🍕 — 3.14 «quotes» &amp; co.", "x" * 300]
    tok = open_clip.get_tokenizer("ViTamin-S")
    for text in texts:
        proc = subprocess.run([str(exe), "tokenize", text], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        ids = [int(t) for t in proc.stdout.split()]
        assert ids == tok([text])[0].tolist()


def test_vocab_flag_still_overrides(tmp_path):
    bad = tmp_path / "not_a_vocab.txt.gz"
    bad.write_bytes((ROOT / "share" / "bpe_simple_vocab_16e6.txt.gz").read_bytes()[:5000])  # truncated gzip
    proc = subprocess.run([str(BUILD / "vitamin"), "tokenize", "--vocab", str(bad), "hi"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert "not_a_vocab.txt.gz" in proc.stderr and "gzip" in proc.stderr
