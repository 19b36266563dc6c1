"""What pkgcache is doing for one flow, kept beside mitmproxy's flow (flows stay serialisable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from pkgcache_suite.policy.rules import Kind
from pkgcache_suite.storage import Entry, Lock, Writer
from pkgcache_suite.transfer.flight import Flight
from pkgcache_suite.transfer.phase import Event, Phase, advance

if TYPE_CHECKING:
    from pkgcache_suite.wanted.wantedlist import WantedList
    from pkgcache_suite.transfer.tee import Tee


# mitmproxy flow markers (emoji shortcodes mitmweb shows in its flow list), by what the cache did
MARKERS = {"HIT": ":green_circle:", "REVALIDATED": ":green_circle:", "STALE": ":orange_circle:",
           "MISS": ":large_blue_circle:", "OFFLINE": ":red_circle:", "REFUSED": ":red_circle:"}


# flow.metadata: the response is the worker's own (made by an addon, or by the loopback file server), not an
# upstream's: the engine headers in it are the worker's choice (proxy/boundary.py)
OWN_ANSWER = "pkgcache_own_answer"


@dataclass(frozen=True)
class WantedNote:
    """What the wanted list records of a miss whose upstream turned out unreachable (wanted/wantedlist.py)."""

    url: str
    client: str
    headers: dict[str, str]
    kind: str


class WantedSource(Protocol):
    """Where a wanted URL is recorded: the offline addon's wanted list."""

    def wanted_list(self) -> WantedList: ...


class Role(str, Enum):
    PASS = "pass"  # proxied untouched
    LEAD = "lead"  # downloading the file for everyone who asks for it
    REVALIDATE = "revalidate"  # asking upstream whether the cached copy is current
    ROUTED = "routed"  # answered by the loopback file server


@dataclass
class FlowState:
    """What pkgcache decided for one flow; kept in the addon, not in flow.metadata, so flows stay serialisable."""

    key: str
    url: str
    kind: Kind
    host: str
    role: Role = Role.PASS
    lock: Lock | None = None
    flight: Flight | None = None
    entry: Entry | None = None
    client: dict[str, str] = field(default_factory=dict)  # the client's own Range/conditional headers
    writer: Writer | None = None
    expected: int | None = None
    original_url: str | None = None
    x_cache: str = ""
    phase: Phase = Phase.ASKED  # where its download stands (transfer/phase.py)
    tee: Tee | None = None
    validator: str | None = None  # ETag or Last-Modified of the body being downloaded, for If-Range
    must_length: int | None = None  # the size the body must have to be committed
    must_sha256: str | None = None  # the digest it must have (by-hash name, or a cached index)
    network: str = ""  # the client's network, for the per-network counters
    front_path: str | None = None  # behind the tier's nginx: where it would find the published file
    remapped: bool = False  # a configured repository's file: the worker chooses the mirror and the path
    accept: str = ""  # the client's Accept (a registry's manifests come in the types it names)
    ecosystem: str = "other"  # whose rules classified it (policy/rules.py), for the counters

    @property
    def committed(self) -> bool:
        return self.phase is Phase.STORED

    def step(self, event: Event) -> Phase:
        """Move the download's phase by one event (transfer/phase.py's table)."""
        self.phase = advance(self.phase, event)
        return self.phase
