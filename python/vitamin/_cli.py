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


def _stream_stderr(proc: subprocess.Popen, keep: int = 4000) -> str:
    """Copies the child's stderr to ours as it comes (progress bars and all)
    and returns its last `keep` characters, for the error message."""
    tail = b""
    out = getattr(sys.stderr, "buffer", None)
    while True:
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            break
        if out is not None:
            out.write(chunk)
            out.flush()
        else:
            sys.stderr.write(chunk.decode("utf-8", "replace"))
        tail = (tail + chunk)[-keep:]
    return tail.decode("utf-8", "replace")


def run(args: Sequence[str], capture: bool = False) -> subprocess.CompletedProcess:
    """Runs `vitamin ARGS`: with `capture`, stdout and stderr are collected;
    without, both stream to ours. A non-zero exit raises vitamin.Error with
    the CLI's own message (the last lines of its stderr)."""
    cmd = [binary(), *args]
    if capture:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        err_text = proc.stderr or ""
    else:
        with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE) as child:
            err_text = _stream_stderr(child)
            child.wait()
        proc = subprocess.CompletedProcess(cmd, child.returncode, None, err_text)
    if proc.returncode:
        lines = [l.strip() for l in err_text.replace("\r", "\n").splitlines() if l.strip()]
        msg = "\n".join(l for l in lines if l.startswith("vitamin")) or "\n".join(lines[-3:])
        raise _core.Error(msg or f"`vitamin {' '.join(args[:2])}` exited with status {proc.returncode}")
    return proc


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The console script: the CLI itself, replacing this process."""
    argv = list(sys.argv[1:] if argv is None else argv)
    path = binary()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(path, [path, *argv])
