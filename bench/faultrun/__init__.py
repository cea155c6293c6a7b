"""
The soak and fault run of issue 14 (``bench/faults``): simulated chargers
charge while faults are injected into private services, then what the
chargers were told was accepted is compared with what the store holds.

- ``services``: a private PostgreSQL, a private RabbitMQ node, the daemon;
- ``chargers``: the charging fleet (a process of its own) and its record;
- ``faults``: each fault, injected and restored;
- ``check``: the record against the store, and the table;
- ``__main__``: the run, one configuration after the other.
"""
