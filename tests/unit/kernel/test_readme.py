"""The README's configuration examples load as written."""

from __future__ import annotations

import re
from pathlib import Path

from mloop.config import load_settings
from mloop.monitor.live import rules_from_config

README = Path(__file__).resolve().parents[3] / "README.md"


def test_every_toml_block_in_the_readme_is_valid_configuration(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README documents mloop.toml"
    for i, block in enumerate(blocks):
        path = tmp_path / f"mloop-{i}.toml"
        path.write_text(block)
        settings = load_settings(env={}, config_file=path, home=tmp_path / "home")
        rules_from_config(settings.raw)


def test_the_readme_starts_with_the_two_setup_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["./scripts/demo", "./scripts/test"]
