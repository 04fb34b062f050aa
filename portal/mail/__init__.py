"""Outgoing mail: built with the standard library, stored, then sent by an RQ job."""
