"""Serving exports over HTTP with TensorFlow Serving's REST API (`tfnas serve`)."""
from tfnas.export.metadata import SIGNATURES
from tfnas.serving.app import ServingApp, served_version
from tfnas.serving.rest import Limits, RequestError, Signatures
from tfnas.serving.server import HttpServer, ServeError, ServerSettings, serve

__all__ = ["HttpServer", "Limits", "RequestError", "SIGNATURES", "ServeError", "ServerSettings", "ServingApp",
           "Signatures", "serve", "served_version"]
