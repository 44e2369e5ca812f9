#!/usr/bin/env bash
# The main job on a built-in default: set up, build, turn Fashion-MNIST (Debian's
# dataset-fashion-mnist) into an image-caption set, train a small ViTamin CLIP
# (ViTamin-Tiny) from scratch with contrastive loss, then report zero-shot
# top-1 on the 10,000 test images using only text prompts, classify a few
# test images, and plot loss and accuracy over the run.
#
# Everything lands under data/demo/fashion-mnist-run/ (checkpoints, train.jsonl,
# plot.png). Knobs: DEMO_EPOCHS (default 5), DEMO_THREADS (default all cores).
# The inference demo with a ViTamin-S checkpoint is scripts/demo_inference.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
make -j"$(nproc)" all >/dev/null
data=data/fashion-mnist
run=data/demo/fashion-mnist-run
build/vitamin dataset fashion-mnist --out "$data"
rm -rf "$run"
mkdir -p "$run"
echo "demo: training ViTamin-Tiny on 60,000 Fashion-MNIST images with captions (contrastive, from scratch)"
build/vitamin train --model ViTamin-Tiny --train-data "$data/train.csv" \
  --batch-size 256 --epochs "${DEMO_EPOCHS:-5}" --lr 2e-3 --wd 0.1 --warmup 100 --seed 0 \
  --drop-path 0 --threads "${DEMO_THREADS:-0}" \
  --save-dir "$run/checkpoints" --keep-last 2 --log "$run/train.jsonl" --log-every 50 --plot "$run/plot.png" \
  --zeroshot-data "$data/test.csv" --zeroshot-classnames "$data/classnames.txt" \
  --zeroshot-templates "$data/templates.txt" --eval-every 400
ckpt="$run/checkpoints/$(cat "$run/checkpoints/latest")"
build/vitamin eval zeroshot -m "$ckpt" --data "$data/test.csv" --classnames "$data/classnames.txt" \
  --templates "$data/templates.txt" --json "$run/zeroshot.json" >/dev/null
top1=$(sed -n 's/.*"acc1": *\([0-9.eE+-]*\).*/\1/p' "$run/zeroshot.json")
awk -v t="$top1" 'BEGIN { printf "zero-shot top-1: %.1f%%\n", 100 * t }'
echo "demo: a few test images, their top labels, and the true class:"
build/vitamin classify -m "$ckpt" --labels-file "$data/classnames.txt" --templates "$data/templates.txt" --top 2 \
  "$data"/test/00000.png "$data"/test/00001.png "$data"/test/00002.png "$data"/test/00003.png
awk -F'\t' 'NR == FNR { name[FNR - 1] = $0; next } FNR > 1 && FNR <= 5 { printf "  %s: true class %s\n", $1, name[$2] }' \
  "$data/classnames.txt" "$data/test.csv"
echo "demo: plot of loss and zero-shot accuracy: $run/plot.png; total time $(( $(date +%s) - start )) s"
