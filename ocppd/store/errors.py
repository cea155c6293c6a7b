"""Exceptions raised by the store's query functions."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the store's own errors (database errors propagate as SQLAlchemy's)."""


class AlreadyExists(StoreError):
    """An insert found a row with the same natural key (name, email, id)."""


class NotFound(StoreError):
    """An update or lookup needed a row that does not exist."""


class InUse(StoreError):
    """A delete was refused because other rows still refer to the row."""
