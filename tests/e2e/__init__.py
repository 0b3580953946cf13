"""End-to-end tests: a real gateway on loopback driven by a real browser (Chromium)."""
