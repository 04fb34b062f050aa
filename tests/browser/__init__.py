"""Browser tests: real Chromium against a live server and a real worker."""
