"""Serving exports over HTTP with TensorFlow Serving's REST API (`tfnas serve`)."""
from tfnas.serving.app import ServingApp
from tfnas.serving.rest import SIGNATURES, Limits, RequestError, Signatures
from tfnas.serving.server import HttpServer, ServeError, ServerSettings, serve

__all__ = ["HttpServer", "Limits", "RequestError", "SIGNATURES", "ServeError", "ServerSettings", "ServingApp",
           "Signatures", "serve"]
