"""StoreOM's HTTP API (FastAPI): `create_app(database=None, settings=None)`; served by `storeom serve`."""

from om_core.api.app import ApiSettings, create_app, serve_app

__all__ = ["ApiSettings", "create_app", "serve_app"]
