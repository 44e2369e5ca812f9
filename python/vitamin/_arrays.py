"""numpy / torch at the package's edge: inputs become contiguous numpy arrays
of the engine's dtype (zero-copy when they already are), outputs go back as
the kind of array the caller passed."""
from __future__ import annotations

import sys
from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any, dtype: Any, what: str, allowed: tuple = ()) -> np.ndarray:
    """A C-contiguous numpy array of `dtype` viewing `x` where its layout
    allows, else a copy. `allowed`: the other dtypes accepted and converted
    (token ids come as int64 from open_clip's tokenizer)."""
    if is_torch(x):
        # another device's tensor is copied to the CPU, where the engine runs
        x = x.detach().cpu().numpy()
    elif not isinstance(x, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array or torch tensor, got {type(x).__name__}")
    if x.dtype != dtype:
        if x.dtype not in [np.dtype(a) for a in allowed]:
            raise TypeError(f"{what}: dtype {x.dtype}, expected {np.dtype(dtype)}"
                            f" (convert with .astype(np.{np.dtype(dtype).name}) or .to(torch.{np.dtype(dtype).name}))")
    return np.ascontiguousarray(x, dtype=dtype)


def like_input(out: np.ndarray, template: Any) -> Any:
    """`out` as a torch tensor if the caller passed torch: sharing memory for
    a CPU tensor, copied back to the input's device otherwise."""
    if is_torch(template):
        import torch

        t = torch.from_numpy(out)
        return t if template.device.type == "cpu" else t.to(template.device)
    return out
