"""Fault tests: real worker processes, a real Redis, outages and kills (PostgreSQL only)."""
