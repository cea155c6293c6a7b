"""
Alerts: conditions an operator on call must hear of (a charger offline, a
connector Faulted, a session open for too long, dead letters, a bus that lags),
raised once while they hold and resolved once when they clear, delivered by
webhook and e-mail and listed on the CMS dashboard (docs/operations.md, "Alerts").

- ``rules``: what the store and bus say -> which conditions hold -> what to
  raise and resolve. Pure: no I/O, no clock.
- ``notices``: a raise or resolve as a webhook body, its signature, an e-mail.
  Pure too.
- ``observe``: the I/O edge that reads the store (and RabbitMQ's queue
  counts) into an observation, and writes the changes.
- ``queue``: the notices waiting for delivery, in the store (any node sends them).
- ``delivery``: the webhook and SMTP channels, and the retries with back-off.
- ``evaluator``: the node's timer that ties them together.

Several nodes share one database. Every node evaluates, each evaluation in
one transaction; the open alerts are rows keyed by their condition, so a
raise is an INSERT that does nothing when the row exists and a resolve a
DELETE that only one transaction gets the row back from: whichever node
makes the change delivers it, and no other node does. On PostgreSQL a
transaction-scoped advisory lock also keeps two evaluations from
interleaving (a node that finds it taken skips its turn), so an evaluation
never raises what another has just resolved on fresher information.
"""
