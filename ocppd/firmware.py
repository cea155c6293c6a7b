"""
Firmware files for UpdateFirmware, served from ``[files] firmware_dir`` at
``/firmware/<name>``: chargers download them without credentials (as from
any firmware server; a firmware file is no secret), operators list them
(``GET /api/cms/firmware``: name, size, last change and the absolute URL a
charger fetches, ``[files] public_url`` + ``/firmware/<name>``, as the
GetDiagnostics upload URLs are built) and the point page's UpdateFirmware
form offers them as a picker that fills in its location.
Only plain files directly in the folder are served: no listing, no
subfolders, no dot files.
"""

from __future__ import annotations

import os
import re
from typing import Any

from twisted.web.static import File

from ocppd.timeutil import format_iso, from_timestamp

#: The names served: what a firmware file is called, nothing that walks.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
#: At most this many files are listed (a firmware folder holds a few).
MAX_LISTED = 500


class FirmwareFiles:
    """The firmware folder, if one is configured."""

    def __init__(self, directory: str, public_url: str) -> None:
        self.directory = os.path.abspath(directory) if directory else ""
        self.public_url = public_url.rstrip("/")

    def path_of(self, name: str) -> str | None:
        """The file ``name`` names in the folder, or None."""
        if not self.directory or not NAME.fullmatch(name):
            return None
        path = os.path.join(self.directory, name)
        return path if os.path.isfile(path) else None

    def resource(self, name: str) -> File | None:
        path = self.path_of(name)
        return None if path is None else File(path, defaultType="application/octet-stream")

    def url_of(self, name: str) -> str | None:
        """The absolute URL chargers fetch ``name`` at; None without a ``public_url``."""
        return f"{self.public_url}/firmware/{name}" if self.public_url else None

    def listing(self) -> list[dict[str, Any]]:
        """
        The files served, by name: name, size, last change (UTC) and the URL
        to give chargers. Blocking (a directory scan): call it on a thread.
        """
        if not self.directory or not os.path.isdir(self.directory):
            return []
        files = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if NAME.fullmatch(entry.name) and entry.is_file():
                    stat = entry.stat()
                    files.append(
                        {
                            "name": entry.name,
                            "size": stat.st_size,
                            "modifiedAt": format_iso(from_timestamp(stat.st_mtime)),
                            "url": self.url_of(entry.name),
                        }
                    )
                if len(files) >= MAX_LISTED:
                    break
        return sorted(files, key=lambda f: f["name"])
