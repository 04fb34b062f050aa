"""Periodic coach jobs."""


def expire_invitations() -> int:
    """Mark invitations older than 14 days as expired."""
    raise RuntimeError("replaced by the coach feature")
