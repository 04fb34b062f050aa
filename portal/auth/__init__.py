"""Accounts: registration, verification, login sessions, passwords."""
