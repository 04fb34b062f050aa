"""Exports: a PDF and a JSON of everything held about a user, built by the worker."""
