"""Every command and every argument of the CLI says what it is for."""

from __future__ import annotations

import argparse

from pkgcache_suite.cli.main import build_parser


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    out, todo = [], [("pkgcache", build_parser())]
    while todo:
        name, p = todo.pop()
        out.append((name, p))
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {n}", sp) for n, sp in action.choices.items()]
    return out


def test_every_argument_has_help() -> None:
    parsers = _parsers()
    assert len(parsers) > 10
    missing = [f"{name}: {a.dest}" for name, p in parsers for a in p._actions
               if not isinstance(a, argparse._SubParsersAction) and not a.help]
    assert missing == []


def test_every_command_has_help() -> None:
    for name, p in _parsers():
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in action._choices_actions}
                assert all(helps.get(n) for n in action.choices), (name, helps)
