"""
What every test node builds the same way, built once per test process.

A node's start compiles the OCPP schemas (~0.15 s of CPU) and migrates an
empty SQLite file through every revision (~0.13 s, and its fsyncs); hundreds
of tests start a node. The compiled schemas are immutable, so the nodes of
one process can share one registry; and a copy of a database this process
migrated once is the same file a fresh migration writes. The start-up's own
upgrade of an empty or old database is tested where it is the point
(``tests/test_startup.py``, ``tests/integration/test_twistd.py``), on
databases these helpers never touch.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

import ocppd.service
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.store import migrate
from ocppd.store.database import SQLITE_FILE_NAME, default_sqlite_url


@functools.cache
def shared_schemas() -> SchemaRegistry:
    """The installed OCPP 1.6 schemas, compiled once in this process."""
    return SchemaRegistry.load()


class _SharedSchemaRegistry:
    """Stands in for ``SchemaRegistry`` in ``ocppd.service``: ``load()`` answers the shared one."""

    @staticmethod
    def load() -> SchemaRegistry:
        return shared_schemas()


def share_schemas(testcase: SynchronousTestCase) -> None:
    """Until ``testcase`` ends, the nodes it builds get the process's compiled schemas."""
    testcase.patch(ocppd.service, "SchemaRegistry", _SharedSchemaRegistry)


@functools.cache
def _migrated_template() -> str:
    """A SQLite file at the head revision, migrated once in this process (closed, no WAL left)."""
    folder = tempfile.mkdtemp(prefix="ocppd-test-template-")
    atexit.register(shutil.rmtree, folder, True)
    migrate.upgrade(default_sqlite_url(folder))
    return os.path.join(folder, SQLITE_FILE_NAME)


def seed_migrated_sqlite(data_dir: str) -> None:
    """Put a database at the head revision where a node with ``data_dir`` keeps its own."""
    target = os.path.join(data_dir, SQLITE_FILE_NAME)
    if os.path.exists(target):
        raise AssertionError(f"{target} exists already: seeding would replace a test's database")
    shutil.copyfile(_migrated_template(), target)
