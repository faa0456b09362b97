"""Fixtures of the browser tier: one headless Chromium per test module, one fresh tab per test.

Skipped when Chromium or websocket-client (the `browser` extra) is missing, unless
LSTMCTL_BROWSER_REQUIRED=1 (CI's browser tier), where a missing one fails the tests.
"""

import os

import pytest

from .cdp import Browser, find_chromium


def _missing(what: str):
    if os.environ.get("LSTMCTL_BROWSER_REQUIRED") == "1":
        pytest.fail(f"{what}, and LSTMCTL_BROWSER_REQUIRED=1", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser():
    try:
        import websocket  # noqa: F401
    except ImportError:
        _missing("websocket-client is not installed (pip install -e '.[browser]')")
    exe = find_chromium()
    if exe is None:
        _missing("no Chromium on PATH (apt-get install chromium)")
    b = Browser(exe)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def page(browser):
    p = browser.new_page(1280, 900)
    try:
        yield p
    finally:
        p.close()
