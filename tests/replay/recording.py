"""Writing recorded histories as replay fixtures, without the recording machine's paths."""

from __future__ import annotations

import sysconfig
from pathlib import Path

from temporalio.client import WorkflowHistory

REPLAY_DIR = Path(__file__).resolve().parent
_REPO_ROOT = REPLAY_DIR.parent.parent


def scrub_paths(text: str) -> str:
    """Stack traces in failure events name files by absolute path; keep them relative."""
    site_packages = sysconfig.get_paths()["purelib"]
    return text.replace(f"{site_packages}/", "site-packages/").replace(f"{_REPO_ROOT}/", "")


def write_fixture(history: WorkflowHistory, name: str) -> None:
    (REPLAY_DIR / f"{name}.json").write_text(scrub_paths(history.to_json()))
