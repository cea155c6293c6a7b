"""Diagnostics uploads: the URLs handed to GetDiagnostics, and what came to each."""

from __future__ import annotations

from datetime import datetime

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import all_records, first_record
from ocppd.store.tables import diagnostics_uploads

_up = diagnostics_uploads.c


@attrs.frozen
class UploadRecord:
    id: int
    charge_point_id: str
    token_hash: str = attrs.field(repr=False)
    requested_by: int | None
    created_at: datetime
    expires_at: datetime
    file_name: str | None
    size: int | None
    received_at: datetime | None


def add_upload(
    conn: Connection,
    *,
    charge_point_id: str,
    token_hash: str,
    requested_by: int | None,
    now: datetime,
    expires_at: datetime,
) -> int:
    """A new upload URL's row; its id."""
    result = conn.execute(
        diagnostics_uploads.insert().values(
            charge_point_id=charge_point_id,
            token_hash=token_hash,
            requested_by=requested_by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def upload_by_token(conn: Connection, token_hash: str) -> UploadRecord | None:
    """The upload of this token's hash, its row locked until the commit."""
    return first_record(
        conn,
        UploadRecord,
        sa.select(diagnostics_uploads).where(_up.token_hash == token_hash).with_for_update(),
    )


def mark_received(
    conn: Connection, upload_id: int, *, file_name: str, size: int, now: datetime
) -> bool:
    """Record the file that came, once: False if one came before."""
    result = conn.execute(
        diagnostics_uploads.update()
        .where(_up.id == upload_id, _up.received_at.is_(None))
        .values(file_name=file_name, size=size, received_at=now)
    )
    return bool(result.rowcount)


def get_upload(conn: Connection, upload_id: int) -> UploadRecord | None:
    return first_record(
        conn, UploadRecord, sa.select(diagnostics_uploads).where(_up.id == upload_id)
    )


def list_uploads(
    conn: Connection, charge_point_id: str, *, before_id: int | None, limit: int
) -> list[UploadRecord]:
    """A charger's uploads, newest first (keyset pages by id)."""
    query = sa.select(diagnostics_uploads).where(_up.charge_point_id == charge_point_id)
    if before_id is not None:
        query = query.where(_up.id < before_id)
    return all_records(conn, UploadRecord, query.order_by(_up.id.desc()).limit(limit))


def received_oldest_first(
    conn: Connection, *, received_before: datetime | None, limit: int
) -> list[UploadRecord]:
    """Uploads whose file came (before ``received_before``, if given), oldest first."""
    query = sa.select(diagnostics_uploads).where(_up.received_at.isnot(None))
    if received_before is not None:
        query = query.where(_up.received_at < received_before)
    return all_records(conn, UploadRecord, query.order_by(_up.received_at, _up.id).limit(limit))


def received_total_size(conn: Connection) -> int:
    """Bytes of every file received and still listed."""
    query = sa.select(sa.func.coalesce(sa.func.sum(_up.size), 0)).where(_up.received_at.isnot(None))
    return int(conn.execute(query).scalar_one())


def delete_upload(conn: Connection, upload_id: int) -> bool:
    """Forget an upload's row; False if it was gone already."""
    result = conn.execute(diagnostics_uploads.delete().where(_up.id == upload_id))
    return bool(result.rowcount)


def delete_unused(conn: Connection, *, expired_before: datetime, limit: int) -> int:
    """Forget up to ``limit`` upload URLs that expired before ``expired_before`` unused."""
    doomed = (
        sa.select(_up.id)
        .where(_up.received_at.is_(None), _up.expires_at < expired_before)
        .limit(limit)
        .scalar_subquery()
    )
    return int(conn.execute(diagnostics_uploads.delete().where(_up.id.in_(doomed))).rowcount)
