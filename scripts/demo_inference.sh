#!/usr/bin/env bash
# The main job on a built-in default: set up, build, then run ViTamin-S
# zero-shot classification and embeddings on sample photos with vitamin.c, and
# check the embeddings against open_clip on the same files.
#
# Real weights cannot be downloaded on every machine, so by default the demo
# uses ViTamin-S with random weights (labels are then meaningless, parity is
# not). With the released weights:
#   VITAMIN_MODEL=path/to/ViTamin-S/pytorch_model.bin scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j"$(nproc)" all >/dev/null
model=${VITAMIN_MODEL:-}
if [ -z "$model" ]; then
  model=data/demo/ViTamin-S-random/pytorch_model.bin
  [ -s "$model" ] || .venv/bin/python scripts/make_random_checkpoint.py ViTamin-S "$(dirname "$model")" >/dev/null
  echo "demo: using ViTamin-S with RANDOM weights ($model); set VITAMIN_MODEL to a real checkpoint"
fi
photos=$(.venv/bin/python -c "import skimage, os; d=os.path.join(os.path.dirname(skimage.__file__), 'data'); print(' '.join(os.path.join(d, f) for f in ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg']))")
echo "== vitamin info -m $model"
build/vitamin info -m "$model"
echo "== vitamin classify (top 3)"
# shellcheck disable=SC2086
build/vitamin classify -m "$model" --labels "astronaut,cat,cup of coffee,rocket,dog,car" --top 3 $photos
echo "== vitamin embed -> data/demo/embeddings.npy, compared with open_clip"
args=()
for p in $photos; do args+=(--image "$p"); done
build/vitamin embed -m "$model" "${args[@]}" --text "a photo of an astronaut" --text "a cat" -o data/demo/embeddings.npy
[ -n "${VITAMIN_MODEL:-}" ] && exit 0  # the open_clip comparison below assumes the default ViTamin-S
.venv/bin/python - "$model" data/demo/embeddings.npy $photos <<'PY'
import sys, numpy as np, torch, open_clip
from PIL import Image
ckpt, emb, photos = sys.argv[1], sys.argv[2], sys.argv[3:]
model = open_clip.create_model("ViTamin-S", pretrained=ckpt).eval()
pre = open_clip.image_transform(224, is_train=False)
tok = open_clip.get_tokenizer("ViTamin-S")
with torch.no_grad():
    ref = torch.cat([model.encode_image(torch.stack([pre(Image.open(p)) for p in photos]), normalize=True),
                     model.encode_text(tok(["a photo of an astronaut", "a cat"]), normalize=True)]).numpy()
got = np.load(emb)
print(f"vitamin.c vs open_clip on {len(photos)} images + 2 texts: max |diff| = {np.abs(got - ref).max():.2e}")
PY
