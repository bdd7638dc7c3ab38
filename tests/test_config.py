"""Config loading: TOML on top of the defaults, every bad key rejected by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade_batch.config import ConfigError, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cascade.toml"
    path.write_text(text)
    return path


def test_sample_config_loads() -> None:
    """samples/cascade.toml is valid and equals the defaults where it restates them."""
    cfg = load(Path(__file__).parent.parent / "samples" / "cascade.toml")
    assert cfg.tier_names == ("simple", "moderate", "complex")
    assert cfg.models["Qwen3.5-0.8B"].rpm == 300


def test_overrides_apply(tmp_path: Path) -> None:
    """Values from the file replace defaults; untouched models keep theirs."""
    cfg = load(
        write(
            tmp_path,
            """
currency = "USD"
[escalation]
min_words = 5
[models."Qwen3.5-0.8B"]
rpm = 1200
[[tiers]]
name = "small"
model = "Qwen3.5-0.8B"
[[tiers]]
name = "big"
model = "gpt-oss-120b"
[classifier]
default_tier = "big"
""",
        )
    )
    assert cfg.currency == "USD"
    assert cfg.escalation.min_words == 5
    assert cfg.models["Qwen3.5-0.8B"].rpm == 1200
    assert cfg.models["Qwen3.5-0.8B"].input_per_mtok == 0.05
    assert cfg.tier_names == ("small", "big")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("colour = 1", "unknown key `colour`"),
        ("[escalation]\nmin_wrods = 3", "escalation.min_wrods"),
        ('[classifier]\ndefault_tier = "huge"', "classifier.default_tier"),
        ('[[tiers]]\nname = "a"\nmodel = "NoPrice-1B"\n[classifier]\ndefault_tier = "a"', "NoPrice-1B"),
        ('[models."New-7B"]\nrpm = 5', "models.New-7B` needs prices"),
        ('[models."Qwen3.5-0.8B"]\nrpm = -1', "models.Qwen3.5-0.8B.rpm"),
        ('[models."Qwen3.5-0.8B"]\nmax_concurrency = 0', "max_concurrency"),
        ('[retry]\nmax_attempts = "six"', "retry.max_attempts"),
        ('api_key = "sk-123"', "environment"),
        ('[models."Qwen3.5-0.8B"]\napi_key = "sk-123"', "environment"),
        ('[simulator]\nfaults = ["meteor"]', "simulator.faults"),
        ("this is not toml", "invalid TOML"),
        ('http_backend = "curl"', "http_backend"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    """A bad config fails at load with a message that names what is wrong."""
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    assert fragment in str(info.value)
    assert "sk-123" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    """A missing config file is a clear error."""
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml")
