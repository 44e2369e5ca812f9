"""Writes the seed corpora for the checkpoint and JSON fuzz targets.

    .venv/bin/python tests/fuzz/make_checkpoint_corpus.py

tests/fuzz/corpus/checkpoint/ gets small real files (torch.save archives in
pickle protocols 2 and 4, wrapped and module state dicts, a ZIP64 and a DEFLATE
re-pack, safetensors) plus bare data.pkl pickles, which fuzz_checkpoint wraps in
an archive of ten 256-byte storages "0".."9" (so every tensor here stays under
256 bytes). tests/fuzz/corpus/json/ gets JSON documents. Every seed stays under
20 KB. Re-running rewrites the seeds (names are stable); it deletes nothing, so
entries merged in from fuzzing runs stay.
"""
import collections
import io
import json
import pathlib
import struct
import zipfile
import zlib

import torch
from safetensors.torch import save as safetensors_bytes

HERE = pathlib.Path(__file__).resolve().parent
CHECKPOINT_DIR = HERE / "corpus" / "checkpoint"
JSON_DIR = HERE / "corpus" / "json"
MAX_SEED = 20_000


def small_state_dict():
    base = torch.arange(16, dtype=torch.float32)
    sd = collections.OrderedDict()
    sd["w"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    sd["half"] = torch.tensor([1.0, -2.0], dtype=torch.float16)
    sd["bf16"] = torch.tensor([0.5, 3.0], dtype=torch.bfloat16)
    sd["step"] = torch.tensor(7, dtype=torch.int64)
    sd["logit_scale"] = torch.tensor(2.5)
    sd["t"] = torch.arange(6, dtype=torch.float32).reshape(3, 2).t()
    sd["shared.a"] = base[:4]
    sd["shared.b"] = base[10:]
    sd["cols"] = base.view(4, 4)[:, 1:3]
    sd["empty"] = torch.zeros(0, 2)
    sd["p"] = torch.nn.Parameter(torch.ones(3))
    return sd


def torch_bytes(obj, **kwargs):
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def data_pkl(archive):
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


def rezip(archive, compression):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w", compression) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return out.getvalue()


def zip64(archive):
    """Re-packs an archive with ZIP64 central records, as torch does above 4 GiB."""
    with zipfile.ZipFile(io.BytesIO(archive)) as src:
        items = [(i.filename, src.read(i.filename)) for i in src.infolist()]
    body, directory = bytearray(), bytearray()
    for name, data in items:
        encoded, crc, offset = name.encode(), zlib.crc32(data), len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, len(data), len(data), len(encoded), 0)
        body += encoded + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                                 0xFFFFFFFF, len(encoded), len(extra), 0, 0, 0, 0, 0xFFFFFFFF)
        directory += encoded + extra
    directory_offset, record_offset = len(body), len(body) + len(directory)
    tail = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(items), len(items), len(directory),
                       directory_offset)
    tail += struct.pack("<IIQI", 0x07064B50, 0, record_offset, 1)
    tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(body + directory + tail)


def checkpoint_seeds():
    sd = small_state_dict()
    plain = torch_bytes(sd)
    linear = torch.nn.Linear(3, 2)
    seeds = {
        "torch_p2.pt": plain,
        "torch_p4.pt": torch_bytes(sd, pickle_protocol=4),
        "torch_wrapped.pt": torch_bytes({"state_dict": sd, "epoch": 3, "name": "run"}),
        "torch_module.pt": torch_bytes(linear.state_dict()),
        "torch_params.pt": torch_bytes(linear.state_dict(keep_vars=True)),
        "torch_deflate.pt": rezip(plain, zipfile.ZIP_DEFLATED),
        "torch_unaligned.pt": rezip(plain, zipfile.ZIP_STORED),
        "torch_zip64.pt": zip64(plain),
        "safetensors_mixed.safetensors": safetensors_bytes(
            {k: v.detach().contiguous() for k, v in sd.items() if k not in ("shared.a", "shared.b", "cols")},
            metadata={"format": "pt"}),
        "safetensors_single.safetensors": safetensors_bytes({"x": torch.ones(2, 2)}),
    }
    for name in ("torch_p2.pt", "torch_p4.pt", "torch_wrapped.pt", "torch_params.pt"):
        seeds[name.replace(".pt", ".pkl")] = data_pkl(seeds[name])
    # A TorchScript archive (torch.jit.save of a traced module with a submodule),
    # and its data.pkl alone, which fuzz_checkpoint wraps as a TorchScript archive.
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3)), buf)
    seeds["torchscript_traced.pt"] = buf.getvalue()
    seeds["torchscript_traced.pkl"] = data_pkl(seeds["torchscript_traced.pt"])
    seeds["legacy_magic.bin"] = bytes.fromhex("80028a0a6cfc9c46f9206aa85019") + b"."
    return seeds


def json_seeds():
    image = safetensors_bytes({"a": torch.ones(2), "b": torch.zeros(1, 3).half()})
    header = json.loads(image[8:8 + struct.unpack("<Q", image[:8])[0]].decode())
    return {
        "safetensors_header.json": json.dumps(header),
        "config.json": json.dumps({"embed_dim": 384, "vision_cfg": {"timm_model_name": "vitamin_small_224",
                                   "image_size": 224, "patch_dropout": 0.0},
                                   "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 384,
                                                "heads": 6, "layers": 12, "proj_bias": False}}, indent=2),
        "strings.json": '["a\\"b\\\\c\\/d\\b\\f\\n\\r\\t", "\\u00e9\\u20ac", "\\ud83d\\ude00", "caf\u00e9 \U0001F600", ""]',
        "numbers.json": "[0, -0, 1.5, -2.25e-3, 1E400, 123456789012345678901234567890, 0.1e+2]",
        "literals.json": '{"t": true, "f": false, "n": null, "nested": [[[[{"k": [1, {}]}]]]]}',
        "deep.json": "[" * 64 + "]" * 64,
    }


def write(directory, seeds):
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        data = data.encode() if isinstance(data, str) else data
        assert len(data) < MAX_SEED, (name, len(data))
        (directory / name).write_bytes(data)


if __name__ == "__main__":
    write(CHECKPOINT_DIR, checkpoint_seeds())
    write(JSON_DIR, json_seeds())
    total = sum(p.stat().st_size for d in (CHECKPOINT_DIR, JSON_DIR) for p in d.rglob("*") if p.is_file())
    print(f"corpus: {total} bytes")
    assert total < 1_000_000
