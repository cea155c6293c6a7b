# Kept tiny and lazy: a broken import in ocppd must never break `twistd --help`.
from twisted.application.service import ServiceMaker

ocppd = ServiceMaker(
    "ocppd",
    "ocppd.tap",
    "OCPP 1.6J central system (EV charging) on Twisted",
    "ocppd",
)
