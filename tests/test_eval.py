"""`vitamin eval zeroshot|retrieval` against the same metrics computed in Python
from open_clip's own embeddings of the same random-weight model
(build_zero_shot_classifier for the classifier, clip_benchmark's recall_at_k
for retrieval), plus the error paths a user can hit (exit 1 = bad data,
2 = bad usage, always with a message)."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "reference"))
from refmodel import build_model, save_checkpoint  # noqa: E402

torch.set_num_threads(1)

CLASSES = ["cat", "dog", "red car", "rocket", "tree", "diagram"]
TEMPLATES = ["a photo of a {}.", "{c}, in a painting"]
N_IMAGES = 12


def run(cli, *args, cwd=None):
    return subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=dict(os.environ, OMP_NUM_THREADS="2"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A ViTamin-S checkpoint with random weights and 12 generated images of
    assorted sizes and formats; returns (model, checkpoint, image dir, images,
    open_clip's embeddings of the images)."""
    from PIL import Image, ImageDraw

    d = tmp_path_factory.mktemp("eval")
    model = build_model("ViTamin-S", seed=11)
    ckpt = d / "pytorch_model.bin"
    save_checkpoint(model, str(ckpt))
    rng = np.random.default_rng(4)
    images = []
    for i in range(N_IMAGES):
        w, h = [(64, 48), (40, 80), (96, 96)][i % 3]
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        ImageDraw.Draw(img).ellipse([5, 5, w - 10, h - 10], fill=tuple(int(x) for x in rng.integers(0, 256, 3)))
        path = d / "images" / (f"img{i:02d}.png" if i % 2 else f"img{i:02d}.jpg")
        path.parent.mkdir(exist_ok=True)
        img.save(path)
        images.append(path)
    return model, ckpt, d, images, open_clip_image_features(model, images)


def open_clip_image_features(model, images):
    import open_clip
    from PIL import Image

    preprocess = open_clip.image_transform(224, is_train=False)
    with torch.no_grad():
        return model.encode_image(torch.stack([preprocess(Image.open(p)) for p in images]), normalize=True)


def reference_zeroshot(model, img, labels, classnames=CLASSES):
    """clip_benchmark's metrics from open_clip's classifier and image embeddings `img`."""
    import open_clip

    tok = open_clip.get_tokenizer("ViTamin-S")
    templates = [lambda c, t=t: t.replace("{}", c).replace("{c}", c) for t in TEMPLATES]
    with torch.no_grad():
        classifier = open_clip.build_zero_shot_classifier(model, tok, classnames, templates, device="cpu")
    logits = (img @ classifier).numpy()
    labels = np.asarray(labels)
    own = logits[np.arange(len(labels)), labels]
    others = np.where(np.eye(len(classnames), dtype=bool)[labels], -np.inf, logits)
    # A near-tie would make the comparison depend on rounding: the test data must not have one.
    assert np.abs(others - own[:, None]).min() > 1e-5
    k = min(5, len(classnames))
    topk = np.argsort(-logits, axis=1)[:, :k]
    pred = logits.argmax(axis=1)
    recalls = [np.mean(pred[labels == c] == c) for c in range(len(classnames)) if np.any(labels == c)]
    return {"acc1": float(np.mean(pred == labels)), "acc5": float(np.mean([l in t for l, t in zip(labels, topk)])),
            "mean_per_class_recall": float(np.mean(recalls))}


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_help(vitamin_cli):
    p = run(vitamin_cli, "eval", "--help")
    assert p.returncode == 0 and "usage: vitamin eval zeroshot" in p.stdout and "retrieval" in p.stdout
    p = run(vitamin_cli, "eval", "retrieval", "--help")
    assert p.returncode == 0 and "--csv-caption-key" in p.stdout


def test_zeroshot_image_folder_matches_open_clip(vitamin_cli, setup, tmp_path):
    """ImageFolder without --classnames: the sorted directory names are the
    classes (and the class names the prompts are built from)."""
    model, ckpt, _, images, img = setup
    folder = tmp_path / "folder"
    classes = sorted(CLASSES)
    labels = [i % len(classes) for i in range(N_IMAGES)]
    for image, label in zip(images, labels):
        target = folder / classes[label] / ("nested" if label == 2 else "") / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(image)
    (folder / classes[0] / "notes.txt").write_text("not an image")  # ignored, as torchvision does
    templates = write_lines(tmp_path / "templates.txt", TEMPLATES)
    out = tmp_path / "zs.json"
    p = run(vitamin_cli, "eval", "zeroshot", "-m", ckpt, "--data", folder, "--templates", templates, "--json", out)
    assert p.returncode == 0, p.stderr
    got = json.loads(out.read_text())
    assert got["task"] == "zeroshot_classification" and got["n_images"] == N_IMAGES and got["n_classes"] == 6
    want = reference_zeroshot(model, img, labels, classes)
    for key, value in want.items():
        assert got["metrics"][key] == pytest.approx(value, abs=1e-12), (key, got, want)
    # Non-trivial on this data: not everything right, not everything wrong.
    assert 0 < want["acc5"] and want["acc1"] < 1
    assert "top-1 accuracy" in p.stdout and "mean per-class recall" in p.stdout


def test_zeroshot_table_with_names_and_indices(vitamin_cli, setup, tmp_path):
    """A CSV whose labels mix class indices and names, with one class that has
    no images (it must drop out of the per-class mean, as in sklearn)."""
    model, ckpt, d, images, img = setup
    labels = [[0, 1, 2, 3, 4][i % 5] for i in range(N_IMAGES)]
    rows = ["filepath,label"]
    for i, (image, label) in enumerate(zip(images, labels)):
        cell = str(label) if i % 2 else CLASSES[label]
        rows.append(f"images/{image.name},\"{cell}\"")
    table = write_lines(d / "zs.csv", rows)  # relative paths: resolved beside the table
    classnames = write_lines(tmp_path / "classes.txt", CLASSES)
    templates = write_lines(tmp_path / "templates.txt", TEMPLATES)
    p = run(vitamin_cli, "eval", "zeroshot", "-m", ckpt, "--data", table, "--csv-separator", ",",
            "--classnames", classnames, "--templates", templates, "--json", "-", "--batch", "5", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    want = reference_zeroshot(model, img, labels)
    for key, value in want.items():
        assert got["metrics"][key] == pytest.approx(value, abs=1e-12), (key, got, want)


def clip_benchmark_recall(scores, positive_pairs, k):
    """clip_benchmark.metrics.zeroshot_retrieval.recall_at_k, then (recall > 0).mean()."""
    k = min(k, scores.shape[1])
    topk = torch.topk(scores, k, dim=1)[1]
    hits = torch.nn.functional.one_hot(topk, num_classes=scores.shape[1]).sum(dim=1)
    return float(((hits * positive_pairs).sum(dim=1) > 0).double().mean())


def test_retrieval_matches_open_clip(vitamin_cli, setup, tmp_path):
    import open_clip

    model, ckpt, d, images, img = setup
    words = ["a cat", "a dog on a street", "red balloons", "a diagram", "x-ray of a hand", "Ünïcödé 🙂",
             "the big tree", "colourful painting"]
    rows, pairs = ["filepath\ttitle"], []
    for i in range(len(images)):
        for j in range(1 + i % 3):  # 1 to 3 captions per image, rows not grouped
            caption = f"{words[(i * 3 + j) % len(words)]} number {i} {j}"
            pairs.append((i, caption))
    order = np.random.default_rng(1).permutation(len(pairs))
    pairs = [pairs[o] for o in order]
    for i, caption in pairs:
        rows.append(f"images/{images[i].name}\t{caption}")
    table = write_lines(d / "pairs.tsv", rows)
    out = tmp_path / "r.json"
    p = run(vitamin_cli, "eval", "retrieval", "-m", ckpt, "--data", table, "--json", out, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    got = json.loads(out.read_text())
    assert got["n_images"] == N_IMAGES and got["n_texts"] == len(pairs)

    with torch.no_grad():
        txt = model.encode_text(open_clip.get_tokenizer("ViTamin-S")([c for _, c in pairs]), normalize=True)
    scores = txt @ img.T
    positive = torch.zeros_like(scores, dtype=torch.long)
    for t, (i, _) in enumerate(pairs):
        positive[t, i] = 1
    for k in (1, 5, 10):
        assert got["metrics"][f"image_retrieval_recall@{k}"] == pytest.approx(
            clip_benchmark_recall(scores, positive, k), abs=1e-12), (k, got)
        assert got["metrics"][f"text_retrieval_recall@{k}"] == pytest.approx(
            clip_benchmark_recall(scores.T, positive.T, k), abs=1e-12), (k, got)
    values = [got["metrics"][f"image_retrieval_recall@{k}"] for k in (1, 5)]
    assert values[0] < 1 and values[1] > 0  # the data discriminates
    assert "image -> text" in p.stdout and "R@10" in p.stdout


@pytest.fixture
def error_case(setup, tmp_path):
    _, ckpt, d, images, _ = setup
    classes = write_lines(tmp_path / "classes.txt", CLASSES)

    def case(task, table_text, *extra, binary=False):
        table = tmp_path / "t.tsv"
        if binary:
            table.write_bytes(table_text)
        else:
            table.write_text(table_text.replace("IMG", str(images[0])), encoding="utf-8")
        args = ["eval", task, "-m", ckpt, "--data", table]
        if task == "zeroshot":
            args += ["--classnames", classes]
        return args + list(extra), str(table)
    return case


@pytest.mark.parametrize("task,text,needle", [
    ("retrieval", "filepath\tcaption\nIMG\ta cat\n", "has no column 'title' (columns: filepath, caption); choose one with --csv-caption-key"),
    ("zeroshot", "image\tlabel\nIMG\tcat\n", "has no column 'filepath'"),
    ("zeroshot", "filepath\tlabel\nIMG\tzebra\n", "row 1: label 'zebra' is neither a class index in [0, 6) nor one of the class names"),
    ("zeroshot", "filepath\tlabel\nIMG\t6\n", "label 6 is not a class index in [0, 6)"),
    ("retrieval", "filepath\ttitle\nIMG\ta cat\n/no/such/dir/x.jpg\ta dog\n", "row 2: image /no/such/dir/x.jpg"),
    ("retrieval", "filepath\ttitle\nIMG\t\"unterminated\n", "never ends"),
    ("retrieval", "filepath\ttitle\nIMG\ta\tb\n", "line 2: 3 fields but the header has 2"),
    ("retrieval", "filepath\ttitle\n", "has a header but no rows"),
])
def test_table_errors(vitamin_cli, error_case, task, text, needle):
    args, table = error_case(task, text)
    p = run(vitamin_cli, *args)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert needle in p.stderr and p.stderr.startswith("vitamin eval: "), p.stderr


def test_bad_utf8_in_table(vitamin_cli, error_case):
    args, table = error_case("retrieval", b"filepath\ttitle\nx.jpg\tcaf\xe9\n", binary=True)
    p = run(vitamin_cli, *args)
    assert p.returncode == 1 and f"{table} line 2: invalid UTF-8 (byte 0xe9" in p.stderr, p.stderr


def test_corrupt_image_named(vitamin_cli, error_case, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    args, _ = error_case("retrieval", f"filepath\ttitle\nIMG\ta cat\n{bad}\ta dog\n")
    p = run(vitamin_cli, *args)
    assert p.returncode == 1 and str(bad) in p.stderr, p.stderr


def test_folder_errors(vitamin_cli, setup, tmp_path):
    _, ckpt, _, images, _ = setup
    (tmp_path / "empty_root").mkdir()
    p = run(vitamin_cli, "eval", "zeroshot", "-m", ckpt, "--data", tmp_path / "empty_root")
    assert p.returncode == 1 and "no class subdirectories" in p.stderr, p.stderr
    (tmp_path / "f" / "a").mkdir(parents=True)
    (tmp_path / "f" / "b").mkdir()
    (tmp_path / "f" / "a" / "x.jpg").symlink_to(images[0])
    p = run(vitamin_cli, "eval", "zeroshot", "-m", ckpt, "--data", tmp_path / "f")
    assert p.returncode == 1 and "class directory" in p.stderr and "holds no images" in p.stderr, p.stderr
    (tmp_path / "f" / "b" / "y.png").symlink_to(images[1])
    classes = write_lines(tmp_path / "c.txt", ["one", "two", "three"])
    p = run(vitamin_cli, "eval", "zeroshot", "-m", ckpt, "--data", tmp_path / "f", "--classnames", classes)
    assert p.returncode == 1 and "lists 3 class names but" in p.stderr and "has 2 class directories" in p.stderr
    templates = write_lines(tmp_path / "t.txt", ["a photo of a cat"])
    p = run(vitamin_cli, "eval", "zeroshot", "-m", ckpt, "--data", tmp_path / "f", "--templates", templates)
    assert p.returncode == 1 and "line 1: template 'a photo of a cat' has no {}" in p.stderr, p.stderr


@pytest.mark.parametrize("args,needle", [
    (["eval"], "usage: vitamin eval"),
    (["eval", "segment"], "unknown task 'segment'"),
    (["eval", "zeroshot"], "no evaluation set"),
    (["eval", "retrieval", "--data", "x.csv", "--classnames", "c.txt"], "are for 'vitamin eval zeroshot'"),
    (["eval", "retrieval", "--data", "x.csv", "--csv-separator", "ab"], "--csv-separator takes one ASCII character"),
    (["eval", "zeroshot", "--data", "x.csv"], "give its class names with --classnames"),
    (["eval", "zeroshot", "--data", "x.csv", "--bogus"], "unexpected argument '--bogus'"),
])
def test_usage_errors(vitamin_cli, args, needle):
    p = run(vitamin_cli, *args)
    assert p.returncode == 2 and needle in p.stderr, (p.returncode, p.stderr)
