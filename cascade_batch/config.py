"""Configuration: frozen value objects, loaded from TOML and validated once.

The built-in default equals the seed guide (mittwald AI Hosting, three tiers,
the seed's classifier prompt). Prices are *estimates*: mittwald publishes no
per-token price (it bills in EUR per plan), so edit them to match your bill.
Unknown keys, unknown tiers and impossible limits are rejected at start with a
message that names the key.
"""

from __future__ import annotations

import copyreg
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import ConfigError

DEFAULT_BASE_URL = "https://llm.aihosting.mittwald.de/v1"

CLASSIFIER_PROMPT = """\
Classify the complexity of the user's question with exactly one word: simple, moderate, or complex.

simple — factual lookup, yes/no, basic definition, short translation
moderate — multi-step reasoning, code with explanation, structured comparison
complex — research-level analysis, multi-file code review, long-document synthesis,
or anything requiring deep domain knowledge

Reply with only the single classification word and nothing else."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One model: its price (per 1M tokens, in `currency`) and its limits.

    `rpm`/`tpm` are requests/tokens per minute (0 = unlimited); `extra_body`
    is merged into every request body for this model (provider extensions).
    """

    name: str
    input_per_mtok: float
    output_per_mtok: float
    rpm: int = 300
    tpm: int = 0
    max_concurrency: int = 64
    context_tokens: int = 131072
    extra_body: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class TierConfig:
    name: str
    model: str


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    model: str = "Qwen3.5-0.8B"
    max_tokens: int = 5
    temperature: float = 0.0
    default_tier: str = "moderate"
    prompt: str = CLASSIFIER_PROMPT


@dataclass(frozen=True, slots=True)
class AnswerConfig:
    """Defaults for answering calls; a record's own `params` override them."""

    temperature: float = 0.7
    max_tokens: int = 0  # 0 = let the server decide
    system_prompt: str = ""  # config-wide default system prompt ("" = none)


@dataclass(frozen=True, slots=True)
class EscalationConfig:
    min_words: int = 20
    on_truncated: bool = True
    on_error: bool = True


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Our only retry layer (the SDK's own retries are switched off)."""

    max_attempts: int = 6
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    request_timeout_s: float = 120.0
    connect_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """In-run deduplication: identical requests are answered once."""

    enabled: bool = True
    window: int = 10_000  # finished results remembered for later copies (in-flight ones always are)


@dataclass(frozen=True, slots=True)
class InputConfig:
    max_line_bytes: int = 1_000_000


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Behaviour of the embedded simulator (`--simulate`, `cascade-batch simulate`)."""

    seed: int = 0
    latency_ms: float = 20.0  # base latency per call
    per_token_ms: float = 0.2  # added per completion token
    jitter: float = 0.3  # +/- share of the latency, seeded
    fault_rate: float = 0.0  # probability that a call gets one of `faults`
    faults: tuple[str, ...] = (
        "429",
        "500",
        "503",
        "timeout",
        "drop",
        "malformed",
        "empty_choices",
        "null_content",
        "length",
    )
    window_s: float = 60.0  # rate-limit window (mittwald: a fixed minute)
    hang_s: float = 30.0  # how long a `timeout` fault stalls before answering
    retry_after_s: float = 1.0  # Retry-After sent with injected 429/503 faults
    classifier_junk_rate: float = 0.0  # share of classifier replies that name no tier
    short_answer_rate: float = 0.3  # share of queries the smallest model answers too briefly
    thinking_models: tuple[str, ...] = ("Qwen3.6-35B-A3B-FP8",)


SIM_FAULTS = frozenset(SimulatorConfig().faults)


# Configs travel to other processes (Ray workers): mapping proxies pickle as the dict they wrap.
def _frozen(data: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(data)


copyreg.pickle(MappingProxyType, lambda m: (_frozen, (dict(m),)))


def _default_models() -> dict[str, ModelConfig]:
    thinking_off = MappingProxyType({"chat_template_kwargs": {"enable_thinking": False}})
    return {
        m.name: m
        for m in (
            ModelConfig("Qwen3.5-0.8B", 0.05, 0.10, context_tokens=262144),
            ModelConfig("Qwen3.6-35B-A3B-FP8", 0.20, 0.80, context_tokens=262144, extra_body=thinking_off),
            ModelConfig("Mistral-Medium-3.5-128B", 0.40, 2.00, context_tokens=262144),
            ModelConfig("Qwen3.5-122B-A10B-FP8", 0.40, 1.60, context_tokens=262144),
            ModelConfig("gpt-oss-120b", 0.15, 0.60, context_tokens=131072),
        )
    }


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; build with `load()` or `Config.default()`."""

    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"
    currency: str = "EUR"
    http_backend: str = "aiohttp"  # or "httpx" (the SDK's default transport)
    rate_window_s: float = 60.0  # the provider's rate-limit window: rpm/tpm count per this many seconds
    classifier: ClassifierConfig = ClassifierConfig()
    tiers: tuple[TierConfig, ...] = (
        TierConfig("simple", "Qwen3.5-0.8B"),
        TierConfig("moderate", "Qwen3.6-35B-A3B-FP8"),
        TierConfig("complex", "Mistral-Medium-3.5-128B"),
    )
    models: Mapping[str, ModelConfig] = field(default_factory=lambda: MappingProxyType(_default_models()))
    answer: AnswerConfig = AnswerConfig()
    escalation: EscalationConfig = EscalationConfig()
    retry: RetryConfig = RetryConfig()
    input: InputConfig = InputConfig()
    dedup: DedupConfig = DedupConfig()
    simulator: SimulatorConfig = SimulatorConfig()

    @classmethod
    def default(cls) -> Config:
        return validate(cls())

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    @property
    def top(self) -> TierConfig:
        return self.tiers[-1]

    def tier_index(self, name: str) -> int:
        return self.tier_names.index(name)

    def model(self, name: str) -> ModelConfig:
        return self.models[name]

    def used_models(self) -> tuple[str, ...]:
        """Models this config calls: the classifier's and every tier's, in order, once each."""
        names = [self.classifier.model, *(t.model for t in self.tiers)]
        return tuple(dict.fromkeys(names))

    def with_overrides(self, **changes: Any) -> Config:
        return validate(replace(self, **changes))


# ---------------------------------------------------------------- loading


def load(path: str | Path | None) -> Config:
    """Read a TOML file on top of the defaults; `None` gives the defaults."""
    if path is None:
        return Config.default()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return from_dict(data, source=str(path))


_SECRET_KEYS = frozenset({"api_key", "key", "token", "secret", "password", "authorization"})


def from_dict(data: Mapping[str, Any], *, source: str = "config") -> Config:
    """Build a validated Config from parsed TOML; errors name `source` and the key."""
    data = dict(data)
    for key in data:
        if key.lower() in _SECRET_KEYS:
            raise ConfigError(
                f"{source}: `{key}` must not be in a config file; put the key in the environment "
                f"variable named by `api_key_env` (default OPENAI_API_KEY)"
            )
    default = Config()
    kwargs: dict[str, Any] = {}
    sections = {
        "classifier": ClassifierConfig,
        "answer": AnswerConfig,
        "escalation": EscalationConfig,
        "retry": RetryConfig,
        "input": InputConfig,
        "dedup": DedupConfig,
        "simulator": SimulatorConfig,
    }
    for key, value in data.items():
        if key in ("base_url", "api_key_env", "currency", "http_backend"):
            kwargs[key] = _typed(source, key, value, str)
        elif key == "rate_window_s":
            kwargs[key] = _typed(source, key, value, float)
        elif key in sections:
            kwargs[key] = _section(source, key, value, sections[key])
        elif key == "tiers":
            kwargs["tiers"] = _tiers(source, value)
        elif key == "models":
            kwargs["models"] = MappingProxyType(_models(source, value, default.models))
        else:
            raise ConfigError(f"{source}: unknown key `{key}`")
    return validate(replace(default, **kwargs))


def _typed(source: str, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is tuple and isinstance(value, list):
        return tuple(value)
    if kind is Any:
        return value
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: `{key}` must be {kind.__name__}, got {type(value).__name__}")
    return value


def _section(source: str, name: str, value: Any, cls: type) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: `[{name}]` must be a table")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, item in value.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key `{name}.{key}`")
        kind = _field_kind(known[key].type)
        kwargs[key] = _typed(source, f"{name}.{key}", item, kind)
    return cls(**kwargs)


def _field_kind(annotation: Any) -> type:
    text = str(annotation)
    for name, kind in (("bool", bool), ("int", int), ("float", float), ("str", str), ("tuple", tuple)):
        if text.startswith(name):
            return kind
    return object


def _tiers(source: str, value: Any) -> tuple[TierConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{source}: `tiers` must be a non-empty array of tables ([[tiers]])")
    tiers = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"name", "model"}:
            raise ConfigError(f"{source}: `tiers[{i}]` needs exactly the keys `name` and `model`")
        tiers.append(
            TierConfig(
                _typed(source, f"tiers[{i}].name", item["name"], str),
                _typed(source, f"tiers[{i}].model", item["model"], str),
            )
        )
    return tuple(tiers)


def _models(source: str, value: Any, defaults: Mapping[str, ModelConfig]) -> dict[str, ModelConfig]:
    if not isinstance(value, dict):
        raise ConfigError(f'{source}: `models` must be a table of tables ([models."NAME"])')
    models = dict(defaults)
    known = {f.name for f in fields(ModelConfig)} - {"name"}
    for name, item in value.items():
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: `models.{name}` must be a table")
        for key in item:
            if key.lower() in _SECRET_KEYS:
                raise ConfigError(f"{source}: `models.{name}.{key}`: keys belong in the environment, not the config")
            if key not in known:
                raise ConfigError(f"{source}: unknown key `models.{name}.{key}`")
        base = models.get(name)
        if base is None:
            missing = {"input_per_mtok", "output_per_mtok"} - set(item)
            if missing:
                raise ConfigError(f"{source}: `models.{name}` needs prices: {', '.join(sorted(missing))}")
            base = ModelConfig(name, 0.0, 0.0)
        changes: dict[str, Any] = {}
        for key, raw in item.items():
            if key == "extra_body":
                if not isinstance(raw, dict):
                    raise ConfigError(f"{source}: `models.{name}.extra_body` must be a table")
                changes[key] = MappingProxyType(dict(raw))
            else:
                kind = float if key.endswith("_mtok") else int
                changes[key] = _typed(source, f"models.{name}.{key}", raw, kind)
        models[name] = replace(base, **changes)
    return models


def validate(cfg: Config) -> Config:
    """Check cross-field rules; return `cfg` unchanged or raise ConfigError naming the key."""
    if cfg.rate_window_s <= 0:
        raise ConfigError("config: `rate_window_s` must be positive")
    if cfg.http_backend not in ("aiohttp", "httpx"):
        raise ConfigError(f'config: `http_backend` must be "aiohttp" or "httpx", not {cfg.http_backend!r}')
    names = cfg.tier_names
    if len(set(names)) != len(names):
        raise ConfigError("config: tier names must be unique")
    if cfg.classifier.default_tier not in names:
        raise ConfigError(
            f"config: `classifier.default_tier` = {cfg.classifier.default_tier!r} is not a tier "
            f"(tiers: {', '.join(names)})"
        )
    for model in cfg.used_models():
        if model not in cfg.models:
            raise ConfigError(f'config: model {model!r} has no `[models."{model}"]` entry with prices')
    for m in cfg.models.values():
        for key in ("input_per_mtok", "output_per_mtok", "rpm", "tpm", "context_tokens"):
            if getattr(m, key) < 0:
                raise ConfigError(f"config: `models.{m.name}.{key}` must not be negative")
        if m.max_concurrency < 1:
            raise ConfigError(f"config: `models.{m.name}.max_concurrency` must be at least 1")
    r = cfg.retry
    if r.max_attempts < 1:
        raise ConfigError("config: `retry.max_attempts` must be at least 1")
    for key in ("initial_backoff_s", "max_backoff_s"):
        if getattr(r, key) < 0:
            raise ConfigError(f"config: `retry.{key}` must not be negative")
    for key in ("request_timeout_s", "connect_timeout_s"):
        if getattr(r, key) <= 0:
            raise ConfigError(f"config: `retry.{key}` must be positive")
    if cfg.escalation.min_words < 0:
        raise ConfigError("config: `escalation.min_words` must not be negative")
    if cfg.classifier.max_tokens < 1:
        raise ConfigError("config: `classifier.max_tokens` must be at least 1")
    if cfg.answer.max_tokens < 0:
        raise ConfigError("config: `answer.max_tokens` must not be negative")
    if cfg.dedup.window < 0:
        raise ConfigError("config: `dedup.window` must not be negative")
    if cfg.input.max_line_bytes < 16:
        raise ConfigError("config: `input.max_line_bytes` must be at least 16")
    s = cfg.simulator
    if not 0 <= s.fault_rate <= 1 or not 0 <= s.short_answer_rate <= 1:
        raise ConfigError("config: `simulator.fault_rate` and `simulator.short_answer_rate` must be within 0..1")
    unknown = set(s.faults) - SIM_FAULTS
    if unknown:
        raise ConfigError(f"config: `simulator.faults`: unknown {sorted(unknown)}; known: {sorted(SIM_FAULTS)}")
    if s.window_s <= 0:
        raise ConfigError("config: `simulator.window_s` must be positive")
    return cfg
