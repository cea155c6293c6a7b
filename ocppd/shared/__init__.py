"""
State every node must see (docs/security.md, "Where limits live"): failure
counts of the sign-in and charger-key throttles, the sign-in rate limit, and
token revocations. In-process for one node (``memory``), on Redis when
``[presence] backend = redis``.
"""
