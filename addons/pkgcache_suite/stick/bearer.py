"""A registry's bearer-token challenge, answered for `pkgcache fetch`: an anonymous token from the token
service the registry names (RFC 6750 challenge, the distribution token protocol), kept per registry and
repository, so public and anonymously pullable images come in one trip.

The token request and the registry's 401 are small and read whole; the download itself stays a stream.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Generator
from urllib.parse import urlsplit

import httpx

_PARAM = re.compile(r'(\w+)="([^"]*)"')
MAX_TOKEN_ANSWER = 1 << 20


def challenge(value: str) -> dict[str, str] | None:
    """The parameters of a `Bearer realm="...",service="...",scope="..."` challenge; None for another."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    params = dict(_PARAM.findall(rest))
    realm = params.get("realm", "")
    return params if urlsplit(realm).scheme in ("http", "https") else None


def _repository(url: httpx.URL) -> str:
    path = url.path
    return path.split("/manifests/")[0].split("/blobs/")[0] if path.startswith("/v2/") else ""


class BearerChallenge(httpx.Auth):
    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], str] = {}  # (host, repository) -> token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("pkgcache fetch downloads with an asynchronous client")
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        where = (request.url.netloc.decode("ascii"), _repository(request.url))
        if where in self._tokens:
            request.headers["Authorization"] = f"Bearer {self._tokens[where]}"
        response = yield request
        params = challenge(response.headers.get("www-authenticate", "")) if response.status_code == 401 else None
        if params is None:
            return
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        answer = yield httpx.Request("GET", params["realm"], params=query)
        body = await answer.aread()
        if answer.status_code != 200 or len(body) > MAX_TOKEN_ANSWER:
            return
        try:
            doc = answer.json()
        except ValueError:
            return
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            return
        self._tokens[where] = token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request
