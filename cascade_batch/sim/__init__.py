"""The embedded OpenAI-compatible simulator (clearly a simulator, never a real model)."""

from .server import Simulator, build_app, serve, start

__all__ = ["Simulator", "build_app", "serve", "start"]
