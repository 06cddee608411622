"""nginx + Nchan as the comparison server: finding it, and the config the bench runs it with."""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import Unavailable

MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
PACKAGES = "nginx libnginx-mod-nchan"
BUFFER_MESSAGES = 200_000
"""Messages a channel keeps: enough for the 100,000-item replay."""

_CONFIG = """\
load_module {module};
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections {connections};
    multi_accept on;
}}

http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    client_body_buffer_size 1m;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    nchan_shared_memory_size 1024m;

    server {{
        listen 127.0.0.1:{port} backlog=4096;

        location = /pub {{
            nchan_publisher;
            nchan_channel_id $arg_ch;
            nchan_message_buffer_length {buffer};
            nchan_message_timeout 1h;
        }}
        location = /sub {{
            nchan_subscriber eventsource;
            nchan_channel_id $arg_ch;
            nchan_subscriber_first_message oldest;
            nchan_message_buffer_length {buffer};
            nchan_message_timeout 1h;
        }}
        location = /version {{
            return 200 "$nchan_version";
        }}
    }}
}}
"""


def find_nginx() -> Path:
    """The nginx binary, with the Nchan module beside it; `Unavailable` says what to install."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    missing = [what for what, ok in (("nginx", found), ("Nchan", MODULE.exists())) if not ok]
    if missing or found is None:
        raise Unavailable(
            f"{' and '.join(missing)} not found (looked for {MODULE}): install the Debian "
            f"packages with `apt-get install {PACKAGES}`"
        )
    return Path(found)


def config(prefix: Path, port: int, nofile: int) -> str:
    """nginx.conf for one worker serving publishers on /pub and EventSource on /sub."""
    return _CONFIG.format(
        module=MODULE,
        prefix=prefix,
        port=port,
        nofile=nofile,
        connections=max(1024, nofile - 64),
        buffer=BUFFER_MESSAGES,
    )
