"""Training checkpoints (src/train/train_checkpoint*.c, model/config_json.c):
bit-exact round trips, open_clip reading what we write (create_model from our
open_clip_config.json, strict load_state_dict), open_clip's epoch_N.pt with a
real torch AdamW state, keep-last pruning, SIGKILL at every stage of a save,
a full disk, and corrupt files. Driven through tests/tools/train_ckpt_tool.c."""
import json
import math
import os
import signal
import subprocess

import numpy as np
import pytest
from vtpaths import need  # noqa: E402

TINY = "ViTamin-Tiny"
# The smallest size there is (the 49408-token embedding dominates): for the
# tests that save many times, to keep them quick.
SMALL = "ViTamin-C8-N1-16"
# Where a crash must leave a usable checkpoint (train_checkpoint.h).
SAVE_STAGES = ["dir_created", "model_written", "config_written", "optimizer_written", "state_written", "renamed",
               "latest_written", "pruned"]


@pytest.fixture(scope="module")
def tool(build_dir):
    path = build_dir / "testtools" / "train_ckpt_tool"
    assert path.exists(), f"{path} missing: run make"

    def run(*args, expect_ok=True):
        p = subprocess.run([str(path), *map(str, args)], capture_output=True, text=True, timeout=120)
        if expect_ok:
            assert p.returncode == 0, p.stderr
            return json.loads(p.stdout)
        return p

    return run


def load_dump(prefix):
    out = {k: np.load(f"{prefix}.{k}.npy").reshape(-1) for k in ("values", "exp_avg", "exp_avg_sq")
           if os.path.exists(f"{prefix}.{k}.npy")}
    with open(f"{prefix}.table.json") as f:
        out["table"] = json.load(f)
    return out


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def tensor(dump, key, entry):
    return dump[key][entry["offset"]:entry["offset"] + entry["count"]]


def leftovers(save_dir):
    return sorted(n for n in os.listdir(save_dir) if ".tmp." in n)


# ---------------------------------------------------------------- round trip


def test_round_trip_is_bit_exact(tool, tmp_path):
    run = tmp_path / "run"
    args = {"lr": 5e-4, "name": "quote\" and \\ back", "betas": [0.9, 0.98], "lock": None, "bf16": True}
    saved = tool("save", "--model", TINY, "--save-dir", run, "--step", 1000, "--fill-seed", 3,
                 "--seed", 2**64 - 1, "--samples", 2**53 - 1, "--skipped", 17, "--loss", "2.345678912345678",
                 "--args", json.dumps(args), "--dump", tmp_path / "a")
    assert saved["saved"] == str(run / "step_00001000")
    assert (run / "latest").read_text() == "step_00001000\n"
    assert sorted(os.listdir(run / "step_00001000")) == ["open_clip_config.json", "open_clip_model.safetensors",
                                                         "optimizer.safetensors", "state.json"]
    got = tool("load", "--model", TINY, "--resume", "latest", "--save-dir", run, "--dump", tmp_path / "b")
    a, b = load_dump(tmp_path / "a"), load_dump(tmp_path / "b")
    for key in ("values", "exp_avg", "exp_avg_sq"):
        assert same_bits(a[key], b[key]), key
        assert np.any(a[key] != 0) and np.any(np.signbit(a[key]) & (a[key] == 0)) == (key != "exp_avg_sq")
    assert got["resolved"] == str(run / "step_00001000")
    assert (got["step"], got["samples_seen"], got["skipped"]) == (1000, 2**53 - 1, 17)
    assert got["seed"] == str(2**64 - 1)
    assert float.fromhex(got["last_loss_hex"]) == 2.345678912345678
    assert got["args"] == args and got["warning"] == ""
    # A directory, a save directory and the model file alone resolve too; the
    # file alone has no moments or state.
    assert tool("load", "--model", TINY, "--resume", run / "step_00001000")["step"] == 1000
    assert tool("load", "--model", TINY, "--resume", run)["step"] == 1000
    only = tool("load", "--model", TINY, "--resume", run / "step_00001000" / "open_clip_model.safetensors",
                "--dump", tmp_path / "c")
    c = load_dump(tmp_path / "c")
    assert only["step"] == 0 and same_bits(c["values"], a["values"]) and not np.any(c["exp_avg"])


def test_weights_only_save_and_nan_loss(tool, tmp_path):
    run = tmp_path / "run"
    tool("save", "--model", TINY, "--save-dir", run, "--step", 3, "--no-moments", "--loss", "nan")
    assert not (run / "step_00000003" / "optimizer.safetensors").exists()
    got = tool("load", "--model", TINY, "--resume", "latest", "--save-dir", run, "--dump", tmp_path / "d")
    assert got["step"] == 3 and got["last_loss"] is None and got["args"] is None
    assert "optimizer.safetensors" in got["warning"]
    assert not np.any(load_dump(tmp_path / "d")["exp_avg_sq"])


# ---------------------------------------------------------------- open_clip_config.json


@pytest.mark.parametrize("model", ["ViTamin-Tiny", "ViTamin-S", "ViTamin-S-LTT", "ViTamin-B", "ViTamin-L2-384",
                                   "ViTamin-XL-384", "ViTamin-C96-N8", "ViTamin-C64-N4-128"])
def test_config_json_reads_back(tool, tmp_path, model):
    got = tool("config", "--model", model, "--out", tmp_path / "open_clip_config.json")
    assert got["name"].lower() == model.lower() or model.startswith("ViTamin-C")
    cfg = json.loads((tmp_path / "open_clip_config.json").read_text())
    assert set(cfg) == {"model_cfg", "preprocess_cfg", "vitamin_cfg"}
    assert {"embed_dim", "vision_cfg", "text_cfg", "custom_text"} <= set(cfg["model_cfg"])
    if model == TINY:  # the name tests/reference/tiny_models.py registers in timm
        assert cfg["model_cfg"]["vision_cfg"]["timm_model_name"] == "vitamin_tiny_32"


def register_timm_trunk(config_path):
    """Registers the timm trunk an open_clip_config.json names, built from its
    vitamin_cfg, when timm has no model of that name (ViTamin-Tiny, custom sizes)."""
    from timm.models import is_model, register_model
    from timm.models.vitamin import GeGluMlp, VitCfg, VitConvCfg, _create_vitamin

    cfg = json.loads(open(config_path).read())
    vision, v = cfg["model_cfg"]["vision_cfg"], cfg["vitamin_cfg"]
    name = vision["timm_model_name"]
    if is_model(name):
        return

    def trunk(pretrained=False, **kwargs):
        embed_cfg = VitCfg(embed_dim=(*v["stage_widths"], v["width"]), depths=(*v["stage_depths"], 1),
                           stem_width=v["stem_width"], conv_cfg=VitConvCfg(norm_layer="layernorm2d", norm_eps=1e-6),
                           head_type="1d")
        args = dict(img_size=vision["image_size"], embed_dim=v["width"], depth=v["depth"], num_heads=v["heads"],
                    mlp_layer=GeGluMlp, mlp_ratio=v["mlp_hidden"] / v["width"], class_token=False, global_pool="avg",
                    embed_cfg=embed_cfg, pos_embed="learn" if v["pos_embed"] else "none")
        return _create_vitamin(name, pretrained=pretrained, **dict(args, **kwargs))

    trunk.__name__ = name
    register_model(trunk)


@pytest.mark.parametrize("model", [TINY, "ViTamin-S"])
def test_open_clip_loads_saved_checkpoint(tool, tmp_path, vitamin_cli, model):
    import open_clip
    import torch

    torch.set_num_threads(1)
    run = tmp_path / "run"
    tool("save", "--model", model, "--save-dir", run, "--step", 7, "--no-moments", "--dump", tmp_path / "a")
    ckpt = run / "step_00000007"
    if model == TINY:
        # No timm name: built from our json's vitamin_cfg; create_model("local-dir:")
        # reads open_clip_config.json and loads our safetensors with strict=True.
        register_timm_trunk(ckpt / "open_clip_config.json")
        oc = open_clip.create_model(f"local-dir:{ckpt}")
    else:
        from safetensors.torch import load_file

        oc = open_clip.create_model(model)
        oc.load_state_dict(load_file(str(ckpt / "open_clip_model.safetensors")), strict=True)
    a = load_dump(tmp_path / "a")
    sd = oc.state_dict()
    assert sorted(sd) == sorted(e["name"] for e in a["table"])
    for e in a["table"]:
        want = tensor(a, "values", e)
        assert same_bits(sd[e["name"]].numpy().reshape(-1), want), e["name"]
    # vitamin.c's inference loader rebuilds the config from the json beside the
    # weights: from vitamin_cfg (Tiny: timm has no name for it), and from the
    # timm name alone in an open_clip-made json without vitamin_cfg (S).
    if model != TINY:
        cfg = json.loads((ckpt / "open_clip_config.json").read_text())
        del cfg["vitamin_cfg"]
        (ckpt / "open_clip_config.json").write_text(json.dumps(cfg))
    info = subprocess.run([vitamin_cli, "info", "-m", str(ckpt / "open_clip_model.safetensors")], capture_output=True,
                          text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert f"model:        {model}" in info.stdout


# ---------------------------------------------------------------- open_clip epoch_N.pt


def open_clip_optimizer(model, groups="open_clip"):
    """open_clip_train/main.py's AdamW."""
    import torch

    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731
    named = list(model.named_parameters())
    if groups == "single":
        return torch.optim.AdamW([p for _, p in named], lr=1e-3)
    gain_or_bias = [p for n, p in named if exclude(n, p) and p.requires_grad]
    rest = [p for n, p in named if not exclude(n, p) and p.requires_grad]
    return torch.optim.AdamW([{"params": gain_or_bias, "weight_decay": 0.0}, {"params": rest, "weight_decay": 0.2}],
                             lr=1e-3, betas=(0.9, 0.98), eps=1e-6)


@pytest.fixture(scope="module")
def tiny_open_clip(tool, tmp_path_factory):
    import open_clip
    import torch

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("tiny_cfg")
    tool("config", "--model", TINY, "--out", d / "open_clip_config.json")
    register_timm_trunk(d / "open_clip_config.json")
    return lambda: open_clip.create_model(f"local-dir:{d}")


def write_epoch(model, opt, path, steps):
    import torch

    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        opt.zero_grad()
        img = model.encode_image(torch.randn(2, 3, 32, 32, generator=gen))
        txt = model.encode_text(torch.randint(0, 49408, (2, 77), generator=gen))
        (img.square().sum() + (img * txt).sum()).backward()  # logit_scale gets no gradient: no state
        opt.step()
    sd = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 1, "name": "t", "state_dict": sd, "optimizer": opt.state_dict()}, path)


def test_open_clip_epoch_pt_moments(tool, tmp_path, tiny_open_clip):
    model = tiny_open_clip()
    opt = open_clip_optimizer(model)
    write_epoch(model, opt, tmp_path / "epoch_1.pt", steps=2)
    got = tool("load", "--model", TINY, "--resume", tmp_path / "epoch_1.pt", "--dump", tmp_path / "e")
    assert got["warning"] == "" and got["step"] == 2
    e = load_dump(tmp_path / "e")
    params = dict(model.named_parameters())
    assert "logit_scale" not in {n for n, p in params.items() if p in opt.state}
    for entry in e["table"]:
        p = params[entry["name"]]
        assert same_bits(tensor(e, "values", entry), p.detach().numpy().reshape(-1)), entry["name"]
        st = opt.state.get(p)
        for key in ("exp_avg", "exp_avg_sq"):
            want = st[key].numpy().reshape(-1) if st else np.zeros(entry["count"], np.float32)
            assert same_bits(tensor(e, key, entry), want), (entry["name"], key)
    assert np.any(e["exp_avg_sq"])
    # A truncated file and a non-finite moment are errors naming the file / tensor.
    data = (tmp_path / "epoch_1.pt").read_bytes()
    (tmp_path / "epoch_cut.pt").write_bytes(data[:len(data) * 2 // 3])
    p = tool("load", "--model", TINY, "--resume", tmp_path / "epoch_cut.pt", expect_ok=False)
    assert p.returncode == 1 and "epoch_cut.pt" in p.stderr, p.stderr
    name = "visual.trunk.blocks.1.mlp.w2.weight"
    opt.state[params[name]]["exp_avg"].view(-1)[5] = float("inf")
    write_epoch(model, opt, tmp_path / "epoch_inf.pt", steps=0)
    p = tool("load", "--model", TINY, "--resume", tmp_path / "epoch_inf.pt", expect_ok=False)
    assert p.returncode == 1 and "epoch_inf.pt" in p.stderr and f"exp_avg for '{name}'" in p.stderr, p.stderr


def test_epoch_pt_with_other_grouping_loads_weights_only(tool, tmp_path, tiny_open_clip):
    model = tiny_open_clip()
    write_epoch(model, open_clip_optimizer(model, "single"), tmp_path / "epoch_1.pt", steps=1)
    got = tool("load", "--model", TINY, "--resume", tmp_path / "epoch_1.pt", "--dump", tmp_path / "e")
    assert "param groups" in got["warning"] and "moments start at zero" in got["warning"]
    assert got["step"] == 0
    e = load_dump(tmp_path / "e")
    assert not np.any(e["exp_avg"]) and not np.any(e["exp_avg_sq"])
    params = dict(model.named_parameters())
    for entry in e["table"]:
        assert same_bits(tensor(e, "values", entry), params[entry["name"]].detach().numpy().reshape(-1))


# ---------------------------------------------------------------- keep_last, replacing a step


def test_keep_last_and_resave(tool, tmp_path):
    run = tmp_path / "run"
    for step in range(1, 6):
        tool("save", "--model", SMALL, "--save-dir", run, "--step", step, "--no-moments", "--keep-last", 2)
    assert sorted(os.listdir(run)) == ["latest", "step_00000004", "step_00000005"]
    # A restarted run saving an older step: latest names it, and neither it nor
    # the newest step is pruned, even with keep_last 1.
    tool("save", "--model", SMALL, "--save-dir", run, "--step", 3, "--no-moments", "--keep-last", 1)
    assert sorted(os.listdir(run)) == ["latest", "step_00000003", "step_00000005"]
    assert tool("load", "--model", SMALL, "--resume", "latest", "--save-dir", run)["step"] == 3
    # Saving a step that exists replaces it whole.
    tool("save", "--model", SMALL, "--save-dir", run, "--step", 3, "--fill-seed", 9, "--dump", tmp_path / "new")
    tool("load", "--model", SMALL, "--resume", "latest", "--save-dir", run, "--dump", tmp_path / "got")
    assert same_bits(load_dump(tmp_path / "new")["values"], load_dump(tmp_path / "got")["values"])
    assert same_bits(load_dump(tmp_path / "new")["exp_avg"], load_dump(tmp_path / "got")["exp_avg"])
    assert leftovers(run) == []


# ---------------------------------------------------------------- crashes


@pytest.fixture(scope="module")
def crash_dumps(tool, tmp_path_factory):
    """Values of the checkpoint before the crash (seed 1) and of the one being saved (seed 2)."""
    d = tmp_path_factory.mktemp("crash_ref")
    for seed in (1, 2):
        tool("save", "--model", SMALL, "--save-dir", d / f"ref{seed}", "--step", seed, "--fill-seed", seed,
             "--dump", d / f"seed{seed}")
    return {seed: load_dump(d / f"seed{seed}") for seed in (1, 2)}


@pytest.mark.parametrize("stage", SAVE_STAGES)
def test_sigkill_during_save(tool, tmp_path, crash_dumps, stage):
    run = tmp_path / "run"
    tool("save", "--model", SMALL, "--save-dir", run, "--step", 1, "--fill-seed", 1)
    p = tool("save", "--model", SMALL, "--save-dir", run, "--step", 2, "--fill-seed", 2, "--keep-last", 1,
             "--die-at", stage, expect_ok=False)
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)
    # `latest` names a complete checkpoint: the old one until it is switched, then the new one.
    got = tool("load", "--model", SMALL, "--resume", "latest", "--save-dir", run, "--dump", tmp_path / "got")
    new = stage in ("latest_written", "pruned")
    assert got["step"] == (2 if new else 1)
    want, have = crash_dumps[2 if new else 1], load_dump(tmp_path / "got")
    for key in ("values", "exp_avg", "exp_avg_sq"):
        assert same_bits(want[key], have[key]), key
    if stage != "pruned":  # the previous checkpoint is untouched until the new one is in place
        old = tool("load", "--model", SMALL, "--resume", run / "step_00000001", "--dump", tmp_path / "old")
        assert old["step"] == 1 and same_bits(load_dump(tmp_path / "old")["values"], crash_dumps[1]["values"])
    # The next save cleans up the leftovers of the killed one.
    tool("save", "--model", SMALL, "--save-dir", run, "--step", 3, "--no-moments", "--keep-last", 1)
    assert leftovers(run) == []
    assert tool("load", "--model", SMALL, "--resume", "latest", "--save-dir", run)["step"] == 3


def test_resolve_ignores_leftover_temp_dirs(tool, tmp_path):
    run = tmp_path / "run"
    tool("save", "--model", SMALL, "--save-dir", run, "--step", 4, "--no-moments")
    os.rename(run / "step_00000004", run / "step_00000009.tmp.4194303")  # a dead pid's half-written save
    os.remove(run / "latest")
    p = tool("load", "--model", SMALL, "--resume", "latest", "--save-dir", run, expect_ok=False)
    assert p.returncode == 1 and "nothing to resume" in p.stderr
    tool("save", "--model", SMALL, "--save-dir", run, "--step", 5, "--no-moments")
    os.remove(run / "latest")  # a crash before the first `latest`: the newest step_N is used
    assert tool("load", "--model", SMALL, "--resume", "latest", "--save-dir", run)["step"] == 5
    assert leftovers(run) == []


def test_full_disk_keeps_old_checkpoint(tool, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    # One weights-only checkpoint of SMALL is 10 MB: the second does not fit.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
    need(mounted.returncode == 0, "cannot mount a small tmpfs here (needs root)")
    try:
        run = mnt / "run"
        tool("save", "--model", SMALL, "--save-dir", run, "--step", 1, "--no-moments", "--fill-seed", 1,
             "--dump", tmp_path / "a")
        p = tool("save", "--model", SMALL, "--save-dir", run, "--step", 2, "--no-moments", "--fill-seed", 2,
                 expect_ok=False)
        assert p.returncode == 1
        assert "disk full" in p.stderr and "step_00000002" in p.stderr, p.stderr
        assert sorted(os.listdir(run)) == ["latest", "step_00000001"]
        got = tool("load", "--model", SMALL, "--resume", "latest", "--save-dir", run, "--dump", tmp_path / "b")
        assert got["step"] == 1
        assert same_bits(load_dump(tmp_path / "a")["values"], load_dump(tmp_path / "b")["values"])
    finally:
        subprocess.run(["umount", str(mnt)])


# ---------------------------------------------------------------- corrupt files, wrong models


@pytest.fixture(scope="module")
def good_checkpoint(tool, tmp_path_factory):
    run = tmp_path_factory.mktemp("good") / "run"
    tool("save", "--model", TINY, "--save-dir", run, "--step", 1)
    return run / "step_00000001"


def corrupted_copy(src, dst, name, edit):
    import shutil

    shutil.copytree(src, dst)
    path = dst / name
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(edit(data)))
    return dst


def safetensors_nan(data):
    n = int.from_bytes(data[:8], "little")
    header = json.loads(bytes(data[8:8 + n]))
    begin = header["text.ln_final.weight"]["data_offsets"][0] if "text.ln_final.weight" in header else \
        header["exp_avg.text.ln_final.weight"]["data_offsets"][0]
    data[8 + n + begin + 4:8 + n + begin + 8] = np.float32("nan").tobytes()
    return data


@pytest.mark.parametrize("name,edit,message", [
    ("open_clip_model.safetensors", lambda d: d[:len(d) // 2], "open_clip_model.safetensors"),
    ("optimizer.safetensors", lambda d: d[:len(d) - 100], "optimizer.safetensors"),
    ("open_clip_model.safetensors", safetensors_nan, "text.ln_final.weight"),
    ("optimizer.safetensors", safetensors_nan, "exp_avg.text.ln_final.weight"),
    ("state.json", lambda d: d[:len(d) // 2], "state.json"),
    ("open_clip_config.json", lambda d: d.replace(b'"heads": 2,\n      "layers"', b'"heads": 4,\n      "layers"'),
     "this run builds ViTamin-Tiny"),
])
def test_corrupt_checkpoint_is_an_error_naming_it(tool, tmp_path, good_checkpoint, name, edit, message):
    bad = corrupted_copy(good_checkpoint, tmp_path / "bad", name, edit)
    p = tool("load", "--model", TINY, "--resume", bad, expect_ok=False)
    assert p.returncode == 1 and message in p.stderr, p.stderr


def test_other_model_is_an_error(tool, good_checkpoint):
    p = tool("load", "--model", "ViTamin-C8-N1-16", "--resume", good_checkpoint, expect_ok=False)
    assert p.returncode == 1 and "ViTamin-Tiny" in p.stderr and "--model" in p.stderr, p.stderr


def test_resolve_errors(tool, tmp_path):
    p = tool("load", "--model", TINY, "--resume", "latest", expect_ok=False)
    assert p.returncode == 1 and "--save-dir" in p.stderr
    p = tool("load", "--model", TINY, "--resume", tmp_path / "nope", expect_ok=False)
    assert p.returncode == 1 and "nope" in p.stderr
    (tmp_path / "latest").write_text("step_00000042\n")
    p = tool("load", "--model", TINY, "--resume", "latest", "--save-dir", tmp_path, expect_ok=False)
    assert p.returncode == 1 and "step_00000042" in p.stderr
    (tmp_path / "latest").write_text("../../etc\n")
    p = tool("load", "--model", TINY, "--resume", "latest", "--save-dir", tmp_path, expect_ok=False)
    assert p.returncode == 1 and "latest" in p.stderr
