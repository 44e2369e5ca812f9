"""open_clip's model API over the C engine: create_model_and_transforms,
encode_image / encode_text, the visual tower's numbers."""
from __future__ import annotations

import math
import os
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._arrays import like_input, to_numpy
from ._transforms import ImageInput, Preprocess, PreprocessTrain


class LogitScale(float):
    """open_clip's `model.logit_scale` is the stored log of the similarity
    scale; this float is that log, with `.exp()` as on the torch parameter."""

    def exp(self) -> float:
        return math.exp(self)

    def item(self) -> float:
        return float(self)


class Visual:
    """`model.visual`: the image tower's numbers (and, as in open_clip, its
    own encoder: `model.visual(x)` is `model.encode_image(x)`)."""

    def __init__(self, model: "CLIP"):
        self._model = model
        info = model._info
        self.image_size: Tuple[int, int] = (info["image_size"], info["image_size"])
        self.output_dim: int = info["embed_dim"]
        self.width: int = info["width"]
        self.grid_size: Tuple[int, int] = (info["token_grid"], info["token_grid"])

    def __call__(self, x):
        return self._model.encode_image(x)

    STAGE_LAYERS = {"stem": 1000, "stage1": 1001, "stage2": 1002}

    def forward_intermediates(self, x, indices: Union[int, Sequence[int], None] = None, norm: bool = False,
                              stop_early: bool = False, output_fmt: str = "NCHW", intermediates_only: bool = False,
                              return_prefix_tokens: bool = False, stages: bool = False):
        """timm's `VisionTransformer.forward_intermediates` on the engine:
        the outputs of transformer blocks `indices` (an int n: the last n;
        a list: those blocks, negative from the end; None: all), in block
        order, as NCHW maps `[B, width, grid, grid]` or NLC tokens, through
        the final norm with `norm=True` (a ViT's ln_post; ViTamin's is
        Identity). A ViT's class token is split off as timm does
        (`return_prefix_tokens` gives (tokens, prefix) pairs). Returns
        (final tokens `[B, N, width]`, intermediates), or the list alone
        with `intermediates_only`. `stages=True` (ViTamin) puts the conv
        maps first: stem, stage 1, stage 2 at stride 2, 4, 8 (NCHW; the
        strides FC-CLIP's backbone takes below the stride-16 tokens).
        `stop_early` is accepted for timm's signature; the engine always
        runs the whole tower."""
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt={output_fmt!r}: 'NCHW' or 'NLC', as timm")
        m = self._model
        depth = m._info["depth"]
        if depth == 0:  # a tower without transformer blocks (ConvNeXt): the engine says what it lacks
            m._core.layer_shape(-1, 1)
        if indices is None:
            indices = depth
        if isinstance(indices, int):
            if not 0 < indices <= depth:
                raise ValueError(f"indices={indices}: take the last 1..{depth} blocks")
            take = list(range(depth - indices, depth))
        else:
            take = []
            for i in indices:
                idx = depth + int(i) if int(i) < 0 else int(i)
                if not 0 <= idx < depth:
                    raise ValueError(f"block index {i} outside {self._model.name}'s {depth} blocks")
                take.append(idx)
            take = sorted(set(take))
        conv = [self.STAGE_LAYERS[k] for k in ("stem", "stage1", "stage2")] if stages else []
        # the final tokens go through the final norm whatever `norm` says, as timm's
        layers = conv + take + ([] if intermediates_only else [depth - 1])
        norms = [False] * len(conv) + [bool(norm)] * len(take) + ([] if intermediates_only else [True])
        pixels = m._pixels(x, "forward_intermediates")
        n = pixels.shape[0]
        outs = [np.empty(m._core.layer_shape(layer, n), np.float32) for layer in layers]
        m._core.intermediates(pixels, n, tuple(layers), tuple(norms), tuple(outs), m.threads)
        g = self.grid_size
        prefix = outs[len(conv)].shape[1] - g[0] * g[1]
        result = [like_input(out, x) for out in outs[:len(conv)]]
        for t in outs[len(conv):len(conv) + len(take)]:
            spatial, pre = t[:, prefix:], t[:, :prefix]
            if output_fmt == "NCHW":
                spatial = np.ascontiguousarray(spatial.reshape(n, g[0], g[1], -1).transpose(0, 3, 1, 2))
            spatial = like_input(np.ascontiguousarray(spatial), x)
            result.append((spatial, like_input(np.ascontiguousarray(pre), x)) if return_prefix_tokens and prefix
                          else spatial)
        if intermediates_only:
            return result
        return like_input(outs[-1], x), result

    def __repr__(self) -> str:
        return f"vitamin.Visual(image_size={self.image_size}, output_dim={self.output_dim}, width={self.width})"


class CLIP:
    """A loaded CLIP model. Safe to use from several Python threads at once:
    the weights are read-only and the GIL is released while the engine runs.
    Inputs are numpy arrays or torch tensors; outputs are of the same kind
    (a CPU tensor shares the result's memory; another device's tensor is
    copied to the CPU, where the engine runs, and the result copied back)."""

    def __init__(self, path: str, model_name: Optional[str] = None, precision: str = "fp32",
                 threads: Optional[int] = None, image_size: Optional[int] = None,
                 fallback_model_name: Optional[str] = None):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision={precision!r}: vitamin.c runs 'fp32' or 'bf16'")
        if threads is not None and (not isinstance(threads, int) or threads < 0):
            raise ValueError(f"threads={threads!r}: a thread count >= 1, or None for all cores")
        self._core = _core.Model(os.fspath(path), model_name, precision == "bf16", int(image_size or 0),
                                 fallback_model_name)
        self._info = self._core.info()
        self.path = os.fspath(path)
        self.precision = precision
        self.threads = threads or 0
        self.visual = Visual(self)
        self.logit_scale = LogitScale(math.log(self._info["logit_scale"]))
        self.context_length: int = self._info["context_length"]
        self.embed_dim: int = self._info["embed_dim"]

    # --- what open_clip users call -------------------------------------

    @property
    def name(self) -> str:
        return self._info["name"]

    @property
    def notes(self) -> List[str]:
        """What loading decided that a user should hear (config fallbacks, ...)."""
        return [line for line in self._info["notes"].splitlines() if line]

    def _pixels(self, image, what: str) -> np.ndarray:
        x = to_numpy(image, np.float32, what)
        s = self._info["image_size"]
        if x.ndim != 4 or x.shape[1:] != (3, s, s):
            raise ValueError(f"{what}: pixels of shape {tuple(x.shape)}; {self.name} takes [B, 3, {s}, {s}] "
                             "(run images through preprocess_val, or use embed_images for files and PIL images)")
        return x

    def encode_image(self, image, normalize: bool = False):
        """Image features from preprocessed pixels float32 `[B, 3, S, S]`
        (what `preprocess_val` makes) -> `[B, embed_dim]`."""
        x = self._pixels(image, "encode_image")
        out = np.empty((x.shape[0], self.embed_dim), np.float32)
        self._core.encode_pixels(x, x.shape[0], bool(normalize), out, self.threads)
        return like_input(out, image)

    def encode_text(self, text, normalize: bool = False):
        """Text features from token ids `[B, L]` (int64 from `get_tokenizer`,
        or int32), L <= context_length -> `[B, embed_dim]`."""
        ids = to_numpy(text, np.int64, "encode_text", allowed=(np.int32, np.int16, np.uint8, np.uint16, np.uint32))
        ctx = self.context_length
        if ids.ndim != 2 or ids.shape[1] > ctx or ids.shape[1] < 1:
            raise ValueError(f"encode_text: tokens of shape {tuple(ids.shape)}; {self.name} takes [B, L] with "
                             f"1 <= L <= {ctx} (use vitamin.get_tokenizer)")
        if ids.size and (ids.min() < 0 or ids.max() >= 2**31):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise ValueError(f"encode_text: token id {bad} is outside the vocabulary")
        if ids.shape[1] < ctx:
            # Zero-padded to the context, as the tokenizer pads (attention is
            # causal and the EOT token is pooled, so the padding is inert).
            ids = np.pad(ids, ((0, 0), (0, ctx - ids.shape[1])))
        ids32 = np.ascontiguousarray(ids, dtype=np.int32)
        out = np.empty((ids.shape[0], self.embed_dim), np.float32)
        self._core.encode_tokens(ids32, ids.shape[0], bool(normalize), out, self.threads)
        return like_input(out, text)

    def __call__(self, image=None, text=None):
        """As open_clip's forward: (normalised image features, normalised text
        features, logit_scale.exp())."""
        img = self.encode_image(image, normalize=True) if image is not None else None
        txt = self.encode_text(text, normalize=True) if text is not None else None
        return img, txt, self.logit_scale.exp()

    # --- beyond open_clip ------------------------------------------------

    def embed_images(self, images: Iterable[ImageInput], normalize: bool = False, return_tensors: str = "np"):
        """Decode + open_clip's eval transform + encode, in C: paths, encoded
        bytes, PIL images or uint8 `[H, W, 3]` arrays -> `[n, embed_dim]`."""
        pixels = Preprocess(self._info["image_size"], threads=self.threads).batch(images)
        out = np.empty((pixels.shape[0], self.embed_dim), np.float32)
        self._core.encode_pixels(pixels, pixels.shape[0], bool(normalize), out, self.threads)
        if return_tensors == "pt":
            import torch

            return torch.from_numpy(out)
        return out

    def patch_features(self, image, normalize_tokens: bool = False):
        """The last transformer block's patch tokens `[B, grid*grid, width]`
        (before pooling); `normalize_tokens`: after the tower's per-token norm,
        as forward_intermediates(normalize_intermediates=True)."""
        x = self._pixels(image, "patch_features")
        g = self._info["token_grid"]
        out = np.empty((x.shape[0], g * g, self._info["width"]), np.float32)
        self._core.patch_features(x, x.shape[0], bool(normalize_tokens), out, self.threads)
        return like_input(out, image)

    def dense_embeddings(self, image, normalize: bool = True):
        """Dense image-text embeddings `[B, grid*grid, embed_dim]`: each patch
        token of the last block through the tower's head (ViTamin: fc_norm +
        head.proj; a ViT: ln_post + proj), L2-normalised — what FC-CLIP's
        `clip_vis_dense` and F-ViT compare with text embeddings."""
        x = self._pixels(image, "dense_embeddings")
        g = self._info["token_grid"]
        out = np.empty((x.shape[0], g * g, self.embed_dim), np.float32)
        self._core.dense(x, x.shape[0], bool(normalize), out, self.threads)
        return like_input(out, image)

    def dense_embeddings_sliding(self, image, stride: Optional[int] = None, normalize: bool = True):
        """Dense embeddings of one large preprocessed image `[3, H, W]` (or
        `[1, 3, H, W]`): model-size windows every `stride` pixels (default
        half a window), the last ones flush with the far edge, overlapping
        predictions averaged, then normalised -> `[H/p, W/p, embed_dim]`
        with p the token stride (16 for ViTamin, a ViT's patch size)."""
        x = to_numpy(image, np.float32, "dense_embeddings_sliding")
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"dense_embeddings_sliding: an image of shape {tuple(x.shape)}; expected [3, H, W]")
        p, s = self._info["patch_stride"], self._info["image_size"]
        if stride is None:  # half a window, rounded down to whole tokens (at least one)
            stride = max(s // 2 // p * p, p)
        stride = int(stride)
        h, w = x.shape[1], x.shape[2]
        out = np.empty((max(h // p, 1), max(w // p, 1), self.embed_dim), np.float32)
        self._core.dense_sliding(np.ascontiguousarray(x), h, w, stride, bool(normalize), out, self.threads)
        return like_input(out, image)

    def close(self) -> None:
        """Frees the weights now (calls still running finish first)."""
        self._core.close()

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- torch.nn.Module manners that evaluation code expects -------------

    def eval(self) -> "CLIP":
        return self

    def train(self, mode: bool = True) -> "CLIP":
        if mode:
            raise NotImplementedError("a vitamin.CLIP model runs inference only; train with vitamin.train(...)")
        return self

    def to(self, device: Any = None, dtype: Any = None, **kw) -> "CLIP":
        """A no-op kept for torch code: the engine computes on the CPU; tensors
        from another device are copied in and results go back to that device."""
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "CLIP":
        return self

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.precision}, {self.threads or 'all'} threads"
        return f"vitamin.CLIP({self.name!r} from {self.path!r}; {state})"


def list_models() -> List[str]:
    """The architectures vitamin.c builds, by open_clip name."""
    return _core.list_models()


def _resolve(name_or_path: str, pretrained: Optional[str], offline: bool, revision: Optional[str]):
    """(checkpoint path, forced architecture or None, fallback architecture or None)."""
    if pretrained is None or pretrained == "datacomp1b":
        path, released_as, _ = _core.resolve(os.fspath(name_or_path), offline, False, revision)
        return path, None, released_as or None
    path, _, _ = _core.resolve(os.fspath(pretrained), offline, False, revision)
    return path, name_or_path, None


def create_model(model_name: str, pretrained: Optional[str] = None, precision: str = "fp32",
                 threads: Optional[int] = None, force_image_size: Optional[int] = None, offline: bool = False,
                 revision: Optional[str] = None) -> CLIP:
    """A model as `open_clip.create_model`: `model_name` is a checkpoint file or
    directory, a hub repo (`hf-hub:jienengchen/ViTamin-S`) or a released
    model's name (`ViTamin-L-384`: from the Hugging Face cache, downloaded when
    missing); with `pretrained` a checkpoint path, `model_name` names its
    architecture. vitamin.c loads weights only (no random init)."""
    if precision not in ("fp32", "bf16"):  # before any download
        raise ValueError(f"precision={precision!r}: vitamin.c runs 'fp32' or 'bf16'")
    path, forced, fallback = _resolve(model_name, pretrained, offline, revision)
    return CLIP(path, model_name=forced, precision=precision, threads=threads, image_size=force_image_size,
                fallback_model_name=fallback)


def create_model_and_transforms(model_name: str, pretrained: Optional[str] = None, precision: str = "fp32",
                                threads: Optional[int] = None, force_image_size: Optional[int] = None,
                                offline: bool = False, revision: Optional[str] = None, seed: int = 0,
                                return_tensors: str = "np") -> Tuple[CLIP, PreprocessTrain, Preprocess]:
    """`(model, preprocess_train, preprocess_val)` as open_clip's. The
    transforms return numpy arrays, or torch tensors with return_tensors="pt"."""
    model = create_model(model_name, pretrained, precision, threads, force_image_size, offline, revision)
    size = model.visual.image_size[0]
    return (model, PreprocessTrain(size, seed=seed, return_tensors=return_tensors, threads=model.threads),
            Preprocess(size, return_tensors=return_tensors, threads=model.threads))


def create_model_from_pretrained(model_name: str, pretrained: Optional[str] = None, **kw) -> Tuple[CLIP, Preprocess]:
    """`(model, preprocess_val)` as open_clip's create_model_from_pretrained."""
    model, _, preprocess = create_model_and_transforms(model_name, pretrained, **kw)
    return model, preprocess
