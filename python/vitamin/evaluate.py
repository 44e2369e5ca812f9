"""Evaluation from Python with the CLI's metrics (clip_benchmark's names):
`vitamin.eval_zeroshot` and `vitamin.eval_retrieval` return the dict
`vitamin eval ... --json` writes."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Union

from ._cli import flags, run
from ._model import CLIP


def _model_flags(model: Union[CLIP, str, "os.PathLike[str]"]) -> List[str]:
    if isinstance(model, CLIP):
        args = ["-m", model.path, "--model-name", model.name]
        if model.precision == "bf16":
            args.append("--bf16")
        if model.threads:
            args += ["--threads", str(model.threads)]
        return args
    return ["-m", os.fspath(model)]


def _evaluate(task: str, model, data, options: Dict[str, Any]) -> Dict[str, Any]:
    proc = run(["eval", task, *_model_flags(model), "--data", os.fspath(data), *flags(options), "--json", "-"],
               capture=True)
    return json.loads(proc.stdout)


def eval_zeroshot(model: Union[CLIP, str], data: Union[str, "os.PathLike[str]"], **options: Any) -> Dict[str, Any]:
    """Zero-shot classification (open_clip's template-ensembled classifier) on
    an ImageFolder directory or a CSV/TSV table. Options are the CLI's:
    `classnames=`, `templates=`, `batch=`, `csv_img_key=`, ...; the result
    holds `metrics` = {acc1, acc5, mean_per_class_recall}."""
    return _evaluate("zeroshot", model, data, options)


def eval_retrieval(model: Union[CLIP, str], data: Union[str, "os.PathLike[str]"], **options: Any) -> Dict[str, Any]:
    """Image-text retrieval recall@1/5/10 both ways on a CSV/TSV of image and
    caption columns (`csv_caption_key=`, ...), as clip_benchmark computes it."""
    return _evaluate("retrieval", model, data, options)
