"""Training from Python: `vitamin.train(...)` and `python -m vitamin.train`,
with the CLI's flags (`python -m vitamin.train --help` lists them).

    vitamin.train(train_data="data/train.csv", model="ViTamin-S", epochs=5, batch_size=64,
                  lr=5e-4, logs="runs/s1", seed=0)
"""
from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

from ._cli import flags, main as _cli_main, run


def train(args: Optional[Sequence[str]] = None, **options: Any) -> None:
    """Runs `vitamin train` with `args` (CLI words) and/or keyword options
    (`batch_size=32` is `--batch-size 32`). Output streams to the terminal;
    a failed run raises vitamin.Error. Interrupted runs resume with
    `resume="latest"` as the CLI's `--resume latest`."""
    run(["train", *(args or []), *flags(options)])


if __name__ == "__main__":
    _cli_main(["train", *sys.argv[1:]])
