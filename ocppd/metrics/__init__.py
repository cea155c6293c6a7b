"""
Prometheus metrics at ``GET /metrics`` on a listener of their own
(``[metrics] listen``, docs/operations.md "Metrics").

The parts that count (the OCPP endpoint, the buses, the consumers, the
push channel, the store's thread pool) keep plain integers and histograms
of their own, bumped where they already decide an outcome; the collector
(``ocppd.metrics.collector``) turns them into metric families only when
Prometheus scrapes. So the hot path pays a few additions, never a lock, a
label lookup or an allocation per message.
"""
