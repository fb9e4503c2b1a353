"""Gateway configuration: a documented TOML shape, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.config import load_settings
from mloop.errors import ConfigurationError
from mloop.gateway import load_config, parse_config
from mloop.gateway._schema import schema_errors

EXAMPLE = """
[scheduler]
batch_aging_s = 20

[[deployments]]
name = "gpt-large"
provider = "openai"
base_url = "https://api.openai.com/v1"
model = "gpt-4o"
api_key_env = "OPENAI_API_KEY"
rpm = 500
tpm = 30000
max_concurrency = 50
input_cost_per_1k = 0.0025
output_cost_per_1k = 0.01

[[deployments]]
name = "claude-small"
provider = "anthropic"
base_url = "https://api.anthropic.com/v1"
model = "claude-3-5-haiku-latest"
api_key_env = "ANTHROPIC_API_KEY"
rpm = 50

[routes.smart]
chain = ["gpt-large", "claude-small"]
output_schema = { type = "object", required = ["answer"] }

[routes.smart.templates.claude-small]
version = "2"
system = "Answer only with JSON."
few_shot = [{ role = "user", content = "2+2" }, { role = "assistant", content = '{"answer": 4}' }]
"""


def test_example_configuration_parses(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(EXAMPLE)
    config = load_config(path)
    assert config.batch_aging_s == 20
    assert config.routes["smart"].chain == ("gpt-large", "claude-small")
    assert config.routes["smart"].template_for("claude-small").version == "2"
    assert config.routes["smart"].template_for("gpt-large").version == "none"
    dep = config.deployments["gpt-large"]
    assert dep.cost(1000, 1000) == pytest.approx(0.0125)


def test_configuration_can_live_in_mloop_toml(tmp_path: Path) -> None:
    path = tmp_path / "mloop.toml"
    path.write_text(EXAMPLE + "\n[gateway]\nport = 4100\n")
    settings = load_settings(
        env={}, config_file=path, home=tmp_path / "home", redis_url="redis://127.0.0.1:6379/0"
    )
    config = load_config(settings=settings)
    assert set(config.deployments) == {"gpt-large", "claude-small"}
    assert config.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no \\[\\[deployments\\]\\]"),
        ({"deployments": [{"name": "a", "base_url": "u", "model": "m"}]}, "no routes"),
        (
            {
                "deployments": [{"name": "a", "base_url": "u", "model": "m", "provider": "x"}],
                "routes": {"r": {"chain": ["a"]}},
            },
            "provider='x' is not supported",
        ),
        (
            {
                "deployments": [{"name": "a", "base_url": "u", "model": "m"}],
                "routes": {"r": {"chain": ["b"]}},
            },
            "names deployment 'b', which is not defined; defined: \\['a'\\]",
        ),
        (
            {
                "deployments": [{"name": "a", "base_url": "u", "model": "m", "rpm": -1}],
                "routes": {"r": {"chain": ["a"]}},
            },
            "rpm=-1 must be a number >= 0",
        ),
        (
            {
                "deployments": [{"name": "a", "base_url": "u", "model": "m", "rmp": 5}],
                "routes": {"r": {"chain": ["a"]}},
            },
            "unknown key\\(s\\) \\['rmp'\\]",
        ),
        (
            {
                "deployments": [{"name": "a", "base_url": "u", "model": "m"}],
                "routes": {"r": {"chain": ["a"], "templates": {"a": {"user": "no slot"}}}},
            },
            "must contain \\{content\\}",
        ),
    ],
)
def test_configuration_errors_say_what_to_fix(data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigurationError, match=message):
        parse_config(data)


def test_missing_configuration_explains_the_three_places() -> None:
    with pytest.raises(ConfigurationError, match="--config gateway.toml"):
        load_config(settings=load_settings(env={}, config_file=None))


def test_schema_checker_reports_each_problem() -> None:
    schema = {
        "type": "object",
        "required": ["label", "score"],
        "additionalProperties": False,
        "properties": {
            "label": {"enum": ["spam", "ham"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    assert schema_errors({"label": "spam", "score": 0.3}, schema) == []
    problems = schema_errors({"label": "eggs", "score": 3, "x": 1}, schema)
    assert len(problems) == 3
    assert schema_errors("text", schema) == ["$: expected object, got str"]


def test_the_documented_example_is_valid() -> None:
    import tomllib

    docs = Path(__file__).parents[3] / "docs" / "gateway.md"
    text = docs.read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    config = parse_config(tomllib.loads(block))
    route = config.routes["smart"]
    assert route.chain == ("gpt-large", "gpt-small", "claude-small")
    assert route.template_for("gpt-small").version == "small-v2"
    assert route.output_schema is not None
