"""Checkpoint reading against real torch.save / safetensors output.

Each test writes a checkpoint with the reference libraries into a temporary
directory, runs build/testtools/ckpt_dump on it and compares every tensor's
name, dtype, shape, sum and first value (and, for the tricky ones, the raw
bytes) with what torch holds. The error-path tests check that broken, hostile
or foreign files exit 1 with a message: never a signal, never a hang.

Set CKPT_DUMP=/path/to/ckpt_dump to test another build of the tool.
"""
import collections
import io
import math
import os
import pathlib
import pickle
import struct
import subprocess
import zipfile

import pytest
import torch
import sys
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from vtpaths import BUILD  # noqa: E402

import safetensors.torch as safetensors_torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
CKPT_DUMP = pathlib.Path(os.environ.get("CKPT_DUMP", BUILD / "testtools" / "ckpt_dump"))

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def run_dump(*args):
    assert CKPT_DUMP.exists(), f"{CKPT_DUMP} missing: run `make` first"
    return subprocess.run([str(CKPT_DUMP), *map(str, args)], capture_output=True, text=True, timeout=30)


def dump(path):
    """Returns [(name, dtype, shape tuple, sum, first)] from ckpt_dump."""
    proc = run_dump(path)
    assert proc.returncode == 0, proc.stderr
    rows = []
    for line in proc.stdout.splitlines():
        name, dtype, shape, total, first = line.split("\t")
        dims = tuple(int(d) for d in shape.split(",")) if shape else ()
        rows.append((name, dtype, dims, float(total), float(first)))
    return rows


def tensors_of(obj):
    """The tensors ckpt_dump should report, in order: the state dict's items."""
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    return [(k, v) for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)]


def expected_row(name, tensor):
    t = tensor.detach()
    values = t.to(torch.float64).flatten()
    first = values[0].item() if values.numel() else math.nan
    return name, DTYPE_NAMES[t.dtype], tuple(t.shape), values.sum().item(), first


def assert_rows_match(got, expected, ordered=True):
    if not ordered:
        got, expected = sorted(got), sorted(expected)
    assert [r[:3] for r in got] == [r[:3] for r in expected]
    for g, e in zip(got, expected):
        assert math.isclose(g[3], e[3], rel_tol=1e-9, abs_tol=1e-9), (g, e)
        assert (math.isnan(g[4]) and math.isnan(e[4])) or g[4] == e[4], (g, e)


def raw_bytes(tensor):
    t = tensor.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def assert_raw_matches(path, name, tensor, tmp_path):
    out = tmp_path / f"{name}.raw"
    proc = run_dump("--raw", path, name, out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == raw_bytes(tensor), name


def assert_clean_failure(path, *needles):
    proc = run_dump(path)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("ckpt_dump: ") and len(proc.stderr) > 20, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    return proc.stderr


def mixed_state_dict():
    torch.manual_seed(0)
    base = torch.randn(4, 4)
    sd = collections.OrderedDict()
    sd["visual.trunk.pos_embed"] = torch.randn(1, 5, 8)
    sd["half"] = torch.randn(3, 7).half()
    sd["bf16"] = torch.randn(2, 9).bfloat16()
    sd["double"] = torch.randn(3).double()
    sd["long"] = torch.arange(-3, 4, dtype=torch.int64)
    sd["int8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["mask"] = torch.tensor([True, False, True])
    sd["logit_scale"] = torch.tensor(2.6592)
    sd["empty"] = torch.zeros(0, 3)
    sd["transposed"] = torch.randn(5, 3).t()
    sd["shared.a"] = base.flatten()[:3]
    sd["shared.b"] = base.flatten()[5:]
    sd["shared.cols"] = base[:, 1:3]
    sd["expanded"] = torch.randn(1, 3).expand(4, 3)  # stride 0: saved as the view
    sd["param"] = torch.nn.Parameter(torch.randn(6))
    return sd


@pytest.mark.parametrize("protocol", [None, 2, 4, 5])
def test_torch_state_dict(tmp_path, protocol):
    sd = mixed_state_dict()
    path = tmp_path / "model.bin"
    kwargs = {} if protocol is None else {"pickle_protocol": protocol}
    torch.save(sd, path, _use_new_zipfile_serialization=True, **kwargs)
    assert_rows_match(dump(path), [expected_row(k, v) for k, v in tensors_of(sd)])
    for name in ("transposed", "shared.b", "shared.cols", "expanded", "bf16", "logit_scale", "param"):
        assert_raw_matches(path, name, sd[name], tmp_path)
    assert run_dump("--verify", path).returncode == 0


def test_module_state_dict_with_metadata_and_parameters(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.BatchNorm1d(3))
    for keep_vars in (False, True):  # keep_vars=True pickles nn.Parameter objects
        sd = model.state_dict(keep_vars=keep_vars)
        path = tmp_path / f"module_{keep_vars}.pt"
        torch.save(sd, path)
        assert_rows_match(dump(path), [expected_row(k, v) for k, v in tensors_of(sd)])


def test_training_checkpoint_wrappers(tmp_path):
    model = torch.nn.Linear(5, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    model(torch.randn(3, 5)).sum().backward()
    optimizer.step()
    sd = collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    for wrapper in ("state_dict", "model"):
        ckpt = {"epoch": 3, "name": "run", wrapper: sd, "optimizer": optimizer.state_dict()}
        path = tmp_path / f"epoch_{wrapper}.pt"
        torch.save(ckpt, path)
        rows = dump(path)
        assert [r[0] for r in rows] == ["module.weight", "module.bias"]
        assert_rows_match(rows, [expected_row(k, v) for k, v in sd.items()])


def test_python_zipfile_rewrites(tmp_path):
    """Archives not written by torch: unaligned STORED and DEFLATE entries."""
    sd = mixed_state_dict()
    source = tmp_path / "torch.pt"
    torch.save(sd, source)
    expected = [expected_row(k, v) for k, v in tensors_of(sd)]
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = tmp_path / f"rezipped_{compression}.pt"
        with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", compression) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info.filename))
        assert_rows_match(dump(path), expected)
        assert_raw_matches(path, "shared.cols", sd["shared.cols"], tmp_path)


def test_safetensors_files(tmp_path):
    torch.manual_seed(1)
    tensors = {
        "a.weight": torch.randn(4, 3),
        "b.half": torch.randn(5).half(),
        "c.bf16": torch.randn(2, 2).bfloat16(),
        "d.long": torch.arange(3, dtype=torch.int64),
        "logit_scale": torch.tensor(4.6052),
        "z.empty": torch.zeros(0),
    }
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(tensors, str(path), metadata={"format": "pt"})
    expected = [expected_row(k, v) for k, v in tensors.items()]
    assert_rows_match(dump(path), expected, ordered=False)
    assert_raw_matches(path, "c.bf16", tensors["c.bf16"], tmp_path)


# ---------------------------------------------------------------- error paths

def saved_bytes(tmp_path):
    path = tmp_path / "valid.pt"
    torch.save(mixed_state_dict(), path)
    return path.read_bytes()


def test_truncated_files(tmp_path):
    torch_bytes = saved_bytes(tmp_path)
    st_path = tmp_path / "valid.safetensors"
    safetensors_torch.save_file({"w": torch.randn(64, 8), "b": torch.randn(8)}, str(st_path))
    st_bytes = st_path.read_bytes()
    for label, data in (("torch", torch_bytes), ("safetensors", st_bytes)):
        n = len(data)
        for cut in sorted({1, 7, 8, 12, n // 3, n // 2, n - 200, n - 23, n - 1}):
            path = tmp_path / f"{label}_cut{cut}"
            path.write_bytes(data[:cut])
            assert_clean_failure(path)


def test_bit_flipped_headers(tmp_path):
    st_path = tmp_path / "valid.safetensors"
    safetensors_torch.save_file({"w": torch.randn(4, 4)}, str(st_path))
    data = bytearray(st_path.read_bytes())
    header_length = struct.unpack("<Q", data[:8])[0]
    for offset, new in ((8, ord("[")), (9, 0xFF), (8 + header_length // 2, ord("\x01"))):
        flipped = bytearray(data)
        flipped[offset] = new
        path = tmp_path / "flipped.safetensors"
        path.write_bytes(bytes(flipped))
        assert_clean_failure(path)
    # Length field: claims more header than the file has.
    flipped = bytearray(data)
    flipped[3] = 0x40
    path = tmp_path / "length.safetensors"
    path.write_bytes(bytes(flipped))
    assert_clean_failure(path)
    # A flipped bit inside torch's data.pkl is caught by the entry's CRC-32.
    torch_bytes = bytearray(saved_bytes(tmp_path))
    with zipfile.ZipFile(io.BytesIO(bytes(torch_bytes))) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("/data.pkl"))
    local = info.header_offset
    name_length, extra_length = struct.unpack("<HH", torch_bytes[local + 26:local + 30])
    pickle_start = local + 30 + name_length + extra_length
    torch_bytes[pickle_start + info.file_size // 2] ^= 0x04
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(torch_bytes))
    assert_clean_failure(path, "CRC")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_disallowed_global_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": _Exploit(marker)}, protocol=2)
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
    message = assert_clean_failure(path, "not allowed")
    assert "posix.system" in message or "os.system" in message
    assert not marker.exists()
    # Protocol 4 goes through STACK_GLOBAL instead of GLOBAL.
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": _Exploit(marker)}, protocol=4))
    assert_clean_failure(path, "not allowed")
    assert not marker.exists()


def test_legacy_torch_format(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    assert_clean_failure(path, "re-save with torch.save(obj, path) from torch >= 1.6 or convert to safetensors")


def write_safetensors(path, header, data):
    encoded = header.encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)


def test_safetensors_bad_offsets(tmp_path):
    path = tmp_path / "bad.safetensors"
    cases = [
        '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}',   # beyond the 8 data bytes
        '{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}',    # begin > end
        '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}',    # span != numel * 4
        '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}',
        '{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}',
    ]
    for header in cases:
        write_safetensors(path, header, bytes(8))
        assert_clean_failure(path, "'w'")


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a checkpoint at all\n" * 10)
    assert_clean_failure(text, "not a checkpoint")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert_clean_failure(empty, "empty")
    assert_clean_failure(tmp_path / "missing.bin", "missing.bin")
    assert_clean_failure(tmp_path, "not a regular file")
    bare = tmp_path / "bare.pkl"
    bare.write_bytes(pickle.dumps({"w": 1}, protocol=2))
    assert_clean_failure(bare, "bare pickle")


@pytest.mark.skipif(not os.environ.get("VITAMIN_BIG_TESTS"),
                    reason="writes a 4.4 GB file; set VITAMIN_BIG_TESTS=1 to run")
def test_zip64_archive_over_4gib(tmp_path):
    """torch switches to ZIP64 records above 4 GiB (ViTamin-XL is 3.7 GB; larger models exist)."""
    big = torch.zeros(1_100_000_000)  # 4.4 GB
    big[-1] = 3.0
    sd = collections.OrderedDict(before=torch.arange(4.0), big=big, after=torch.tensor([1.5, -2.0]))
    path = tmp_path / "big.pt"
    torch.save(sd, path)
    assert path.stat().st_size > 2**32
    rows = dump(path)
    del big
    assert_rows_match(rows, [expected_row(k, v) for k, v in sd.items()])
    assert_raw_matches(path, "after", sd["after"], tmp_path)
