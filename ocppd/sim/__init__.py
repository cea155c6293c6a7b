"""
A charge-point simulator: many OCPP 1.6J chargers in one Twisted process.

Laid out like the server side: ``battery`` (the power curve) and
``charger`` with ``outbox`` (one charger's OCPP conversation) are pure and
driven by an injected clock; ``client`` is the thin Autobahn edge that moves
frames and reconnects; ``demo`` makes a site charge; ``cli`` is ``ocppd-sim``.
"""
