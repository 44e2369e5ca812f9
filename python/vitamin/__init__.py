"""vitamin — ViTamin and open_clip ViT CLIP models on the vitamin.c engine,
with open_clip's API and no PyTorch needed (numpy only; torch tensors and PIL
images are accepted and returned where passed).

Start here:

    import vitamin
    model, preprocess_train, preprocess = vitamin.create_model_and_transforms(
        "ViTamin-S", pretrained="path/to/open_clip_pytorch_model.bin")
    tokenizer = vitamin.get_tokenizer("ViTamin-S")

    pixels = preprocess.batch(["cat.jpg", "dog.png"])        # float32 [2, 3, 224, 224]
    image_features = model.encode_image(pixels, normalize=True)
    text_features = model.encode_text(tokenizer(["a cat", "a dog"]), normalize=True)
    probs = softmax(model.logit_scale.exp() * image_features @ text_features.T)

    model.embed_images(["cat.jpg"])                           # decode + preprocess + encode in C

`model_name` may be a checkpoint file or directory (open_clip, transformers
CLIPModel, OpenAI TorchScript), a hub repo ("hf-hub:jienengchen/ViTamin-S")
or a released model's name ("ViTamin-L-384", from the Hugging Face cache or
downloaded); list_models() names every architecture. Also:
vitamin.train(...) / python -m vitamin.train (the CLI's `vitamin train`),
vitamin.eval_zeroshot / eval_retrieval, python -m vitamin.clip_benchmark
(CLIP_benchmark with a `vitamin` model type), python -m vitamin (the CLI).

Errors from the engine raise vitamin.Error subclasses with its message:
FileError (an OSError), InputError (a ValueError), ModelError.
"""
from ._core import Error, FileError, InputError, ModelError
from ._model import (CLIP, LogitScale, Visual, create_model, create_model_and_transforms,
                     create_model_from_pretrained, list_models)
from ._tokenizer import Tokenizer, get_tokenizer
from ._transforms import Preprocess, PreprocessTrain
from .evaluate import eval_retrieval, eval_zeroshot
from .train import train

__all__ = [
    "CLIP", "Error", "FileError", "InputError", "LogitScale", "ModelError", "Preprocess", "PreprocessTrain",
    "Tokenizer", "Visual", "create_model", "create_model_and_transforms", "create_model_from_pretrained",
    "eval_retrieval", "eval_zeroshot", "get_tokenizer", "list_models", "train",
]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vitamin-c")
    except Exception:
        return "unknown"


__version__ = _version()
