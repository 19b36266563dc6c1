"""Recipes are tested as written: their configuration blocks are read from the recipe files."""

from __future__ import annotations

import re
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def block(recipe: str, n: int = 0, proxy: str = "", mirror: str = "") -> str:
    """The n-th fenced block of recipes/<recipe>, with the proxy's and the mirror's address put in."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", (RECIPES / recipe).read_text(), re.S)
    text = blocks[n]
    if proxy:
        text = text.replace("PROXY-HOST:8080", proxy)
    if mirror:
        text = text.replace("mirror.example", mirror)
    return text
