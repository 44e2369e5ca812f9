"""Writes an open_clip ViTamin checkpoint with random weights (fixed seed), in
the official layout, for demos and benchmarks where the real weights are not
available. Usage: make_random_checkpoint.py MODEL OUT_DIR [--format bin|safetensors]"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
from refmodel import build_model, save_checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--format", choices=["bin", "safetensors"], default="bin")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    model = build_model(args.model, args.seed)
    name = "pytorch_model.bin" if args.format == "bin" else "open_clip_model.safetensors"
    save_checkpoint(model, os.path.join(args.out_dir, name), args.format)
    print(os.path.join(args.out_dir, name))


if __name__ == "__main__":
    main()
