"""
Diagnostics files chargers upload, so that GetDiagnostics works out of the box.

An operator's GetDiagnostics without a ``location`` gets one of ours
(``[files] public_url`` + ``/diagnostics/<token>/``): a token of its own,
random, stored only as its SHA-256, valid for ``[files] upload_ttl`` seconds
and for one file. The charger uploads to it with HTTP PUT (the body is the
file) or POST (the body, or the first file of a ``multipart/form-data``
form), optionally naming the file in the path (``.../<token>/<name>``); at
most ``[files] max_diagnostics_size`` bytes (413 beyond, refused while it
arrives, ``ocppd.web``). The file is kept in ``[files] diagnostics_dir`` as
``<upload id>-<name>``; operators list and download them through the CMS API,
and delete one by hand (audited, ``audit.cms.diagnostics.deleted``). The
files are pruned by age and by their total size (``ocppd.diagnostics_pruning``).

The token is the only credential: the URL is given to one charger, over its
OCPP connection, and dies with its first file or its expiry. An unknown or
expired token is 404, a used one 409, so nobody can write twice or probe.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Generator
from datetime import timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import IO, Any

import attrs
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.api.errors import ApiError
from ocppd.bus.outbox import Event, Outbox
from ocppd.logs import Logger
from ocppd.store import diagnostics
from ocppd.store.database import Database
from ocppd.store.diagnostics import UploadRecord
from ocppd.store.records import UserRecord
from ocppd.timeutil import format_iso

#: The path prefix of upload URLs on the web listener.
UPLOAD_PREFIX = "/diagnostics/"
#: What a kept file's name may hold; anything else becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_NAME = 100
DEFAULT_NAME = "diagnostics"


@attrs.define
class Removal:
    """What a removal did: the uploads deleted, and those kept as their file would not go."""

    removed: list[UploadRecord] = attrs.field(factory=list)
    #: (upload, why its file could not be deleted)
    failed: list[tuple[UploadRecord, str]] = attrs.field(factory=list)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def safe_name(name: str | None) -> str:
    """A file name that is only a name: no folder, no dot file, bounded."""
    cleaned = _UNSAFE.sub("_", (name or "").rsplit("/", 1)[-1])[:MAX_NAME].lstrip(".")
    return cleaned or DEFAULT_NAME


def form_file(content_type: str, body: bytes) -> tuple[str | None, bytes] | None:
    """The first file of a ``multipart/form-data`` body: (its name, its bytes), or None."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_content_disposition() == "form-data" and part.get_filename() is not None:
            payload = part.get_payload(decode=True)
            return part.get_filename(), payload if isinstance(payload, bytes) else b""
    return None


def upload_json(record: UploadRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "chargePointId": record.charge_point_id,
        "requestedBy": record.requested_by,
        "createdAt": format_iso(record.created_at),
        "expiresAt": format_iso(record.expires_at),
        "fileName": record.file_name,
        "size": record.size,
        "receivedAt": None if record.received_at is None else format_iso(record.received_at),
    }


class DiagnosticsFiles:
    """Upload URLs for GetDiagnostics, and the files that come to them."""

    log = Logger()

    def __init__(
        self,
        database: Database,
        *,
        directory: str,
        public_url: str,
        ttl: int,
        now: Any,
        outbox: Outbox | None = None,
    ) -> None:
        self._database = database
        #: Stages the audit event of an operator's deletion (None: no deletions).
        self._outbox = outbox
        self.directory = directory
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl
        #: () -> the current UTC datetime (the outbox's clock).
        self._now = now

    def location_for(self, charge_point_id: str, requested_by: int | None) -> Deferred[str]:
        """A new upload URL for the charger; 400 when no ``public_url`` is configured."""
        if not self.public_url:
            raise ApiError(
                400,
                "bad_request",
                "location: required, since no [files] public_url says where chargers reach us",
            )
        token = secrets.token_urlsafe(24)
        now = self._now()

        def add(conn: Connection) -> str:
            diagnostics.add_upload(
                conn,
                charge_point_id=charge_point_id,
                token_hash=token_hash(token),
                requested_by=requested_by,
                now=now,
                expires_at=now + timedelta(seconds=self.ttl),
            )
            return f"{self.public_url}{UPLOAD_PREFIX}{token}/"

        return self._database.run(add)

    def path_of(self, record: UploadRecord) -> str:
        return os.path.join(self.directory, f"{record.id}-{safe_name(record.file_name)}")

    @inlineCallbacks
    def receive(
        self, token: str, name: str | None, content: IO[bytes], content_type: str | None
    ) -> Generator[Deferred[Any], Any, UploadRecord]:
        """Keep what a charger uploaded to ``token``'s URL; 404 unknown or expired, 409 used."""
        now = self._now()

        def keep(conn: Connection) -> UploadRecord:
            record = diagnostics.upload_by_token(conn, token_hash(token))
            if record is None or record.expires_at <= now:
                raise ApiError(404, "not_found", "no such upload")
            if record.received_at is not None:
                raise ApiError(409, "already_uploaded", "a file came to this upload already")
            content.seek(0)
            body = content.read()
            file_name = name
            if content_type and content_type.lower().startswith("multipart/form-data"):
                found = form_file(content_type, body)
                if found is None:
                    raise ApiError(400, "bad_request", "the form holds no file")
                file_name, body = name or found[0], found[1]
            kept = safe_name(file_name)
            os.makedirs(self.directory, exist_ok=True)
            path = os.path.join(self.directory, f"{record.id}-{kept}")
            # Written whole, then renamed: a reader never sees half a file.
            partial = f"{path}.part"
            with open(partial, "wb") as f:
                f.write(body)
            os.replace(partial, path)
            diagnostics.mark_received(conn, record.id, file_name=kept, size=len(body), now=now)
            received = diagnostics.get_upload(conn, record.id)
            assert received is not None
            return received

        # On a database thread: the file's bytes are bounded (the listener
        # refuses more than [files] max_diagnostics_size), but not small.
        record = yield self._database.run(keep)
        self.log.info(
            "Diagnostics of {charge_point_id} received: {file_name}, {size} bytes",
            charge_point_id=record.charge_point_id,
            file_name=record.file_name,
            size=record.size,
        )
        return record

    def remove(self, conn: Connection, records: list[UploadRecord]) -> Removal:
        """
        Delete each record's file, then its row, in ``conn``'s transaction (on
        a database thread: file system calls stay off the reactor). A file
        already gone is no error; one that cannot be deleted keeps its row, so
        the listing never loses a file still on disk.
        """
        removal = Removal()
        for record in records:
            try:
                os.remove(self.path_of(record))
            except FileNotFoundError:
                pass
            except OSError as e:
                removal.failed.append((record, e.strerror or type(e).__name__))
                continue
            diagnostics.delete_upload(conn, record.id)
            removal.removed.append(record)
        return removal

    @inlineCallbacks
    def delete(
        self, upload_id: int, actor: UserRecord
    ) -> Generator[Deferred[Any], Any, UploadRecord]:
        """An operator deletes one upload (its file and row), audited; 404 if there is none."""
        outbox = self._outbox
        assert outbox is not None, "built without an outbox: no deletions"

        def delete(conn: Connection) -> tuple[UploadRecord, str | None]:
            record = diagnostics.get_upload(conn, upload_id)
            if record is None:
                raise ApiError(404, "not_found", f"no upload {upload_id}")
            failed = self.remove(conn, [record]).failed
            return record, failed[0][1] if failed else None

        def audited(result: tuple[UploadRecord, str | None]) -> list[Event]:
            record, failure = result
            if failure is not None:
                return []  # nothing changed
            payload = {
                "by": {"userId": actor.id, "email": actor.email},
                "uploadId": record.id,
                "fileName": record.file_name,
                "size": record.size,
                "receivedAt": None
                if record.received_at is None
                else format_iso(record.received_at),
            }
            return [("audit.cms.diagnostics.deleted", payload, record.charge_point_id)]

        record, failure = yield outbox.run(self._database, delete, audited)
        if failure is not None:
            self.log.warn(
                "Diagnostics upload {upload_id} of {charge_point_id}: its file could not be"
                " deleted ({reason}); kept",
                upload_id=record.id,
                charge_point_id=record.charge_point_id,
                reason=failure,
            )
            raise ApiError(409, "not_deleted", "the file could not be deleted; it is kept")
        self.log.info(
            "Diagnostics upload {upload_id} of {charge_point_id} deleted by {email}",
            upload_id=record.id,
            charge_point_id=record.charge_point_id,
            file_name=record.file_name,
            size=record.size,
            email=actor.email,
        )
        return record

    def uploads(
        self, charge_point_id: str, *, before_id: int | None, limit: int
    ) -> Deferred[list[UploadRecord]]:
        return self._database.run(
            diagnostics.list_uploads, charge_point_id, before_id=before_id, limit=limit
        )

    def upload(self, upload_id: int) -> Deferred[UploadRecord | None]:
        return self._database.run(diagnostics.get_upload, upload_id)
