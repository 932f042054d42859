"""Sampling profiles of the gateway under load (py-spy, out of process) and their summary."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_recording(
    pid: int, duration_s: int, output: Path, binary: str
) -> subprocess.Popen[bytes]:
    """Collapsed stacks (`--format raw`): one line per distinct stack with its sample count."""
    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(duration_s),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


_REPO_ROOT = Path(__file__).resolve().parents[1]


def _frame_name(frame: str) -> str:
    # py-spy frames look like `function (path/to/module.py:123)`; lines are noise here.
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{_REPO_ROOT}/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarize(collapsed: Path, top: int = 25) -> str:
    """Self time and inclusive time per function, as shares of all samples."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if total == 0:
        return "no samples"
    out = [f"{total} samples", "", "self time:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    out += ["", "inclusive time:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)
