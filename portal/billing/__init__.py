"""Organisations that give users access, and the usage records they are invoiced for."""
