"""modelyard's ASGI app for another ASGI server (``granian --interface asgi loadtests.bench.apps.modelyard_asgi:app``):
settings from ``MODELYARD_*`` environment variables. Without serving/server.py's protocol: no request head or body
deadlines, connection cap or bounded drain; for measuring the HTTP server itself."""

from modelyard.settings import load_settings
from serving.app import create_app

app = create_app(load_settings())
