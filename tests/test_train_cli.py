"""`vitamin train` end to end on a small generated image-caption set:
the JSON log, checkpoints open_clip can load (same embeddings as vitamin.c),
determinism (same result for 1 and 2 threads), resume after SIGKILL giving the
same weights as an uninterrupted run, resuming from an open_clip epoch_N.pt,
and bad input (missing images, wrong columns, NaN loss)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference"))

MODEL = "ViTamin-Tiny"
SHAPES = ["circle", "square", "triangle", "cross"]
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 230)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """48 PNGs of coloured shapes + train.csv (filepath, title), tab-separated."""
    from PIL import Image, ImageDraw

    d = tmp_path_factory.mktemp("shapes")
    (d / "img").mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for i in range(48):
        shape, colour = SHAPES[i % 4], list(COLOURS)[i % 3]
        im = Image.new("RGB", (40 + i % 7, 36 + i % 5), (250, 250, 250))
        dr = ImageDraw.Draw(im)
        x, y = rng.integers(2, 10, size=2)
        box = [int(x), int(y), int(x) + 24, int(y) + 24]
        fill = COLOURS[colour]
        if shape == "circle":
            dr.ellipse(box, fill=fill)
        elif shape == "square":
            dr.rectangle(box, fill=fill)
        elif shape == "triangle":
            dr.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=fill)
        else:
            dr.line([(box[0], box[1]), (box[2], box[3])], fill=fill, width=5)
            dr.line([(box[0], box[3]), (box[2], box[1])], fill=fill, width=5)
        name = f"img/{i:03d}.png"
        im.save(d / name)
        rows.append((name, f"a {colour} {shape}"))
    with open(d / "train.csv", "w") as f:
        f.write("filepath\ttitle\n")
        for r in rows:
            f.write(f"{r[0]}\t{r[1]}\n")
    return d


def train(cli, data, *extra, check=True, timeout=300):
    cmd = [cli, "train", "--model", MODEL, "--train-data", str(data / "train.csv"), "--batch-size", "16",
           "--lr", "1e-3", "--warmup", "2", "--seed", "7", *map(str, extra)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def latest(save_dir):
    return save_dir / (save_dir / "latest").read_text().strip()


def weights(ckpt_dir):
    from safetensors.numpy import load_file

    return load_file(str(ckpt_dir / "open_clip_model.safetensors"))


def test_help_lists_open_clip_flags(vitamin_cli):
    p = subprocess.run([vitamin_cli, "train", "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    for flag in ["--train-data", "--batch-size", "--lr", "--wd", "--warmup", "--epochs", "--seed", "--resume",
                 "--csv-separator", "--csv-img-key", "--csv-caption-key", "--steps", "--save-dir", "--log",
                 "--accum-freq", "--grad-clip-norm", "--lock-image", "--lock-text"]:
        assert flag in p.stdout, flag


def test_log_checkpoint_and_open_clip_round_trip(vitamin_cli, dataset, tmp_path):
    import open_clip
    import torch
    import tiny_models

    save, log = tmp_path / "ckpt", tmp_path / "log.jsonl"
    p = train(vitamin_cli, dataset, "--steps", 6, "--save-dir", save, "--save-every", 3, "--log", log,
              "--log-every", 2, "--retrieval-data", dataset / "train.csv", "--eval-every", 3)
    assert "step 6/6" in p.stderr and "img/s" in p.stderr and "ETA" in p.stderr
    lines = [json.loads(l) for l in log.read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3, 4, 5, 6]
    for l in lines:
        for key in ("step", "loss", "lr", "logit_scale", "images_per_s"):
            assert key in l
        assert np.isfinite(l["loss"])
    assert lines[-1]["loss"] < lines[0]["loss"], "6 steps on 48 images should lower the loss"
    # Retrieval recall every 3 steps (48 pairs, 12 distinct captions: chance R@1 is ~1/48).
    evals = [l for l in lines if "image_to_text_r1" in l]
    assert [l["step"] for l in evals] == [3, 6]
    assert all(0.0 <= l[k] <= 1.0 for l in evals for k in ("image_to_text_r1", "text_to_image_r5"))
    assert "retrieval image->text R@1/5/10" in p.stderr
    ckpt = latest(save)
    assert ckpt.name == "step_00000006"
    assert sorted(os.listdir(ckpt)) == ["open_clip_config.json", "open_clip_model.safetensors",
                                        "optimizer.safetensors", "state.json"]
    # open_clip loads what vitamin.c trained and embeds like vitamin.c does.
    tiny_models.register()
    model = open_clip.create_model(MODEL, pretrained=str(ckpt / "open_clip_model.safetensors")).eval()
    out = tmp_path / "emb.npy"
    img = str(dataset / "img" / "005.png")
    e = subprocess.run([vitamin_cli, "embed", "-m", str(ckpt), "--image", img, "--text", "a red circle",
                        "-o", str(out)], capture_output=True, text=True)
    assert e.returncode == 0, e.stderr
    from PIL import Image

    pre = open_clip.image_transform(32, is_train=False)
    tok = open_clip.get_tokenizer("ViTamin-S")
    with torch.no_grad():
        ref = torch.cat([model.encode_image(pre(Image.open(img)).unsqueeze(0), normalize=True),
                         model.encode_text(tok(["a red circle"]), normalize=True)]).numpy()
    assert np.abs(np.load(out) - ref).max() <= 1e-4


def test_same_weights_for_any_thread_count(vitamin_cli, dataset, tmp_path):
    finals = []
    for threads in (1, 2):
        save = tmp_path / f"t{threads}"
        train(vitamin_cli, dataset, "--steps", 3, "--save-dir", save, "--threads", threads, "--workers", threads + 1)
        finals.append(weights(latest(save)))
    for k in finals[0]:
        assert np.array_equal(finals[0][k].view(np.uint32), finals[1][k].view(np.uint32)), k


def test_sigkill_then_resume_matches_uninterrupted_run(vitamin_cli, dataset, tmp_path):
    ref_dir = tmp_path / "ref"
    train(vitamin_cli, dataset, "--steps", 8, "--save-dir", ref_dir, "--accum-freq", 2)
    reference = weights(latest(ref_dir))
    save = tmp_path / "killed"
    cmd = [vitamin_cli, "train", "--model", MODEL, "--train-data", str(dataset / "train.csv"), "--batch-size", "16",
           "--lr", "1e-3", "--warmup", "2", "--seed", "7", "--steps", "8", "--save-dir", str(save),
           "--save-every", "1", "--accum-freq", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Kill as soon as a few checkpoints exist, very likely in the middle of writing another.
    deadline = time.time() + 120
    while time.time() < deadline:
        if (save / "latest").exists() and latest(save).name >= "step_00000003":
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = latest(save).name
    assert before < "step_00000008", "the run finished before it could be killed"
    # Whatever the kill interrupted, `latest` names a complete checkpoint...
    assert set(os.listdir(latest(save))) >= {"open_clip_model.safetensors", "optimizer.safetensors", "state.json"}
    # ...and resuming from it reaches exactly the uninterrupted result.
    train(vitamin_cli, dataset, "--steps", 8, "--save-dir", save, "--save-every", 1, "--accum-freq", 2,
          "--resume", "latest")
    resumed = weights(latest(save))
    for k in reference:
        assert np.array_equal(reference[k].view(np.uint32), resumed[k].view(np.uint32)), k


def test_resume_from_open_clip_epoch_checkpoint(vitamin_cli, dataset, tmp_path):
    import torch
    import refmodel
    import tiny_models

    tiny_models.register()
    model = refmodel.build_model(MODEL, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sd = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 1, "name": "oc", "state_dict": sd, "optimizer": opt.state_dict()}, tmp_path / "epoch_1.pt")
    save = tmp_path / "ckpt"
    p = train(vitamin_cli, dataset, "--steps", 2, "--save-dir", save, "--resume", tmp_path / "epoch_1.pt")
    assert "resumed from" in p.stderr
    assert (latest(save) / "open_clip_model.safetensors").exists()


def test_missing_images_are_skipped_or_fail_with_strict(vitamin_cli, dataset, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    rows = (dataset / "train.csv").read_text().splitlines()
    rows = [rows[0]] + [r.replace("img/", str(dataset / "img") + "/") for r in rows[1:]]
    rows.insert(3, "nowhere/missing.png\ta ghost")
    (bad / "train.csv").write_text("\n".join(rows) + "\n")
    log = tmp_path / "log.jsonl"
    p = train(vitamin_cli, bad, "--steps", 3, "--log", log)
    skipped = [json.loads(l)["skipped"] for l in log.read_text().splitlines()]
    assert max(skipped) >= 1
    p = train(vitamin_cli, bad, "--steps", 3, "--strict", check=False)
    assert p.returncode == 1 and "missing.png" in p.stderr


def test_wrong_columns_and_nan_loss_are_clear_errors(vitamin_cli, dataset, tmp_path):
    p = train(vitamin_cli, dataset, "--steps", 1, "--csv-caption-key", "caption", check=False)
    assert p.returncode == 1 and "caption" in p.stderr and "--csv-caption-key" in p.stderr
    save = tmp_path / "ckpt"
    train(vitamin_cli, dataset, "--steps", 2, "--save-dir", save)
    good = weights(latest(save))
    p = train(vitamin_cli, dataset, "--steps", 6, "--save-dir", save, "--resume", "latest", "--lr", "1e30",
              "--warmup", "1", check=False)
    assert p.returncode == 1
    assert "not finite" in p.stderr or "became" in p.stderr, p.stderr
    assert "last good checkpoint" in p.stderr
    kept = weights(latest(save))
    for k in good:
        assert np.all(np.isfinite(kept[k])), k
    p = subprocess.run([vitamin_cli, "train", "--model", "ViTamin-Huge", "--train-data", str(dataset / "train.csv")],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "ViTamin-Huge" in p.stderr
