"""Makes vitamin.c's ViTamin-Tiny (not a released model, so neither timm nor
open_clip knows it) constructible in the reference: registers a timm trunk
`vitamin_tiny_32` built exactly like timm's vitamin_small_224 with the Tiny
numbers from src/model/config.c, and an open_clip config `ViTamin-Tiny`."""
import json
import pathlib
import tempfile

TINY = dict(c0=16, c1=16, c2=32, width=96, depth=2, heads=2, image_size=32, embed_dim=96,
            text_width=96, text_heads=2, text_layers=2, context_length=77)


def register():
    import open_clip
    import timm
    from timm.models import vitamin as tv
    from timm.models._registry import _model_entrypoints

    if "vitamin_tiny_32" not in _model_entrypoints:
        def vitamin_tiny_32(pretrained=False, **kwargs):
            embed_cfg = tv.VitCfg(embed_dim=(TINY["c1"], TINY["c2"], TINY["width"]), depths=(2, 4, 1),
                                  stem_width=TINY["c0"],
                                  conv_cfg=tv.VitConvCfg(norm_layer="layernorm2d", norm_eps=1e-6), head_type="1d")
            args = dict(embed_dim=TINY["width"], depth=TINY["depth"], num_heads=TINY["heads"],
                        mlp_layer=tv.GeGluMlp, mlp_ratio=2.0, class_token=False, global_pool="avg",
                        embed_cfg=embed_cfg, img_size=TINY["image_size"])
            return tv._create_vitamin("vitamin_tiny_32", pretrained=False, **dict(args, **kwargs))
        vitamin_tiny_32.__module__ = tv.__name__
        timm.models.register_model(vitamin_tiny_32)
    cfg = {
        "embed_dim": TINY["embed_dim"],
        "vision_cfg": {"timm_model_name": "vitamin_tiny_32", "timm_model_pretrained": False, "timm_pool": "",
                       "timm_proj": "linear", "timm_drop": 0.0, "timm_drop_path": 0.1,
                       "image_size": TINY["image_size"]},
        "text_cfg": {"context_length": TINY["context_length"], "vocab_size": 49408, "width": TINY["text_width"],
                     "heads": TINY["text_heads"], "layers": TINY["text_layers"]},
        "custom_text": True,
    }
    d = pathlib.Path(tempfile.mkdtemp(prefix="vitamin_tiny_cfg_"))
    (d / "ViTamin-Tiny.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d)
