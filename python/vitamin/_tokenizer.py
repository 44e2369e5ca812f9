"""open_clip's CLIP BPE tokenizer (the C one: ftfy + html cleaning, the CLIP
regex, byte BPE), with open_clip's call shape."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from . import _core

DEFAULT_CONTEXT_LENGTH = 77


class Tokenizer:
    """`tokenizer(texts)` -> int64 ids `[n, context_length]`: `[SOT] tokens [EOT]`,
    truncated with EOT last, zero-padded, as `open_clip.get_tokenizer(name)`.
    `return_tensors="pt"` gives a torch LongTensor, as open_clip's does."""

    def __init__(self, context_length: int = DEFAULT_CONTEXT_LENGTH, vocab_path: Optional[str] = None,
                 return_tensors: str = "np"):
        if return_tensors not in ("np", "pt"):
            raise ValueError(f"return_tensors={return_tensors!r}: use 'np' (numpy) or 'pt' (torch)")
        self.context_length = int(context_length)
        self.return_tensors = return_tensors
        self._core = _core.Tokenizer(vocab_path)

    def __call__(self, texts: Union[str, Sequence[str]], context_length: Optional[int] = None):
        if isinstance(texts, str):
            texts = [texts]
        texts = tuple(texts)
        ctx = self.context_length if context_length is None else int(context_length)
        ids = np.empty((len(texts), ctx), np.int32)
        self._core.tokenize(texts, ctx, ids)
        ids = ids.astype(np.int64)
        if self.return_tensors == "pt":
            import torch

            return torch.from_numpy(ids)
        return ids

    def __repr__(self) -> str:
        return f"vitamin.Tokenizer(context_length={self.context_length}, return_tensors={self.return_tensors!r})"


def get_tokenizer(model_name: Optional[str] = None, context_length: Optional[int] = None,
                  return_tensors: str = "np", vocab_path: Optional[str] = None) -> Tokenizer:
    """The tokenizer of `model_name` (its context length; every model here uses
    the CLIP BPE vocabulary), as `open_clip.get_tokenizer`. None: context 77."""
    if context_length is None:
        context_length = _core.describe(model_name)["context_length"] if model_name else DEFAULT_CONTEXT_LENGTH
    return Tokenizer(context_length, vocab_path=vocab_path, return_tensors=return_tensors)
