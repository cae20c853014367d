"""The application factory: settings, database, API, pages, webhooks and CLI wired once."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from backend.config import Settings, load_settings
from backend.db import Database, init_app as init_db


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Flask:
    """Build the Flask app; never starts the scheduler (that is `flask scheduler`)."""
    settings = settings or load_settings()
    app = Flask(__name__, instance_path=settings.INSTANCE_DIR, instance_relative_config=False)
    app.config.from_mapping(settings.as_flask_config())
    app.config["SETTINGS"] = settings
    if settings.PROXY_FIX_HOPS:
        # Trust exactly as many proxies as infra/ puts in front of us, no more.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.PROXY_FIX_HOPS, x_proto=settings.PROXY_FIX_HOPS,
                                x_host=settings.PROXY_FIX_HOPS, x_prefix=settings.PROXY_FIX_HOPS)

    from backend import logging_setup, services

    logging_setup.init_app(app)
    init_db(app, database or Database(settings.DATABASE_URL))
    services.init_app(app)

    from backend import api, cli, ops, pages, webhooks

    api.init_app(app)
    webhooks.init_app(app)
    pages.init_app(app)
    ops.init_app(app)
    cli.init_app(app)
    return app
