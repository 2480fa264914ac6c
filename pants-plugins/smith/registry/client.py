"""A client of the OCI distribution spec for one registry host: blobs, manifests, tags, auth.

Every operation is retried (bounded, with exponential backoff) on dropped connections and
5xx/429 answers; uploads resume from the registry's reported offset or restart when the
upload session is gone (e.g. the registry restarted with a new secret).

Nothing a registry sends is trusted: JSON (manifests, token answers, error bodies) goes through
smith.safe_json, digests are validated before they name a URL, credentials go only to the registry's
own origin (and to its token realm, which must be https unless the registry is plain http or
--insecure), and text from the server is escaped before it is printed."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import base64
import math
import os
import threading
import time

from smith import safe_json
from smith.errors import SmithError
from smith.registry import media_types, urls
from smith.registry.blob_locations import BlobLocations
from smith.registry.challenge import parse_challenges
from smith.registry.credentials import Credentials
from smith.registry.digests import check_digest, digest_of, hasher_for, new_hasher, verify_bytes
from smith.registry.reference import check_tag
from smith.registry.transport import (MAX_BODY, Response, RetryableError, Transport, origin,
                                      printable)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Tuple, TypeVar

    from smith.registry.transport import Body
    T = TypeVar("T")

MiB = 1 << 20
MAX_TOKEN_LIFETIME = 24 * 3600.0


def _token_text(value: object) -> bool:
    """A token goes into a header: visible ASCII only (no CR/LF to split the request)."""
    return isinstance(value, str) and 0 < len(value) <= 64 << 10 and all(
        "!" <= c <= "~" for c in value)


def _covered(scope: str, scopes: List[str]) -> bool:
    """Is `repository:a:pull` already part of e.g. `repository:a:pull,push`?"""
    resource, _, actions = scope.rpartition(":")
    for have in scopes:
        have_resource, _, have_actions = have.rpartition(":")
        if have_resource == resource and set(actions.split(",")) <= set(have_actions.split(",")):
            return True
    return False


class RegistryClient:
    def __init__(self, registry: str, transport: Optional[Transport] = None,
                 credentials: Optional[Credentials] = None, retries: int = 4,
                 backoff: float = 0.5, chunk_threshold: int = 64 * MiB, chunk_size: int = 16 * MiB,
                 locations: Optional[BlobLocations] = None):
        """`locations` remembers which repositories hold which blobs (to mount them from
        there); by default only for this client's lifetime."""
        self.registry = registry  # host[:port] the requests go to
        self.locations = locations if locations is not None else BlobLocations()
        self.transport = transport or Transport()
        self.credentials = credentials
        self.retries, self.backoff = retries, backoff
        self.chunk_threshold, self.chunk_size = chunk_threshold, chunk_size
        self._lock = threading.Lock()
        self._scheme: Optional[str] = None  # "basic" or "bearer", learnt from the first 401
        self._bearer: Dict[str, str] = {}  # realm, service of the token server
        self._tokens: Dict[str, Tuple[str, float]] = {}  # scope -> (token, expiry)
        self._uploading: Dict[Tuple[str, str], threading.Lock] = {}  # (repo, digest) -> gate

    # ---- retries -------------------------------------------------------------------------
    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        for n in range(self.retries + 1):
            try:
                return attempt()
            except RetryableError as e:
                last = e
                if n < self.retries:
                    time.sleep(min(self.backoff * (2 ** n), 30.0))
        raise SmithError("%s on %s failed after %d attempts: %s; check that the registry is up "
                         "and retry" % (what, self.registry, self.retries + 1, last))

    # ---- auth ----------------------------------------------------------------------------
    def _auth_header(self, scopes: List[str], url: str) -> Dict[str, str]:
        if origin(url) != origin(self.transport.base_url(self.registry)):
            return {}  # e.g. an upload Location on another host: it gets no credentials
        with self._lock:
            scheme = self._scheme
            token = self._tokens.get(" ".join(scopes))
        if scheme == "basic" and self.credentials:
            raw = "%s:%s" % (self.credentials.username, self.credentials.password)
            return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}
        if scheme == "bearer" and token and token[1] > time.time():
            return {"Authorization": "Bearer " + token[0]}
        return {}

    def _where(self) -> str:
        if self.credentials:
            return "the credentials for %s from %s" % (self.registry, self.credentials.source)
        return "no credentials (none found for %s in auth.json / ~/.docker/config.json)" % (
            self.registry)

    def _learn(self, resp: Response, scopes: List[str]) -> None:
        """React to a 401: pick the scheme from WWW-Authenticate, fetch a token if Bearer."""
        challenges = parse_challenges(resp.header("WWW-Authenticate") or "")
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            params = by_scheme["bearer"].params
            if not params.get("realm"):
                raise SmithError("%s sent a Bearer challenge without realm" % self.registry)
            self._check_realm(params["realm"])
            with self._lock:
                self._scheme, self._bearer = "bearer", params
            wanted = params.get("scope", "").split(" ")
            self._fetch_token(scopes, [s for s in wanted if s and not _covered(s, scopes)])
        elif "basic" in by_scheme:
            if not self.credentials:
                raise SmithError("%s requires a login and %s; add them with `podman login` / "
                                 "`docker login` or to $REGISTRY_AUTH_FILE" % (self.registry,
                                                                                self._where()))
            with self._lock:
                self._scheme = "basic"
        else:
            raise SmithError("%s answered 401 with no usable WWW-Authenticate challenge (%r)"
                             % (self.registry, resp.header("WWW-Authenticate")))

    def _check_realm(self, realm: str) -> None:
        """Credentials go to the token realm: it must be https, unless the registry itself is
        spoken to in plain http (a local one) or was named --insecure."""
        scheme = urls.split(realm).scheme
        registry_scheme = origin(self.transport.base_url(self.registry))[0]
        if scheme == "https" or (scheme == "http" and (self.transport.insecure
                                                       or registry_scheme == "http")):
            return
        raise SmithError("%s: the token realm %s is not https; smith sends credentials only over "
                         "TLS (pass --insecure for a registry you trust on a private network)"
                         % (self.registry, printable(realm)))

    def _fetch_token(self, scopes: List[str], extra: List[str]) -> None:
        """A token for `scopes` (plus any the challenge asked for), cached under `scopes`."""
        params = [("service", self._bearer["service"])] if self._bearer.get("service") else []
        params += [("scope", s) for s in scopes + extra]
        realm = self._bearer["realm"]
        url = realm + ("&" if "?" in realm else "?") + urls.encode(params)
        headers = {}
        if self.credentials:
            raw = "%s:%s" % (self.credentials.username, self.credentials.password)
            headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode()
        resp = self.transport.request("GET", url, headers)
        realm = printable(realm)
        if resp.status in (401, 403):
            raise SmithError("token server %s refused %s for %s (HTTP %d); check the username and "
                             "password" % (realm, self._where(), " ".join(scopes), resp.status))
        if resp.status != 200:
            raise SmithError("token server %s answered HTTP %d: %s" % (
                realm, resp.status, printable(resp.body)))
        what = "token server %s" % realm
        answer = safe_json.loads(resp.body, what, max_bytes=MAX_BODY)
        token = answer.get("token") or answer.get("access_token")
        if not _token_text(token):
            raise SmithError("%s: the answer holds no usable token (a non-empty string of "
                             "visible ASCII in 'token' or 'access_token')" % what)
        lifetime = answer.get("expires_in")
        if lifetime is None:
            lifetime = 60
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) \
                or not math.isfinite(lifetime):
            raise SmithError("%s: 'expires_in' must be a number of seconds, not %s" % (
                what, printable(repr(lifetime), 40)))
        lifetime = min(max(float(lifetime), 0.0), MAX_TOKEN_LIFETIME)
        with self._lock:
            # Renew a little early so a token does not expire between check and use.
            self._tokens[" ".join(scopes)] = (token, time.time() + max(lifetime - 10, 5))

    def _request(self, method: str, path: str, scopes: List[str],
                 headers: Optional[Dict[str, str]] = None,
                 body: Callable[[], Body] = lambda: None,
                 sink: Optional[Callable[[bytes], None]] = None,
                 limit: Optional[int] = None) -> Response:
        """One authenticated exchange: a 401 is answered once with fresh credentials."""
        url = path if "://" in path else self.transport.base_url(self.registry) + path
        for attempt in range(2):
            all_headers = dict(headers or {})
            all_headers.update(self._auth_header(scopes, url))
            data = body()
            try:
                resp = self.transport.request(method, url, all_headers, data, sink, limit=limit)
            finally:
                if hasattr(data, "close"):
                    data.close()
            if resp.status != 401:
                return resp
            if attempt == 0:
                self._learn(resp, scopes)
        raise SmithError("%s refused %s for %s %s (HTTP 401); check the username and password"
                         % (self.registry, self._where(), method, path.split("?")[0]))

    # ---- errors --------------------------------------------------------------------------
    def _fail(self, resp: Response, what: str) -> SmithError:
        detail = printable(resp.body)
        try:
            errors = safe_json.loads(resp.body, "error body").get("errors")
        except SmithError:
            errors = None
        if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
            detail = "; ".join("%s: %s" % (printable(str(e.get("code")), 60),
                                           printable(str(e.get("message")), 200))
                               for e in errors[:5])
        if resp.status == 403:
            return SmithError("%s: %s denied access with %s (%s)" % (what, self.registry,
                                                                     self._where(), detail))
        return SmithError("%s: %s answered HTTP %d (%s)" % (what, self.registry, resp.status,
                                                            detail))

    # ---- blobs ---------------------------------------------------------------------------
    @staticmethod
    def _pull(repo: str) -> List[str]:
        return ["repository:%s:pull" % repo]

    @staticmethod
    def _push(repo: str) -> List[str]:
        return ["repository:%s:pull,push" % repo]

    def blob_exists(self, repo: str, digest: str) -> bool:
        """False also when the registry keeps failing on this one blob with a 5xx: a registry
        killed while linking a blob leaves an empty link file (HEAD answers 500 for ever), and
        uploading the blob again rewrites the link."""
        server_errors = [0]

        def attempt() -> bool:
            try:
                resp = self._request("HEAD", "/v2/%s/blobs/%s" % (repo, digest),
                                     self._push(repo))
            except RetryableError as e:
                if e.status is not None and e.status >= 500:
                    server_errors[0] += 1
                    if server_errors[0] >= 2:
                        return False
                raise
            if resp.status == 200:
                return True
            if resp.status == 404:
                return False
            raise self._fail(resp, "HEAD blob %s in %s" % (digest, repo))
        return self._retrying("checking blob %s" % digest, attempt)

    def upload_blob(self, repo: str, digest: str, size: int, path: str,
                    mount_from: Optional[str] = None) -> str:
        """Make `digest` (the file at `path`) exist in `repo`: 'exists', 'mounted' or 'uploaded'.
        A blob the registry lacks is mounted from `mount_from` or from a repository of the same
        registry where this client (or the location cache) saw it, else uploaded.
        Threads of one client upload a given blob to a repository once: the others wait."""
        with self._lock:
            gate = self._uploading.setdefault((repo, digest), threading.Lock())
        with gate:
            outcome = self._upload_blob(repo, digest, size, path, mount_from)
        self.locations.seen(self.registry, repo, digest)
        return outcome

    def _upload_blob(self, repo: str, digest: str, size: int, path: str,
                     mount_from: Optional[str]) -> str:
        sources = [mount_from] if mount_from and mount_from != repo else []
        sources += [r for r in self.locations.candidates(self.registry, repo, digest)
                    if r not in sources]
        # With a place to mount from, the mount request comes first: a registry that has the
        # blob in `repo` already answers it with 201 too, so the HEAD would only cost a round
        # trip per blob. Without one (or when this client saw the blob in `repo` itself), HEAD.
        known_here = repo in self.locations.candidates(self.registry, "", digest)
        if (not sources or known_here) and self.blob_exists(repo, digest):
            return "exists"
        state: Dict[str, object] = {"location": None, "offset": 0}
        for source in sources[:2]:  # a declined mount (202) opened an upload: use that one
            if self._mount(repo, digest, source, state):
                return "mounted"
            if state["location"] is not None:
                break
        if sources and not known_here and self.blob_exists(repo, digest):
            return "exists"  # declined, but already there (pushed by someone else)
        scopes = self._push(repo)

        def attempt() -> str:
            # Only chunked uploads resume: a monolithic PUT cut short may have left part of the
            # body in the session, so it starts over in a new one.
            fresh = state.pop("fresh", False)  # the session a declined mount just opened
            if state["location"] is not None and not fresh and (
                    size <= self.chunk_threshold or not self._resume(state, scopes)):
                state["location"], state["offset"] = None, 0
            if state["location"] is None:
                resp = self._request("POST", "/v2/%s/blobs/uploads/" % repo, scopes)
                if resp.status != 202 or not resp.header("Location"):
                    raise self._fail(resp, "starting upload of %s to %s" % (digest, repo))
                state["location"] = self._absolute(resp)
            if size > self.chunk_threshold:
                self._send_chunks(state, scopes, path, size, digest)
            return self._finish(state, scopes, path, size, digest)
        return self._retrying("uploading blob %s to %s" % (digest, repo), attempt)

    def _mount(self, repo: str, digest: str, source: str, state: Dict[str, object]) -> bool:
        """Ask the registry to mount `digest` from `source` into `repo`: True when it did (201).
        A registry that declines answers 202 with a new upload session, left in `state`; any
        other answer (e.g. 401/403/404 for a source we may not read) just means: upload it."""
        scopes = self._push(repo) + self._pull(source)
        query = urls.encode({"mount": digest, "from": source})

        def attempt() -> Optional[Response]:
            try:
                return self._request("POST", "/v2/%s/blobs/uploads/?%s" % (repo, query), scopes)
            except SmithError:  # e.g. credentials refused for the other repository
                return None
        try:
            resp = self._retrying("mounting blob %s from %s" % (digest, source), attempt)
        except SmithError:
            return False
        if resp is None:
            return False
        if resp.status == 201:
            echoed = resp.header("Docker-Content-Digest")
            if echoed and echoed != digest:
                raise SmithError("%s mounted %s from %s as %s" % (
                    self.registry, digest, source, printable(echoed, 150)))
            return True
        if resp.status == 202 and resp.header("Location"):
            state["location"], state["fresh"] = self._absolute(resp), True
        return False

    def _absolute(self, resp: Response) -> str:
        return urls.join(resp.url, resp.header("Location") or "")

    def _resume(self, state: Dict[str, object], scopes: List[str]) -> bool:
        """Ask where an interrupted upload stands; False if the session is gone."""
        resp = self._request("GET", str(state["location"]), scopes)
        if resp.status != 204:
            return False
        rng = resp.header("Range") or ""
        if not rng.startswith("0-") or rng == "0-0":  # "0-0" means 0 or 1 bytes: start afresh
            return False
        try:
            state["offset"] = int(rng.split("-")[1]) + 1
        except ValueError:
            return False
        if resp.header("Location"):
            state["location"] = self._absolute(resp)
        return True

    @staticmethod
    def _check_session(resp: Response) -> None:
        """An upload session the registry forgot (restart, expiry) is retried from scratch:
        the next attempt's status query fails and a new session starts."""
        if resp.status in (400, 404) and b"BLOB_UPLOAD_" in resp.body:
            raise RetryableError("upload session lost: HTTP %d %s" % (
                resp.status, resp.body[:200].decode("utf-8", "replace")))

    def _send_chunks(self, state: Dict[str, object], scopes: List[str], path: str, size: int,
                     digest: str) -> None:
        while int(state["offset"]) < size:  # type: ignore[arg-type]
            start = int(state["offset"])  # type: ignore[arg-type]
            with open(path, "rb") as f:
                f.seek(start)
                chunk = f.read(self.chunk_size)
            end = start + len(chunk) - 1
            resp = self._request("PATCH", str(state["location"]), scopes, {
                "Content-Type": "application/octet-stream",
                "Content-Range": "%d-%d" % (start, end),
                "Content-Length": str(len(chunk))}, lambda: chunk)
            if resp.status != 202:
                self._check_session(resp)
                raise self._fail(resp, "uploading bytes %d-%d of %s" % (start, end, digest))
            state["location"], state["offset"] = self._absolute(resp), end + 1

    def _finish(self, state: Dict[str, object], scopes: List[str], path: str, size: int,
                digest: str) -> str:
        location = str(state["location"])
        url = location + ("&" if "?" in location else "?") + urls.encode(
            {"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        if size > self.chunk_threshold:  # everything went up by PATCH; close the session
            headers["Content-Length"] = "0"
            resp = self._request("PUT", url, scopes, headers)
        else:
            headers["Content-Length"] = str(size)
            readers: List[_HashingFile] = []

            def body() -> Body:
                readers.append(_HashingFile(path, digest))
                return readers[-1]
            resp = self._request("PUT", url, scopes, headers, body)
            sent = readers[-1]
            if sent.read_all and sent.digest() != digest:
                raise SmithError("%s: the file has digest %s, not %s (the blob it should be); "
                                 "the layout is corrupt or changed while it was pushed" % (
                                     path, sent.digest(), digest))
        if resp.status != 201:
            self._check_session(resp)
            raise self._fail(resp, "finishing upload of %s (%s)" % (digest, path))
        echoed = resp.header("Docker-Content-Digest")
        if echoed and echoed != digest:
            raise SmithError("%s stored %s as %s; the file changed during upload?" % (
                self.registry, path, echoed))
        return "uploaded"

    def fetch_blob(self, repo: str, digest: str, dest: str, size: int) -> None:
        """Download a blob to `dest`, hashed as it streams, stopped at `size` + 1 bytes; a
        mismatch removes `dest` and is an error."""
        check_digest(digest, "%s/%s: blob" % (self.registry, repo))
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise SmithError("%s/%s: blob %s: size %r is not a byte count" % (
                self.registry, repo, digest, size))

        def attempt() -> None:
            hasher = hasher_for(digest)
            written = [0]
            with open(dest, "wb") as out:
                def sink(chunk: bytes) -> None:
                    hasher.update(chunk)
                    written[0] += len(chunk)
                    out.write(chunk)
                resp = self._request("GET", "/v2/%s/blobs/%s" % (repo, digest),
                                     self._pull(repo), sink=sink, limit=size)
            if resp.status != 200:
                raise self._fail(resp, "fetching blob %s from %s" % (digest, repo))
            actual = "%s:%s" % (hasher.name, hasher.hexdigest())
            if actual != digest or written[0] != size:
                raise SmithError("blob %s from %s/%s is corrupt: got %d bytes with digest %s "
                                 "(expected %d bytes); nothing was written" % (
                                     digest, self.registry, repo, written[0], actual, size))
        try:
            self._retrying("fetching blob %s" % digest, attempt)
        except BaseException:
            if os.path.exists(dest):
                os.unlink(dest)
            raise
        self.locations.seen(self.registry, repo, digest)

    # ---- manifests -----------------------------------------------------------------------
    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """PUT a manifest or index under a tag or its digest; returns its digest."""
        return self.put_manifest_response(repo, ref, data, media_type)[0]

    def put_manifest_response(self, repo: str, ref: str, data: bytes, media_type: str
                              ) -> Tuple[str, Response]:
        def attempt() -> Response:
            resp = self._request("PUT", "/v2/%s/manifests/%s" % (repo, ref), self._push(repo),
                                 {"Content-Type": media_type, "Content-Length": str(len(data))},
                                 lambda: data)
            if resp.status == 400 and b"MANIFEST_BLOB_UNKNOWN" in resp.body:
                # distribution's filesystem driver writes blob links in place, so a blob that a
                # concurrent push of the same repository just linked can briefly look missing.
                raise RetryableError("registry does not see a blob yet: %s" % resp.body[:300])
            if resp.status != 201:
                raise self._fail(resp, "putting manifest %s:%s" % (repo, ref))
            return resp
        resp = self._retrying("putting manifest %s:%s" % (repo, ref), attempt)
        digest = digest_of(data)
        echoed = resp.header("Docker-Content-Digest")
        if echoed and echoed != digest:
            raise SmithError("%s stored manifest %s:%s as %s, not %s" % (
                self.registry, repo, ref, echoed, digest))
        return digest, resp

    def get_manifest(self, repo: str, ref: str, missing_ok: bool = False,
                     size: Optional[int] = None) -> Optional[Tuple[bytes, str, str]]:
        """GET a manifest/index by tag or digest: (bytes, media type, digest), digest-verified.
        `ref` is a digest if it holds a ':' (a tag cannot), so a malformed digest from an index
        is refused here and never sent as a tag; `size` (a descriptor's) caps the answer."""
        where = "%s/%s" % (self.registry, repo)
        pinned = ":" in ref
        if pinned:
            check_digest(ref, "%s: manifest" % where)
        else:
            check_tag(ref, "%s: manifest" % where)
        return self._get_manifest(repo, ref, pinned, missing_ok, size)

    def get_manifest_by_digest(self, repo: str, digest: str, size: Optional[int] = None
                               ) -> Tuple[bytes, str, str]:
        """A manifest named by a digest read from an index or given by the user: never a tag."""
        check_digest(digest, "%s/%s: manifest" % (self.registry, repo))
        found = self._get_manifest(repo, digest, True, False, size)
        assert found is not None
        return found

    def _get_manifest(self, repo: str, ref: str, pinned: bool, missing_ok: bool,
                      size: Optional[int]) -> Optional[Tuple[bytes, str, str]]:
        def attempt() -> Optional[Response]:
            resp = self._request("GET", "/v2/%s/manifests/%s" % (repo, ref), self._pull(repo),
                                 {"Accept": media_types.MANIFEST_ACCEPT}, limit=size)
            if resp.status == 404 and missing_ok:
                return None
            if resp.status == 404:
                raise self._fail(resp, "manifest %s/%s%s%s not found; check the repository and "
                                 "the %s" % (self.registry, repo, "@" if ":" in ref else ":", ref,
                                             "digest" if ":" in ref else "tag"))
            if resp.status != 200:
                raise self._fail(resp, "fetching manifest %s/%s %s" % (self.registry, repo, ref))
            return resp
        resp = self._retrying("fetching manifest %s:%s" % (repo, ref), attempt)
        if resp is None:
            return None
        data = resp.body
        what = "%s/%s%s%s" % (self.registry, repo, "@" if pinned else ":", ref)
        if len(data) > MAX_BODY:
            raise SmithError("%s: the manifest is larger than 4 MiB; refusing it" % what)
        if size is not None and len(data) != size:
            raise SmithError("%s: the manifest has %d bytes, its descriptor says %d" % (
                what, len(data), size))
        if pinned:
            digest = ref
        else:  # a tag: the digest the registry names (validated), else the content's own
            echoed = resp.header("Docker-Content-Digest")
            digest = check_digest(echoed, "%s: Docker-Content-Digest" % what) if echoed \
                else digest_of(data)
        verify_bytes(data, digest, "manifest %s" % what)
        media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        declared = safe_json.field(safe_json.loads(data, what), "mediaType", str, what,
                                   required=False)
        media_type = declared or media_type
        if media_type not in media_types.ALL_MANIFESTS:
            raise SmithError("%s: media type %s; smith reads OCI and Docker v2 manifests and "
                             "indexes only" % (what, printable(repr(media_type), 100)))
        return data, media_type, digest


class _HashingFile:
    """The file of a blob being uploaded, hashed as the transport reads it to send it."""

    def __init__(self, path: str, digest: str) -> None:
        self._f = open(path, "rb")
        self._hasher = hasher_for(digest)
        self.read_all = False

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data:
            self._hasher.update(data)
        else:
            self.read_all = True
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (0, 0):
            raise ValueError("a hashed upload restarts only from its beginning")
        self._hasher = new_hasher(self._hasher.name)
        self.read_all = False
        return self._f.seek(0)

    def tell(self) -> int:
        return self._f.tell()

    def digest(self) -> str:
        return "%s:%s" % (self._hasher.name, self._hasher.hexdigest())

    def close(self) -> None:
        self._f.close()
