"""``autosize dashboard``: optuna-dashboard on a study's storage and artifact store.

Trained networks appear as trial artifacts (``network.safetensors``) and each
trial's note shows its architecture, operation and parent. optuna-dashboard is
an optional dependency (``pip install 'autosize[dashboard]'``). The server binds
to 127.0.0.1 unless ``--host`` says otherwise: it lets anyone who reaches it
edit and delete studies.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from autosize.cli._common import positive_int
from autosize.cli._target import add_target_arguments, artifacts_of, storage_url
from autosize.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from wsgiref.simple_server import WSGIServer

    import optuna

    from autosize.search.store.artifacts import ArtifactLocation

__all__ = ["make_server", "register"]

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dashboard", help="browse a study in optuna-dashboard (trained networks as artifacts)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_target_arguments(p, study_name=False)
    p.add_argument("--port", type=positive_int, default=8080, help="port (default: 8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.set_defaults(func=run)


def make_server(
    storage: str,
    *,
    artifacts: ArtifactLocation | str | Path | None,
    host: str = "127.0.0.1",
    port: int = 8080,
) -> WSGIServer:
    """optuna-dashboard's WSGI app (``optuna_dashboard.wsgi``, what ``run_server`` serves)
    behind a wsgiref server that the caller runs and can shut down."""
    from wsgiref.simple_server import WSGIRequestHandler
    from wsgiref.simple_server import make_server as wsgiref_server

    try:
        import optuna_dashboard
    except ImportError:
        raise ConfigError(
            "the dashboard needs optuna-dashboard: pip install 'autosize[dashboard]'"
        ) from None
    from autosize.search.store.artifacts import artifact_location
    from autosize.search.store.storage import make_storage

    store = None
    if artifacts is not None:
        location = artifact_location(artifacts)
        location.check_readable()
        store = location.store()
    app = optuna_dashboard.wsgi(make_storage(storage), artifact_store=store)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            logger.debug("%s - %s", self.address_string(), format % args)

    try:
        return wsgiref_server(host, port, app, handler_class=QuietHandler)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def run(args: argparse.Namespace) -> int:
    from autosize.cli._target import check_exists

    url, _, config_artifacts = storage_url(args)
    check_exists(url)
    artifacts = artifacts_of(args, config_artifacts, _summaries(url))
    server = make_server(url, artifacts=artifacts, host=args.host, port=args.port)
    host, port = server.server_address[:2]
    assert isinstance(host, str)  # typeshed allows bytes; an IP server's host is a str
    print(f"optuna-dashboard on http://{host}:{port}/ for {url}")
    print(f"  artifacts: {artifacts or 'none (pass --artifacts DIR to see trained networks)'}")
    print("  Ctrl-C stops it")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _summaries(url: str) -> Iterator[optuna.study.StudySummary]:
    """The storage's studies, read only when ``--artifacts`` and CONFIG say nothing."""
    from autosize.search.store.storage import study_summaries

    yield from study_summaries(url)
