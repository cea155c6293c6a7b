"""``twistd ocppd``: command-line options and the service maker."""

from __future__ import annotations

from twisted.application.service import IService
from twisted.python import usage

from ocppd.config import ConfigError, load_config


class Options(usage.Options):
    synopsis = "[--config etc/ocppd.ini] [--set section.option=value ...]"
    longdesc = "Run the ocppd OCPP 1.6J central system."
    optParameters = [
        ["config", "c", None, "Configuration file (ini); defaults apply without one."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["overrides"] = []

    def opt_set(self, value: str) -> None:
        """Override one option, e.g. --set ocpp.listen=tcp:9100 (repeatable)."""
        self["overrides"].append(value)

    def postOptions(self) -> None:
        try:
            self["parsed"] = load_config(self["config"], self["overrides"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


def makeService(options: Options) -> IService:
    import txaio

    # Autobahn logs every frame and header at debug level through txaio; its
    # loggers take the level in force when they are created, at import.
    txaio.use_twisted()
    txaio.set_global_log_level("info")  # type: ignore[attr-defined]

    from ocppd.service import OcppdService

    return OcppdService(options["parsed"])
