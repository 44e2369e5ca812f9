"""Checkpoints by name (src/hub/): the Hugging Face cache as huggingface_hub
writes it, found by repo id and by open_clip model name with no network, and
downloads from a local stand-in for the hub (tests/hub_server.py, loopback
addresses only): redirects to a second host, resume after a dropped
connection, sha256 checks, tokens, offline mode, damaged caches."""
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from vtpaths import BUILD  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "reference"))
from hub_server import Hub  # noqa: E402
from refmodel import build_model, save_checkpoint  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
VITAMIN = str(BUILD / "vitamin")
REPO = "jienengchen/ViTamin-S"
S_CONFIG = {"architectures": ["ViTaminCLIP"], "embed_dim": 384,
            "vision_cfg": {"timm_model_name": "vitamin_small", "timm_model_pretrained": False, "timm_pool": "",
                           "timm_proj": "linear", "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": 224},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 384, "heads": 6, "layers": 12}}
S_PREPROCESSOR = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                  "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
                  "resample": 3, "size": 224}


def run(args, env, timeout=600):
    return subprocess.run([VITAMIN, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGING")) and k not in ("VITAMIN_MODEL", "XDG_CACHE_HOME")}
    env["HOME"] = str(tmp_path / "home")
    env["VITAMIN_PROGRESS"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def s_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("s")
    model = build_model("ViTamin-S", seed=21)
    save_checkpoint(model, str(d / "pytorch_model.bin"), layout="plain_clip")
    return model, (d / "pytorch_model.bin").read_bytes()


@pytest.fixture()
def hub(s_model):
    h = Hub()
    h.add_repo(REPO, {"config.json": json.dumps(S_CONFIG).encode(),
                      "preprocessor_config.json": json.dumps(S_PREPROCESSOR).encode(),
                      "pytorch_model.bin": s_model[1], "model.py": b"raise SystemExit\n"})
    yield h.start()
    h.stop()


def blob_files(cache, repo=REPO):
    d = pathlib.Path(cache) / ("models--" + repo.replace("/", "--")) / "blobs"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def open_clip_text(model, texts):
    import open_clip

    with torch.no_grad():
        return model.encode_text(open_clip.get_tokenizer("ViTamin-S")(texts), normalize=True).numpy()


def test_download_by_name_then_offline_everywhere(tmp_path, hub, s_model):
    cache = tmp_path / "cache"
    env = clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache)
    out = tmp_path / "e.npy"
    proc = run(["embed", "-m", "ViTamin-S", "--text", "a photo of a cat", "-o", out], env)
    assert proc.returncode == 0, proc.stderr
    assert "pytorch_model.bin [" in proc.stderr and "ETA" in proc.stderr  # the progress bar
    assert np.abs(np.load(out) - open_clip_text(s_model[0], ["a photo of a cat"])).max() <= 1e-4
    # The cache is huggingface_hub's layout: blobs by etag, relative snapshot links, refs/main.
    repo_dir = cache / "models--jienengchen--ViTamin-S"
    commit = (repo_dir / "refs" / "main").read_text()
    assert commit == hub.repos[REPO]["commit"]
    link = repo_dir / "snapshots" / commit / "pytorch_model.bin"
    assert os.readlink(link) == "../../blobs/" + hashlib.sha256(s_model[1]).hexdigest()
    assert link.read_bytes() == s_model[1]
    assert not (repo_dir / "snapshots" / commit / "model.py").exists()  # remote code is never fetched
    # Offline now: every spelling of the name finds it, and nothing is requested.
    hub.requests.clear()
    off = dict(env, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    for spec in [["-m", "ViTamin-S"], ["-m", "hf-hub:jienengchen/ViTamin-S"], ["-m", "jienengchen/ViTamin-S"],
                 ["-m", "ViTamin-S", "--pretrained", "datacomp1b"], ["-m", "hf-hub:jienengchen/ViTamin-S@main"],
                 ["-m", f"hf-hub:jienengchen/ViTamin-S@{commit}"]]:
        proc = run(["info", *spec], off)
        assert proc.returncode == 0 and "model:        ViTamin-S\n" in proc.stdout, (spec, proc.stderr)
        assert "note:" not in proc.stderr
    assert hub.requests == []
    # huggingface_hub reads the cache vitamin.c wrote, offline.
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    got = hf_hub_download(REPO, "pytorch_model.bin", cache_dir=str(cache), local_files_only=True)
    assert pathlib.Path(got).read_bytes() == s_model[1]
    assert json.loads(pathlib.Path(try_to_load_from_cache(REPO, "config.json", cache_dir=str(cache))).read_text()) \
        == S_CONFIG


@pytest.mark.parametrize("where", ["HF_HUB_CACHE", "HF_HOME", "HOME"])
def test_cache_written_by_huggingface_hub_is_found(tmp_path, hub, s_model, where):
    from huggingface_hub import hf_hub_download

    locations = {"HF_HUB_CACHE": tmp_path / "c", "HF_HOME": tmp_path / "hfhome" / "hub",
                 "HOME": tmp_path / "home" / ".cache" / "huggingface" / "hub"}
    cache = locations[where]
    # open_clip's own download (hf_hub_download of pytorch_model.bin alone) against the stand-in hub.
    hf_hub_download(REPO, "pytorch_model.bin", cache_dir=str(cache), endpoint=hub.endpoint)
    env = clean_env(tmp_path, HF_HUB_OFFLINE=1)
    if where == "HF_HUB_CACHE":
        env["HF_HUB_CACHE"] = str(cache)
    elif where == "HF_HOME":
        env["HF_HOME"] = str(tmp_path / "hfhome")
    proc = run(["embed", "-m", "ViTamin-S", "--text", "a dog", "-o", tmp_path / "e.npy"], env)
    assert proc.returncode == 0, proc.stderr
    # Only the weights are cached (no config.json): the name the user gave decides the architecture.
    assert "note:" not in proc.stderr
    assert np.abs(np.load(tmp_path / "e.npy") - open_clip_text(s_model[0], ["a dog"])).max() <= 1e-4
    proc = run(["info", "-m", "hf-hub:jienengchen/ViTamin-S"], env)
    assert proc.returncode == 0 and "model:        ViTamin-S\n" in proc.stdout, proc.stderr


def test_resume_after_dropped_connections(tmp_path, hub, s_model):
    cache = tmp_path / "cache"
    env = clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache)
    size = len(s_model[1])
    hub.drop_after, hub.drops_left = size // 3, 2
    proc = run(["pull", REPO], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("connection dropped") == 2
    ranges = [h.get("Range") for host, m, p, h in hub.requests if p.startswith("/cdn/") and m == "GET"]
    assert ranges == [None, f"bytes={size // 3}-", f"bytes={2 * (size // 3)}-"], ranges
    path = pathlib.Path(proc.stdout.strip())
    assert path.read_bytes() == s_model[1]
    # Without retries a drop leaves the .incomplete file, and the next run resumes from it.
    cache2 = tmp_path / "cache2"
    env2 = dict(env, HF_HUB_CACHE=str(cache2), VITAMIN_HUB_RETRIES="0")
    hub.drop_after, hub.drops_left = size // 2, 1
    proc = run(["pull", "ViTamin-S"], env2)
    assert proc.returncode == 1 and ".incomplete" in proc.stderr and "resume" in proc.stderr, proc.stderr
    assert [b for b in blob_files(cache2) if b.endswith(".incomplete")]
    hub.requests.clear()
    proc = run(["pull", "ViTamin-S"], env2)
    assert proc.returncode == 0, proc.stderr
    assert [h.get("Range") for host, m, p, h in hub.requests if p.startswith("/cdn/") and m == "GET"] == \
        [f"bytes={size // 2}-"]
    assert pathlib.Path(proc.stdout.strip()).read_bytes() == s_model[1]
    assert not [b for b in blob_files(cache2) if b.endswith(".incomplete")]


def test_server_that_ignores_range_and_parallel_pulls(tmp_path, hub, s_model):
    """A 200 answer to a Range request restarts the file instead of appending to it; two pulls at once take
    turns on huggingface_hub's lock file and both end with the right file."""
    cache = tmp_path / "cache"
    env = clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache)
    hub.ignore_range = True
    hub.drop_after, hub.drops_left = len(s_model[1]) // 4, 1
    proc = run(["pull", REPO], env)
    assert proc.returncode == 0, proc.stderr
    assert pathlib.Path(proc.stdout.strip()).read_bytes() == s_model[1]
    assert (cache / ".locks" / "models--jienengchen--ViTamin-S").is_dir()
    cache2 = tmp_path / "cache2"
    env2 = dict(env, HF_HUB_CACHE=str(cache2))
    procs = [subprocess.Popen([VITAMIN, "pull", REPO], env=env2, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all(pathlib.Path(o[0].strip()).read_bytes() == s_model[1] for o in outs)


def test_wrong_checksum_never_enters_the_cache(tmp_path, hub):
    cache = tmp_path / "cache"
    hub.corrupt = True
    proc = run(["pull", REPO], clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache))
    assert proc.returncode == 1 and "sha256" in proc.stderr and "Nothing was written" in proc.stderr, proc.stderr
    sha = hashlib.sha256(hub.repos[REPO]["files"]["pytorch_model.bin"]).hexdigest()
    assert sha not in blob_files(cache) and sha + ".incomplete" not in blob_files(cache)
    snapshots = cache / "models--jienengchen--ViTamin-S" / "snapshots"
    assert not list(snapshots.glob("*/pytorch_model.bin"))
    # Later, a good transfer completes normally.
    hub.corrupt = False
    assert run(["pull", REPO], clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache)).returncode == 0


def test_private_repo_needs_a_token(tmp_path, hub):
    hub.add_repo("someone/private-vitamin", dict(hub.repos[REPO]["files"]), token="hf_secret")
    cache = tmp_path / "cache"
    env = clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache)
    proc = run(["pull", "hf-hub:someone/private-vitamin"], env)
    assert proc.returncode == 1 and "401" in proc.stderr and "set HF_TOKEN" in proc.stderr, proc.stderr
    proc = run(["pull", "hf-hub:someone/private-vitamin"], dict(env, HF_TOKEN="hf_wrong"))
    assert proc.returncode == 1 and "refused" in proc.stderr
    hub.requests.clear()
    proc = run(["pull", "hf-hub:someone/private-vitamin"], dict(env, HF_TOKEN="hf_secret"))
    assert proc.returncode == 0, proc.stderr
    sent = {(host, h.get("Authorization")) for host, m, p, h in hub.requests}
    assert ("127.0.0.1", "Bearer hf_secret") in sent
    assert all(auth is None for host, auth in sent if host == "127.0.0.2")  # never to the CDN host
    # The token file huggingface-cli login writes works too.
    (tmp_path / "hfhome").mkdir()
    (tmp_path / "hfhome" / "token").write_text("hf_secret\n")
    proc = run(["pull", "hf-hub:someone/private-vitamin"], dict(env, HF_HOME=tmp_path / "hfhome"))
    assert proc.returncode == 0, proc.stderr


def test_renamed_repo_redirect(tmp_path, hub):
    hub.renamed["oldname/ViTamin-S"] = REPO
    cache = tmp_path / "cache"
    proc = run(["pull", "hf-hub:oldname/ViTamin-S"], clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache))
    assert proc.returncode == 0, proc.stderr
    assert "models--oldname--ViTamin-S" in proc.stdout


def test_offline_and_network_errors_say_what_to_do(tmp_path, hub):
    env = clean_env(tmp_path, HF_HUB_CACHE=tmp_path / "empty")
    proc = run(["info", "-m", "ViTamin-B"], dict(env, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 1 and "huggingface-cli download jienengchen/ViTamin-B" in proc.stderr
    assert "vitamin pull" in proc.stderr
    proc = run(["info", "-m", "ViTamin-B", "--offline"], env)
    assert proc.returncode == 1 and "downloads are off" in proc.stderr
    proc = run(["info", "-m", "ViTamin-B"], dict(env, HF_ENDPOINT="http://127.0.0.1:9"))
    assert proc.returncode == 1 and "cannot download" in proc.stderr and "HF_HUB_OFFLINE" in proc.stderr
    proc = run(["pull", "hf-hub:nobody/nothing"], dict(env, HF_ENDPOINT=hub.endpoint))
    assert proc.returncode == 1 and "401" in proc.stderr
    proc = run(["pull", "ViTamin-S", "--revision", "v9"], dict(env, HF_ENDPOINT=hub.endpoint))
    assert proc.returncode == 1 and "RevisionNotFound" in proc.stderr
    for bad in ["hf-hub:a/b/../c", "hf-hub:../x", "hf-hub:org/na me", "hf-hub:org--x/y", "hf-hub:org/y@../z"]:
        proc = run(["info", "-m", bad], env)
        assert proc.returncode == 1 and "hub repo id" in proc.stderr, (bad, proc.stderr)


def test_endpoint_that_is_not_a_hub(tmp_path):
    import http.server
    import threading

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        env = clean_env(tmp_path, HF_HUB_CACHE=tmp_path / "c", HF_ENDPOINT="http://127.0.0.1:%d" % srv.server_address[1])
        proc = run(["pull", "ViTamin-S"], env)
        assert proc.returncode == 1, proc.stderr
        assert "not seem to be a Hugging Face hub endpoint" in proc.stderr or "HTTP 404" in proc.stderr, proc.stderr
    finally:
        srv.shutdown()
        srv.server_close()


def test_damaged_cache(tmp_path, hub, s_model):
    cache = tmp_path / "cache"
    env = clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache)
    path = pathlib.Path(run(["pull", REPO], env).stdout.strip())
    off = dict(env, HF_HUB_OFFLINE="1")
    blob = path.resolve()
    # A truncated blob: the checkpoint reader says so, and the CLI says how to repair.
    blob.write_bytes(s_model[1][: len(s_model[1]) // 2])
    proc = run(["info", "-m", "ViTamin-S"], off)
    assert proc.returncode == 1 and "vitamin pull jienengchen/ViTamin-S" in proc.stderr, proc.stderr
    # A snapshot link that points nowhere.
    blob.unlink()
    proc = run(["info", "-m", "ViTamin-S"], off)
    assert proc.returncode == 1 and "broken Hugging Face cache" in proc.stderr and "links to" in proc.stderr
    # A refs file that holds no commit.
    (cache / "models--jienengchen--ViTamin-S" / "refs" / "main").write_text("../../../etc\n")
    proc = run(["info", "-m", "ViTamin-S"], off)
    assert proc.returncode == 1 and "commit hash" in proc.stderr
    # Pulling again repairs it all.
    (cache / "models--jienengchen--ViTamin-S" / "refs" / "main").unlink()
    assert run(["pull", REPO], env).returncode == 0
    assert run(["info", "-m", "ViTamin-S"], off).returncode == 0


def test_pull_list_and_help(tmp_path):
    proc = run(["pull", "--list"], clean_env(tmp_path))
    assert proc.returncode == 0
    rows = [line for line in proc.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 15 and all("jienengchen/ViTamin-" in r for r in rows)
    assert "250 MB" in rows[0] and "3.70 GB" in rows[-1]
    assert "usage: vitamin pull" in run(["pull", "--help"], clean_env(tmp_path)).stdout
    assert run(["pull"], clean_env(tmp_path)).returncode == 2


def test_train_starts_from_released_weights_by_name(tmp_path, hub):
    """vitamin train --model ViTamin-S --pretrained datacomp1b, as open_clip spells it, from the cache."""
    from PIL import Image

    cache = tmp_path / "cache"
    env = clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=cache, OMP_WAIT_POLICY="PASSIVE")
    rows = ["filepath\ttitle"]
    for i in range(2):
        Image.new("RGB", (40, 30), (200 * i, 80, 40)).save(tmp_path / f"{i}.png")
        rows.append(f"{tmp_path / f'{i}.png'}\ta picture number {i}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    base = ["train", "--model", "ViTamin-S", "--train-data", tmp_path / "train.csv", "--batch-size", "2",
            "--steps", "1", "--warmup", "0", "--workers", "0"]
    proc = run(base + ["--pretrained", "datacomp1b"], dict(env, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 1 and "not in the Hugging Face cache" in proc.stderr, proc.stderr
    proc = run(base + ["--pretrained", "datacomp1b"], env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    proc = run(base + ["--pretrained", "hf-hub:jienengchen/ViTamin-S"], dict(env, HF_HUB_OFFLINE="1"), timeout=900)
    assert proc.returncode == 0, proc.stderr


def test_transformers_clip_repo_downloads_and_embeds(tmp_path):
    """A repo laid out as openai/clip-vit-base-patch32 (transformers'
    model.safetensors + config.json, no open_clip files): -m hf-hub:ORG/NAME
    downloads config and weights into the cache and embeds like transformers."""
    from transformers import CLIPConfig, CLIPModel
    from refmodel import randomize

    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=77, vocab_size=49408),
                     vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                        num_attention_heads=2, image_size=32, patch_size=8), projection_dim=32)
    model = randomize(CLIPModel(cfg).eval(), 0)
    model.save_pretrained(tmp_path / "saved")
    repo = "openai/clip-vit-tiny-test"
    h = Hub()
    h.add_repo(repo, {"config.json": (tmp_path / "saved" / "config.json").read_bytes(),
                      "model.safetensors": (tmp_path / "saved" / "model.safetensors").read_bytes()})
    h.start()
    try:
        env = clean_env(tmp_path, HF_ENDPOINT=h.endpoint, HF_HUB_CACHE=tmp_path / "cache")
        proc = run(["embed", "-m", f"hf-hub:{repo}", "--text", "a photo of a cat", "-o", tmp_path / "e.npy"], env)
    finally:
        h.stop()
    assert proc.returncode == 0, proc.stderr
    import open_clip

    ids = open_clip.get_tokenizer("ViT-B-32")(["a photo of a cat"])
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model.get_text_features(input_ids=ids), dim=-1).numpy()
    assert np.abs(np.load(tmp_path / "e.npy") - ref).max() <= 1e-4
    snap = tmp_path / "cache" / "models--openai--clip-vit-tiny-test" / "snapshots"
    assert (next(snap.iterdir()) / "model.safetensors").exists()
