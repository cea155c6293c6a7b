"""The REST API (Klein) under ``/api/``: accounts, charger commands, and more to come."""
