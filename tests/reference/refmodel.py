"""Reference side of the parity tests: builds open_clip ViTamin models with
random weights (fixed seed), saves them in the official checkpoint layouts and
computes the reference outputs, including per-stage activations.

Every parameter is randomised (biases and LayerNorm affines too, which a fresh
open_clip model leaves at 0/1), so a loader that drops or swaps a tensor cannot
pass. Weights keep open_clip's init scale so activations stay unit-scale."""
import os

import numpy as np
import torch

torch.set_num_threads(2)


def build_model(name, seed=0):
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    model.eval()
    return randomize(model, seed)


def randomize(model, seed=0):
    """Every parameter random at its init scale, in place (see the module doc);
    LayerScale gammas around 0.5, so that a swapped ls_1/ls_2 shows."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname == "logit_scale":
                p.fill_(float(np.log(1 / 0.07)) + 0.3)
            elif p.ndim == 1 and ("norm" in pname or "ln_" in pname):
                if pname.endswith("weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("bias") or "bias" in pname:
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("gamma"):
                p.copy_(0.5 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "pos_embed" in pname or "positional_embedding" in pname or "class_embedding" in pname:
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    return model


def save_checkpoint(model, path, fmt="bin", layout="open_clip", dtype=torch.float32):
    """fmt: 'bin' (torch.save zip, as the HF pytorch_model.bin) or 'safetensors'.
    layout: 'open_clip' (text.*), 'plain_clip' (text keys at top level),
    'module' (DDP prefix + {'state_dict': ...} wrapper, like epoch_N.pt)."""
    sd = {k: v.detach().to(dtype).contiguous().clone() for k, v in model.state_dict().items()}
    if layout == "plain_clip":
        sd = {(k[len("text."):] if k.startswith("text.") else k): v for k, v in sd.items()}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(sd, path)
    elif layout == "module":
        torch.save({"epoch": 3, "name": "test", "state_dict": {"module." + k: v for k, v in sd.items()}}, path)
    else:
        from collections import OrderedDict

        torch.save(OrderedDict(sd), path)


def random_pixels(model, n, seed=0):
    # The trunk's own size: for ViTamin-XL-384 open_clip's config says 256 (spec
    # open_clip model_configs/ViTamin-XL-384.json) while the trunk is built for 384, which is what vitamin.c runs.
    size = model.visual.trunk.patch_embed.img_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=gen)


def random_tokens(n, seed=0, context=77):
    import open_clip

    tok = open_clip.get_tokenizer("ViTamin-S")
    rng = np.random.default_rng(seed)
    words = ["a", "photo", "of", "the", "cat", "dog", "big", "small", "red", "car", "on", "street", "diagram",
             "with", "many", "colourful", "balloons", "in", "sky", "tree", "x-ray", "painting", "ÿ", "你好", "🙂"]
    texts = []
    for i in range(n):
        length = [1, 3, 8, 20, 90][i % 5]
        texts.append(" ".join(rng.choice(words, size=length)))
    return texts, tok(texts, context_length=context)


def reference_image_trace(model, pixels):
    """Image features and per-stage activations (NHWC / [B, N, D], as the C trace)."""
    trunk = model.visual.trunk
    acts = {}

    def keep(name, nchw):
        def hook(_m, _i, out):
            acts[name] = (out.permute(0, 2, 3, 1) if nchw else out).detach().clone().numpy()
        return hook

    backbone = trunk.patch_embed.backbone
    handles = [backbone.stem.register_forward_hook(keep("stem", True)),
               backbone.stages[0].register_forward_hook(keep("stage1", True)),
               backbone.stages[1].register_forward_hook(keep("stage2", True))]
    for i, blk in enumerate(trunk.blocks):
        handles.append(blk.register_forward_hook(keep(f"block{i}", False)))
    with torch.no_grad():
        feats = model.encode_image(pixels)
    for h in handles:
        h.remove()
    return feats.numpy(), acts


def reference_text_features(model, ids):
    with torch.no_grad():
        return model.encode_text(ids).numpy()


def write_npy(path, array):
    np.save(path, np.ascontiguousarray(array, dtype=np.float32))
    return path


def make_case(tmpdir, name, n_images=2, n_texts=5, seed=0, fmt="bin", layout="open_clip", dtype=torch.float32):
    """Builds model + checkpoint + inputs + reference outputs in tmpdir."""
    model = build_model(name, seed)
    os.makedirs(tmpdir, exist_ok=True)
    ckpt = os.path.join(tmpdir, "model." + ("safetensors" if fmt == "safetensors" else "bin"))
    save_checkpoint(model, ckpt, fmt, layout, dtype)
    if dtype != torch.float32:
        # The reference must run the same (rounded) weights the file holds.
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(dtype).to(torch.float32))
    pixels = random_pixels(model, n_images, seed)
    feats, acts = reference_image_trace(model, pixels)
    texts, ids = random_tokens(n_texts, seed)
    text_feats = reference_text_features(model, ids) if n_texts else None
    return dict(model=model, ckpt=ckpt, pixels=pixels.numpy(), image_features=feats, acts=acts, texts=texts,
                ids=ids.numpy(), text_features=text_feats)
