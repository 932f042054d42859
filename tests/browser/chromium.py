"""Headless Debian Chromium driven by Selenium through chromium-driver, for tests that look at
the pages EvPower serves as a person's browser does. `chromium_or_skip()` names what is
missing when the machine cannot run it (scripts/install-browser installs it where it can)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# What works on a machine without internet: no sandbox (root), no GPU, and nothing that
# phones home at start (background networking, component updates, sync, QUIC).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium_or_skip() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        pytest.skip(
            f"browser test skipped: {' and '.join(missing)} not installed "
            "(Debian packages chromium and chromium-driver; scripts/install-browser installs "
            "them as root)"
        )
    pytest.importorskip("selenium", reason="browser test skipped: selenium is not installed")


@contextmanager
def chromium(width: int = 420, height: int = 760) -> Iterator[Any]:
    """A fresh headless Chromium (own empty profile) that keeps the console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="evpower-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def console_errors(driver: Any) -> list[str]:
    """What the page logged at SEVERE: CSP refusals, failed loads, script errors. The
    browser's own guess at /favicon.ico (404: the API has no icon) is not the page's."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "/favicon.ico " not in entry["message"]
    ]
