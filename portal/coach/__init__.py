"""Job coaches: invited by a user, reading only the texts that user shares, while linked."""
