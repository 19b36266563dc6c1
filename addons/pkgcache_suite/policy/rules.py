"""Decide what kind of file a URL names: immutable package, volatile index, or pass-through.

Rules live in text files (``pkgcache_suite/rules/*.conf``) rather than code so an admin can
add a distribution without a release; the user's filter file is consulted first
so a local decision always beats a shipped one.
"""

from __future__ import annotations

from pkgcache_suite.errors import PkgcacheError

import re
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path


class Kind(str, Enum):
    IMMUTABLE = "immutable"
    VOLATILE = "volatile"
    PASS = "pass"


class RulesError(PkgcacheError, ValueError):
    """A rules or filter file cannot be used; raised at start so the admin sees it at once."""


@dataclass(frozen=True)
class Rule:
    kind: Kind
    pattern: re.Pattern[str]
    origin: str  # "file:line", for error messages and the report page
    accept: re.Pattern[str] | None = None  # the rule applies only when the request's Accept matches
    ecosystem: str = ""  # the shipped rules file's name without its number: debian, rpm, cargo, oci...

    def applies(self, text: str, accept: str) -> bool:
        return bool(self.pattern.search(text)) and (self.accept is None or bool(self.accept.search(accept)))


DEFAULT_RULES_DIR = Path(__file__).resolve().parents[1] / "rules"  # shipped with the package


def _parse_line(line: str, origin: str, bare_kind: Kind | None) -> Rule | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    head, _, rest = text.partition(" ")
    try:
        kind = Kind(head)
        expr = rest.strip()
    except ValueError:
        if bare_kind is None:
            raise RulesError(f"{origin}: expected 'immutable|volatile|pass REGEX', got {text!r}")
        kind, expr = bare_kind, text
    expr, _, accept = expr.partition(" when-accept ")
    expr, accept = expr.strip(), accept.strip()
    if not expr:
        raise RulesError(f"{origin}: rule has no regular expression")
    try:
        return Rule(kind, re.compile(expr), origin, re.compile(accept, re.IGNORECASE) if accept else None)
    except re.error as e:
        raise RulesError(f"{origin}: bad regular expression {expr!r}: {e}") from None


def ecosystem_of(path: Path) -> str:
    """A rules file's ecosystem: its name without the number that orders it (10-debian.conf: debian)."""
    return re.sub(r"^[0-9]+-", "", path.stem)


def _read(path: Path, bare_kind: Kind | None) -> list[Rule]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise RulesError(f"cannot read {path}: {e}") from None
    rules = []
    for n, line in enumerate(lines, 1):
        rule = _parse_line(line, f"{path}:{n}", bare_kind)
        if rule:
            rules.append(rule)
    return rules


class Classifier:
    """First match wins: filter file (matched on the full URL), then shipped rules (on the path)."""

    def __init__(self, rules_dir: Path | None = None, filter_file: Path | None = None) -> None:
        rules_dir = rules_dir or DEFAULT_RULES_DIR
        if not rules_dir.is_dir():
            raise RulesError(f"rules directory {rules_dir} does not exist")
        self.path_rules: list[Rule] = []
        for f in sorted(rules_dir.glob("*.conf")):
            self.path_rules.extend(replace(r, ecosystem=ecosystem_of(f)) for r in _read(f, None))
        self.url_rules: list[Rule] = _read(filter_file, Kind.PASS) if filter_file else []

    def classify(self, url: str, path: str, accept: str = "") -> Kind:
        """A rule may also ask for the request's Accept header (``when-accept REGEX``): npm's package
        documents are plain names at a registry's root, told from web pages by the JSON they ask for."""
        return self.explain(url, path, accept)[0]

    def explain(self, url: str, path: str, accept: str = "") -> tuple[Kind, str]:
        """The kind, and the ecosystem whose shipped rules know the path ("other" when none does; a filter
        file's decision wins the kind, never the ecosystem)."""
        kind = next((r.kind for r in self.url_rules if r.applies(url, accept)), None)
        p = path.split("?", 1)[0]
        for rule in self.path_rules:
            if rule.applies(p, accept):
                return kind or rule.kind, rule.ecosystem
        return kind or Kind.PASS, "other"
