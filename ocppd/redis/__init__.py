"""
A node's link to Redis (``[presence] backend = redis``): one command connection
and one subscriber connection, shared by presence (``ocppd.presence.redis``),
the shared limits and the token revocations (``ocppd.shared.redis``).

- ``address``: the ``redis://`` URL of ``[presence] url``;
- ``link``: the two connections, reconnected by themselves, and the dispatch
  of the subscribed channels' messages;
- ``scripts``: running Lua scripts on the command connection, a Redis that is
  away or refusing turned into its user's "unavailable" error.

The node's service tree starts the link before presence and the shared state
and stops it after them (docs/operations.md, "Start and stop order").
"""
