"""CLIP_benchmark (PyPI `clip-benchmark`) on vitamin.c models.

    python -m vitamin.clip_benchmark eval --model ViTamin-S --pretrained PATH \\
        --dataset wds/fashion_mnist --dataset_root DIR --task zeroshot_classification

is CLIP_benchmark's own CLI (its flags, its metrics, its JSON) with a model
type `vitamin` registered and chosen by default (`--model_type open_clip`
still runs open_clip). `load_vitamin` is the loader its `models/` registry
calls: it returns `(model, transform, tokenizer)` with torch tensors out, as
open_clip's loader does. Export local data for it with
`vitamin dataset export-wds`.

Under CLIP_benchmark's default `--amp`, torch's CPU autocast affects only the
classifier products CLIP_benchmark computes itself (the features come from
the engine in fp32); `--no_amp` keeps those in fp32 too."""
from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

from ._model import create_model_and_transforms
from ._tokenizer import get_tokenizer

MODEL_TYPE = "vitamin"


def load_vitamin(model_name: str, pretrained: Optional[str] = None, cache_dir: Optional[str] = None,
                 device: Any = "cpu", precision: str = "fp32", threads: Optional[int] = None):
    """CLIP_benchmark's loader contract: `(model, transform, tokenizer)`.
    `pretrained` is a checkpoint path (then `model_name` is its architecture)
    or None / "datacomp1b" for a released model by name (Hugging Face cache)."""
    if pretrained in ("", "None"):
        pretrained = None
    model, _, transform = create_model_and_transforms(model_name, pretrained=pretrained, precision=precision,
                                                      threads=threads, return_tensors="pt")
    model.to(device)
    tokenizer = get_tokenizer(model.name, context_length=model.context_length, return_tensors="pt")
    return model, transform, tokenizer


def register() -> None:
    """Adds the `vitamin` model type to CLIP_benchmark's loader registry."""
    import clip_benchmark.models as models

    models.TYPE2FUNC[MODEL_TYPE] = load_vitamin
    if MODEL_TYPE not in models.MODEL_TYPES:
        models.MODEL_TYPES.append(MODEL_TYPE)


def _numpy2_accuracy() -> None:
    """CLIP_benchmark 1.6.2's top-k accuracy calls float() on a one-element
    array, which NumPy >= 2.4 refuses (TypeError), so every zero-shot run
    fails there. Where that happens, the same sum is taken with .item()."""
    import torch
    from clip_benchmark.metrics import zeroshot_classification as zc

    try:
        zc.accuracy(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))
        return
    except TypeError:
        pass

    def accuracy(output, target, topk=(1,)):
        pred = output.topk(max(topk), 1, True, True)[1].t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        n = len(target)
        return [correct[:k].reshape(-1).float().sum().item() / n for k in topk]

    zc.accuracy = accuracy


def main(argv: Optional[Sequence[str]] = None) -> None:
    try:
        import clip_benchmark.cli as cli
    except ImportError as e:
        raise SystemExit(f"vitamin.clip_benchmark needs CLIP_benchmark: pip install clip-benchmark ({e})")
    register()
    _numpy2_accuracy()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "eval" and not any(a == "--model_type" or a.startswith("--model_type=") for a in args):
        args += ["--model_type", MODEL_TYPE]
    sys.argv = [sys.argv[0]] + args
    cli.main()


if __name__ == "__main__":
    main()
