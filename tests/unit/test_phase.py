"""A download's phases: the table's walks a real download takes, and the steps it refuses."""

from __future__ import annotations

import pytest

from pkgcache_suite.transfer.phase import FINAL, TRANSITIONS, Event, IllegalStep, Phase, advance, client_left

A, S, C, X = Phase.ASKED, Phase.STREAMING, Phase.CONTINUING, Phase.CUT
E = Event


@pytest.mark.parametrize("events,end", [
    ((E.STORABLE, E.COMPLETE), Phase.STORED),  # a miss stored while it streams
    ((E.STORABLE, E.COMPLETE, E.CLIENT_LEFT), Phase.STORED),  # the client leaves after the last byte
    ((E.UNSTORABLE,), Phase.PASSED),  # a 404, a 206, a body admission refuses
    ((E.CURRENT,), Phase.ANSWERED),  # a 304 on a revalidation
    ((E.STORABLE, E.CLIENT_LEFT, E.COMPLETE), Phase.STORED),  # finished for the followers
    ((E.STORABLE, E.CLIENT_LEFT, E.STALLED, E.COMPLETE), Phase.STORED),  # the watchdog cut the left client's flow
    ((E.STORABLE, E.CLIENT_LEFT, E.BROKEN), Phase.FAILED),
    ((E.STORABLE, E.STALLED, E.BROKEN), Phase.FAILED),  # the watchdog cut it, the error follows
    ((E.STALLED, E.BROKEN), Phase.FAILED),  # no headers before the cut
    ((E.STORABLE, E.BROKEN), Phase.FAILED),  # short, wrong, or the disk refused it
])
def test_walks(events: tuple[Event, ...], end: Phase) -> None:
    phase = A
    for e in events:
        phase = advance(phase, e)
    assert phase is end


@pytest.mark.parametrize("phase,event", [
    (A, E.COMPLETE),  # nothing was streaming
    (Phase.PASSED, E.STORABLE), (Phase.FAILED, E.COMPLETE), (Phase.ANSWERED, E.STORABLE),  # final phases stay
    (C, E.CLIENT_LEFT), (C, E.STORABLE),
])
def test_steps_the_table_does_not_list_are_refused(phase: Phase, event: Event) -> None:
    with pytest.raises(IllegalStep):
        advance(phase, event)


def test_nothing_leaves_a_final_phase_but_stored_absorbing_its_aftermath() -> None:
    for (phase, _event), to in TRANSITIONS.items():
        if phase in FINAL:
            assert phase is Phase.STORED and to is Phase.STORED


@pytest.mark.parametrize("error,left", [
    ("Client disconnected.", True),  # the client went away, upstream still sends: go on without it
    ("HTTP/1 protocol error: peer closed connection without sending complete message body", False),  # upstream
    ("Connection killed.", False),
    ("", False),
])
def test_whose_side_ended(error: str, left: bool) -> None:
    assert client_left(error) is left
