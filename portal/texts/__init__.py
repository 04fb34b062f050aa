"""The user's texts (letters, CVs), each shareable with the active coach."""
