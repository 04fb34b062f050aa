"""Storage limitation: the periodic jobs that delete what may no longer be kept."""
