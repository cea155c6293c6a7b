"""The push channel: a WAMP v2 broker for browsers at ``/push`` (docs/push.md)."""
