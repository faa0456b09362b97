"""The browser tier: `lstmctl report` pages in headless Chromium (see conftest.py)."""
