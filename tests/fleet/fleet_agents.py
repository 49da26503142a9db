"""What the fleet tests share: one agent's config written from a test's template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import free_port


def agent_config(
    tmp: Path, name: str, template: str, *, tag: str = "", **values: Any
) -> tuple[Path, int]:
    """tmp/NAME[TAG].yaml from `template`, with {name}, a free {port} and its own {state}
    directory filled in beside the test's values; returns (the file, the port)."""
    port = free_port()
    config = tmp / f"{name}{tag}.yaml"
    config.write_text(
        template.format(name=name, port=port, state=tmp / f"state-{name}{tag}", **values)
    )
    return config, port
