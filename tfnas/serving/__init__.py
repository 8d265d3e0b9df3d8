"""Serving exports over HTTP with TensorFlow Serving's REST API (`tfnas serve`)."""
from tfnas.serving.rest import SIGNATURES, Limits, RequestError, Signatures
from tfnas.serving.server import ServingApp, serve

__all__ = ["Limits", "RequestError", "SIGNATURES", "ServingApp", "Signatures", "serve"]
