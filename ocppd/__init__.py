"""ocppd: an OCPP 1.6J central system on Twisted."""

__version__ = "0.1.0.dev0"
