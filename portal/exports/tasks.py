"""Worker jobs for exports."""


def expire_exports() -> int:
    """Delete exports whose 7 days have passed."""
    raise RuntimeError("replaced by the exports feature")
