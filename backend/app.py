"""The application factory: settings, database, extensions, API, pages, webhooks and CLI wired once."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from backend.config import Settings, load_settings
from backend.db import Database
from backend.db import init_app as init_db


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Flask:
    """Build the Flask app; never starts the scheduler (that is `flask scheduler`)."""
    settings = settings or load_settings()
    app = Flask(
        __name__,
        instance_path=settings.INSTANCE_DIR,
        instance_relative_config=False,
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.from_mapping(settings.as_flask_config())
    app.config["SETTINGS"] = settings
    if settings.PROXY_FIX_HOPS:
        # Trust exactly as many proxies as infra/ puts in front of us, no more.
        hops = settings.PROXY_FIX_HOPS
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)

    from backend import extensions
    from backend.runtime import cli, logging_setup

    logging_setup.init_app(app)
    init_db(app, database or Database(settings.DATABASE_URL))
    extensions.init_app(app)

    from backend import web

    web.init_app(app)
    cli.init_app(app)
    return app
