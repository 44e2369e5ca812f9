"""CLIP_benchmark end to end: a ViTamin-Tiny trained here for a few seconds
on Fashion-MNIST, its test set exported with `vitamin dataset export-wds`,
then evaluated by CLIP_benchmark's own code once through its open_clip
loader (PyTorch) and once through ours (`vitamin.clip_benchmark`).

Tolerances: per-sample predictions agree on >= 99.9% of the 10,000 test
images (the two compute the same fp32 features to ~1e-6; a near-tie between
two class scores may flip), so top-1 differs by at most 0.1%; retrieval
recall at most 1/N apart (N = 80 images), for the same reason."""
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch

import tiny_models
from vtpaths import need

vitamin = pytest.importorskip("vitamin")
clip_benchmark = pytest.importorskip("clip_benchmark")
from clip_benchmark.datasets.builder import build_dataset  # noqa: E402
from clip_benchmark.metrics import zeroshot_classification, zeroshot_retrieval  # noqa: E402
from clip_benchmark.models import load_open_clip  # noqa: E402

from vitamin.clip_benchmark import _numpy2_accuracy, load_vitamin  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist"


def run(*args, **kw):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def trained(vitamin_cli, tmp_path_factory):
    need(os.path.isdir(FMNIST), "Debian's dataset-fashion-mnist (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("fmnist")
    data = d / "data"
    run(vitamin_cli, "dataset", "fashion-mnist", "--out", data)
    lines = (data / "train.csv").read_text().splitlines()
    (data / "train_small.csv").write_text("\n".join(lines[:4001]) + "\n")
    # retrieval: the first image of each distinct caption (80), so that no two
    # captions tie exactly (the demo's captions repeat per class)
    first, seen = [], set()
    for row in lines[1:]:
        if row.split("\t")[1] not in seen:
            seen.add(row.split("\t")[1])
            first.append(row)
    (data / "retrieval.csv").write_text("\n".join(lines[:1] + first) + "\n")
    run(vitamin_cli, "train", "--model", "ViTamin-Tiny", "--train-data", data / "train_small.csv", "--batch-size",
        "256", "--epochs", "3", "--lr", "2e-3", "--wd", "0.1", "--warmup", "10", "--seed", "0", "--drop-path", "0",
        "--save-dir", d / "run")
    ckpt = d / "run" / (d / "run" / "latest").read_text().strip() / "open_clip_model.safetensors"
    wds = d / "wds"
    run(vitamin_cli, "dataset", "export-wds", "--data", data / "test.csv", "--classnames", data / "classnames.txt",
        "--templates", data / "templates.txt", "--out", wds / "fmnist", "--shard-size", "4000")
    run(vitamin_cli, "dataset", "export-wds", "--task", "retrieval", "--data", data / "retrieval.csv", "--out",
        wds / "fmnist_retrieval", "--split", "test")
    tiny_models.register()
    _numpy2_accuracy()
    return dict(dir=d, data=data, ckpt=ckpt, wds=wds)


def test_export_layout(trained):
    root = trained["wds"] / "fmnist"
    assert (root / "test" / "nshards.txt").read_text().strip() == "3"
    assert (root / "classnames.txt").read_text().splitlines() == \
        (trained["data"] / "classnames.txt").read_text().splitlines()
    templates = (root / "zeroshot_classification_templates.txt").read_text().splitlines()
    assert templates == [t.replace("{}", "{c}") for t in (trained["data"] / "templates.txt").read_text().splitlines()]
    rows = [r.split("\t") for r in (trained["data"] / "test.csv").read_text().splitlines()[1:]]
    members = []
    for i in range(3):
        with tarfile.open(root / "test" / f"{i}.tar") as t:
            members += [(m.name, t.extractfile(m).read()) for m in t.getmembers()]
    assert len(members) == 2 * len(rows) == 20000
    for k in (0, 1234, 9999):
        img_name, img = members[2 * k]
        cls_name, cls = members[2 * k + 1]
        assert img_name == f"s{k:08d}.png" and cls_name == f"s{k:08d}.cls"
        assert img == (trained["data"] / rows[k][0]).read_bytes() and int(cls) == int(rows[k][1])
    # retrieval: one sample per image, its captions one per line
    rroot = trained["wds"] / "fmnist_retrieval"
    assert (rroot / "dataset_type.txt").read_text().strip() == "retrieval"
    with tarfile.open(rroot / "test" / "0.tar") as t:
        txt = [t.extractfile(m).read().decode() for m in t.getmembers() if m.name.endswith(".txt")]
    assert len(txt) == 80 and len(set(txt)) == 80 and all(len(c.splitlines()) == 1 for c in txt)


def loaders(trained):
    ckpt = str(trained["ckpt"])
    return {"open_clip": load_open_clip("ViTamin-Tiny", ckpt, None, "cpu"),
            "vitamin": load_vitamin("ViTamin-Tiny", ckpt, None, "cpu")}


def test_zeroshot_same_predictions_as_open_clip(trained):
    preds, accs = {}, {}
    for kind, (model, transform, tokenizer) in loaders(trained).items():
        model.eval()
        ds = build_dataset("wds/fmnist", root=str(trained["wds"] / "fmnist"), transform=transform, split="test")
        loader = torch.utils.data.DataLoader(ds.batched(500), batch_size=None, shuffle=False, num_workers=0)
        classifier = zeroshot_classification.zero_shot_classifier(model, tokenizer, ds.classes, ds.templates, "cpu",
                                                                   amp=False)
        logits, target = zeroshot_classification.run_classification(model, classifier, loader, "cpu", amp=False)
        preds[kind] = logits.argmax(1).numpy()
        accs[kind] = float((logits.argmax(1) == target).float().mean())
    assert len(preds["vitamin"]) == 10000
    agree = float(np.mean(preds["vitamin"] == preds["open_clip"]))
    print(f"per-sample agreement {agree:.4%}; top-1 open_clip {accs['open_clip']:.4f}, vitamin {accs['vitamin']:.4f}")
    assert agree >= 0.999
    assert abs(accs["vitamin"] - accs["open_clip"]) <= 0.001
    assert accs["vitamin"] > 0.3  # trained: well above the 10% of chance


def test_retrieval_same_recall_as_open_clip(trained):
    metrics = {}
    for kind, (model, transform, tokenizer) in loaders(trained).items():
        ds = build_dataset("wds/fmnist_retrieval", root=str(trained["wds"] / "fmnist_retrieval"), transform=transform,
                           split="test", task="zeroshot_retrieval")
        loader = torch.utils.data.DataLoader(ds.batched(100), batch_size=None, shuffle=False, num_workers=0)
        metrics[kind] = zeroshot_retrieval.evaluate(model, loader, tokenizer, "cpu", amp=False, recall_k_list=[1, 5])
    print("retrieval", json.dumps(metrics))
    for key, value in metrics["open_clip"].items():
        assert abs(metrics["vitamin"][key] - value) <= 1 / 80 + 1e-6, key


def test_cli_prints_clip_benchmark_json_and_matches_vitamin_eval(trained, vitamin_cli, tmp_path):
    out = tmp_path / "result.json"
    proc = run(sys.executable, "-m", "vitamin.clip_benchmark", "eval", "--model", "ViTamin-Tiny", "--pretrained",
               trained["ckpt"], "--dataset", "wds/fmnist", "--dataset_root", trained["wds"] / "fmnist",
               "--task", "zeroshot_classification", "--no_amp", "--num_workers", "0", "--batch_size", "500",
               "--output", out, cwd=tmp_path)
    print(proc.stdout[-1500:])
    result = json.loads(out.read_text())
    assert result["model"] == "ViTamin-Tiny" and result["task"] == "zeroshot_classification"
    ours = json.loads(run(vitamin_cli, "eval", "zeroshot", "-m", trained["ckpt"], "--data",
                          trained["data"] / "test.csv", "--classnames", trained["data"] / "classnames.txt",
                          "--templates", trained["data"] / "templates.txt", "--json", "-").stdout)
    for key in ("acc1", "acc5", "mean_per_class_recall"):
        assert abs(result["metrics"][key] - ours["metrics"][key]) <= 0.001, key
    # Python's eval_zeroshot and eval_retrieval are the CLI's
    py = vitamin.eval_zeroshot(str(trained["ckpt"]), trained["data"] / "test.csv",
                               classnames=trained["data"] / "classnames.txt", templates=trained["data"] / "templates.txt")
    assert py["metrics"] == ours["metrics"]
    cli_r = json.loads(run(vitamin_cli, "eval", "retrieval", "-m", trained["ckpt"], "--data",
                           trained["data"] / "retrieval.csv", "--json", "-").stdout)
    model = vitamin.create_model(str(trained["ckpt"]), threads=1)
    py_r = vitamin.eval_retrieval(model, trained["data"] / "retrieval.csv")
    assert py_r["metrics"] == cli_r["metrics"] and py_r["n_images"] == 80


def test_export_errors(vitamin_cli, trained, tmp_path):
    def fails(*args):
        proc = subprocess.run([str(vitamin_cli), "dataset", "export-wds", *map(str, args)], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode != 0
        return proc.stderr

    assert "--classnames" in fails("--data", trained["data"] / "test.csv", "--out", tmp_path / "a")
    assert "--task" in fails("--data", trained["data"] / "test.csv", "--task", "bogus", "--out", tmp_path / "b")
    assert "no output directory" in fails("--data", trained["data"] / "test.csv")
    bmp = tmp_path / "x.bmp"
    bmp.write_bytes(b"BM")
    table = tmp_path / "t.csv"
    table.write_text(f"filepath\tlabel\n{bmp}\t0\n")
    names = tmp_path / "names.txt"
    names.write_text("a\n")
    assert ".png" in fails("--data", table, "--classnames", names, "--out", tmp_path / "c")
    assert not (tmp_path / "c" / "test" / "0.tar").exists()

