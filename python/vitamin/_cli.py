"""The `vitamin` CLI binary shipped inside the package: the console script,
`python -m vitamin`, and the runner behind vitamin.train / vitamin.eval_*.

Training and evaluation run the CLI as a child process rather than in the
interpreter: a run owns its threads, its signal handling (a kill leaves the
last atomic checkpoint, and resumes from it) and, under mpirun, its ranks —
none of which belong inside a Python process that may hold other libraries'
thread pools. Flags are the CLI's own, so both spell the same thing."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence

from . import _core


def binary() -> str:
    """The CLI's path: $VITAMIN_CLI if set, else the copy inside the package."""
    env = os.environ.get("VITAMIN_CLI")
    path = env or os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "vitamin")
    if not os.access(path, os.X_OK):
        raise _core.Error(f"the vitamin CLI is missing at {path} (reinstall the package with `pip install .`"
                          + (", or unset VITAMIN_CLI" if env else "") + ")")
    return path


def flags(options: Dict[str, Any]) -> List[str]:
    """Keyword arguments as CLI flags: `train_data="x"` -> `--train-data x`,
    `True` -> a bare flag, `False` / `None` -> left out, lists comma-joined."""
    args: List[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return args


def run(args: Sequence[str], capture: bool = False) -> subprocess.CompletedProcess:
    """Runs `vitamin ARGS`; a non-zero exit raises vitamin.Error with the
    CLI's message (its stderr)."""
    proc = subprocess.run([binary(), *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None, text=True)
    if proc.returncode:
        msg = (proc.stderr or "").strip() if capture else ""
        raise _core.Error(msg or f"`vitamin {' '.join(args[:2])}` exited with status {proc.returncode}")
    return proc


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The console script: the CLI itself, replacing this process."""
    argv = list(sys.argv[1:] if argv is None else argv)
    path = binary()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(path, [path, *argv])
