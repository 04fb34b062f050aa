"""The logged-in user's own area."""
