"""cascade_batch: an async batch processor that routes LLM queries through a cost cascade.

Each query is classified by a tiny model (simple / moderate / complex),
answered by the cheapest tier that can, and escalated when the answer looks
inadequate. See README.md for the command line; the library API is below.
"""

from .api import resolve_endpoint, run_file, stream
from .client import Endpoint
from .config import Config, load
from .errors import CallError, CascadeError, ConfigError, RetryableError, RunAborted
from .summary import Summary

__all__ = [
    "CallError",
    "CascadeError",
    "Config",
    "ConfigError",
    "Endpoint",
    "RetryableError",
    "RunAborted",
    "Summary",
    "load",
    "resolve_endpoint",
    "run_file",
    "stream",
]
__version__ = "0.1.0"
