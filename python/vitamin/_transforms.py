"""open_clip's image transforms, run by the C engine: decode (JPEG/PNG/WebP),
Pillow-exact bicubic resize in the image's own mode, crop, RGB, normalise."""
from __future__ import annotations

import io
import os
from typing import Any, Iterable, Union

import numpy as np

from . import _core
from ._arrays import is_torch

# Pillow modes a PNG holds losslessly: such images go to the engine as PNG
# bytes, so it resizes them in their own mode as open_clip's transform does.
_PNG_MODES = {"1", "L", "LA", "P", "RGBA", "I;16"}

ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray, Any]


def image_source(image: ImageInput, index: int = 0):
    """What `_core.preprocess` takes for one image: a path, encoded bytes or
    (uint8 RGB pixels, width, height)."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return image
    if isinstance(image, np.ndarray) or is_torch(image):
        a = image.numpy() if is_torch(image) else image
        if a.dtype != np.uint8:
            raise TypeError(f"image {index}: pixel array of dtype {a.dtype}; expected uint8 HWC RGB "
                            "(a float array is already preprocessed: use encode_image)")
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)  # L -> RGB replicates, as Pillow's convert
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"image {index}: pixel array of shape {a.shape}; expected [H, W, 3] RGB or [H, W] gray")
        a = np.ascontiguousarray(a)
        return (a, a.shape[1], a.shape[0])
    if hasattr(image, "mode") and hasattr(image, "size") and hasattr(image, "tobytes"):  # a PIL image
        if image.mode == "RGB":
            a = np.asarray(image)
            return (np.ascontiguousarray(a), image.size[0], image.size[1])
        if image.mode in _PNG_MODES:
            buf = io.BytesIO()
            image.save(buf, format="PNG", compress_level=0)
            return buf.getvalue()
        # CMYK, YCbCr, F, I, ...: converted to RGB before the resize (open_clip
        # converts after it; rounding may differ by a level).
        rgb = np.asarray(image.convert("RGB"))
        return (np.ascontiguousarray(rgb), image.size[0], image.size[1])
    raise TypeError(f"image {index}: {type(image).__name__} is not an image; pass a path, encoded bytes, "
                    "a PIL image or a uint8 [H, W, 3] array")


class _Transform:
    def __init__(self, image_size: int, return_tensors: str = "np", threads: int = 0):
        if return_tensors not in ("np", "pt"):
            raise ValueError(f"return_tensors={return_tensors!r}: use 'np' (numpy) or 'pt' (torch)")
        self.image_size = int(image_size)
        self.return_tensors = return_tensors
        self.threads = int(threads or 0)

    def _crop(self, n: int):
        return None

    def batch(self, images: Iterable[ImageInput]):
        """Many images at once, decoded in parallel: float32 `[n, 3, S, S]`."""
        items = tuple(image_source(im, i) for i, im in enumerate(images))
        out = np.empty((len(items), 3, self.image_size, self.image_size), np.float32)
        crop = self._crop(len(items))
        if crop is None:
            _core.preprocess(items, self.image_size, out, self.threads)
        else:
            _core.preprocess(items, self.image_size, out, self.threads, crop)
        if self.return_tensors == "pt":
            import torch

            return torch.from_numpy(out)
        return out

    def __call__(self, image: ImageInput):
        """One image: float32 `[3, S, S]` (a torch tensor with return_tensors="pt")."""
        return self.batch([image])[0]


class Preprocess(_Transform):
    """open_clip's eval transform (`preprocess_val`): Resize(S, bicubic) in the
    image's own mode, CenterCrop(S), RGB, ToTensor, Normalize(CLIP mean/std)."""

    def __repr__(self) -> str:
        return f"vitamin.Preprocess(image_size={self.image_size}) # Resize+CenterCrop, bicubic, CLIP mean/std"


class PreprocessTrain(_Transform):
    """open_clip's train transform (`preprocess_train`): RandomResizedCrop(S,
    scale=(0.9, 1.0), bicubic), RGB, ToTensor, Normalize. The crops come from
    vitamin's counter RNG keyed by (seed, epoch, sample) — the n-th image this
    object sees is sample n — so a seed gives the same crops everywhere."""

    def __init__(self, image_size: int, seed: int = 0, epoch: int = 0, scale=(0.9, 1.0),
                 return_tensors: str = "np", threads: int = 0):
        super().__init__(image_size, return_tensors, threads)
        self.seed, self.epoch = int(seed), int(epoch)
        self.scale = (float(scale[0]), float(scale[1]))
        self.sample = 0

    def _crop(self, n: int):
        first = self.sample
        self.sample += n
        return (self.seed & (2**64 - 1), self.epoch, first, self.scale[0], self.scale[1])

    def __repr__(self) -> str:
        return (f"vitamin.PreprocessTrain(image_size={self.image_size}, seed={self.seed}, scale={self.scale})"
                " # RandomResizedCrop, bicubic, CLIP mean/std")
