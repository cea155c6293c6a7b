"""
The widths every number from outside is held to, in one place: the store's
columns and the pages' numbers. The edges (OCPP schemas, REST bodies, the
configuration) bound what they take with these, so nothing they let in can
fail in the store or be shown wrong.
"""

from __future__ import annotations

#: The store's ``Integer`` columns (ids, connector ids, prices and a session's
#: cost in minor units): 32-bit on PostgreSQL. OCPP-J's integers are 32-bit too.
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

#: The store's ``BigInteger`` columns, and the widest integer a JSON body may
#: hold at all (orjson and the bus read nothing wider exactly).
INT64_MAX = 2**63 - 1

#: JavaScript's ``Number.MAX_SAFE_INTEGER``: the largest integer a page shows
#: exactly (meter readings in Wh and W).
JS_SAFE_MAX = 2**53 - 1
