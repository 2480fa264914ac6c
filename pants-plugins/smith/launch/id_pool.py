"""Host uid/gid ranges, one per container, handed out under a lock and given back on delete.

STORE/ids.json records each range with the container that holds it and the pid (plus its
start time, against pid reuse) of the launcher that owns it. A range whose owner died without
cleaning up is "stale": allocate() hands it to a reaper callback, which removes what the dead
launcher left, and then frees it.
"""
import json
import os
from typing import Any, Callable, List, NamedTuple, Optional

from smith import safe_json
from smith.errors import SmithError
from smith.atomic import write_file
from smith.launch.layer_store import flocked

ID_LIMIT = 1 << 32  # ids are 32-bit; (uid_t)-1 is reserved
MAX_IDS_FILE_BYTES = 16 << 20  # a range takes ~100 bytes + ~75 per layer


class IdRange(NamedTuple):
    base: int
    size: int
    container: str   # the container (directory) name
    pid: int         # the launcher owning the range
    start: str       # that launcher's start time (field 22 of /proc/PID/stat)
    runtime: str     # the runtime that ran it, to force-delete a stale container
    layers: List[str] = []  # diff_ids its root is made of: prune keeps them


def _range(raw: Any, what: str) -> IdRange:
    """One recorded range, every field of its type; the container is a plain name (the reaper
    deletes STORE/c/NAME)."""
    if not isinstance(raw, dict):
        raise SmithError("%s: expected a JSON object, found %s" % (what, safe_json._kind(type(raw))))
    unknown = sorted(set(raw) - set(IdRange._fields))
    if unknown:
        raise SmithError("%s: unknown fields %s" % (what, unknown[:5]))
    layers = safe_json.field(raw, "layers", list, what, required=False) or []
    if not all(isinstance(d, str) for d in layers):
        raise SmithError("%s: the field 'layers' must hold only strings" % what)
    r = IdRange(*(safe_json.field(raw, k, int if k in ("base", "size", "pid") else str, what)
                  for k in IdRange._fields[:-1]), layers)
    if r.container in ("", ".", "..") or "/" in r.container or "\0" in r.container:
        raise SmithError("%s: the container %r is not a plain name" % (what, r.container[:100]))
    return r


def process_start(pid: int) -> Optional[str]:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def is_alive(r: IdRange) -> bool:
    return process_start(r.pid) == r.start


class IdPool:
    def __init__(self, store: str, first: int = 100000, size: int = 65536, count: int = 4096) -> None:
        if first < 1 or size < 1 or count < 1 or first + size * count >= ID_LIMIT:
            raise SmithError("the id pool %d + %d x %d does not fit in 32-bit ids; lower --id-base, "
                             "--ids-per-container or --max-containers" % (first, size, count))
        self.file = os.path.join(store, "ids.json")
        self.first, self.size, self.count = first, size, count

    def _load(self) -> List[IdRange]:
        if not os.path.lexists(self.file):
            return []
        try:
            doc = safe_json.load_file(self.file, max_bytes=MAX_IDS_FILE_BYTES)
            return [_range(r, "%s: ranges[%d]" % (self.file, i))
                    for i, r in enumerate(safe_json.field(doc, "ranges", list, self.file))]
        except SmithError as e:
            # Its containers' names and runtime are used to delete them: nothing of it is guessed.
            raise SmithError("%s; it records the id ranges of this store's containers: once no "
                             "smith launcher of the store runs, delete it" % e) from None

    def _save(self, ranges: List[IdRange]) -> None:
        ranges_json = json.dumps({"ranges": [r._asdict() for r in sorted(ranges)]}, indent=1, sort_keys=True)
        write_file(self.file, ranges_json, perms=None, parents=False)

    def allocate(self, container: Callable[[int], str], runtime: str,
                 reap: Callable[[IdRange], None], layers: List[str] = ()) -> IdRange:
        """Take the lowest free range; `container(base)` names the container that gets it."""
        with flocked(self.file + ".lock"):
            ranges = self._load()
            live = []
            for r in ranges:
                if is_alive(r):
                    live.append(r)
                else:
                    reap(r)
            for i in range(self.count):
                base = self.first + i * self.size
                if all(base + self.size <= r.base or r.base + r.size <= base for r in live):
                    me = os.getpid()
                    got = IdRange(base, self.size, container(base), me, process_start(me) or "",
                                  runtime, list(layers))
                    self._save(live + [got])
                    return got
            self._save(live)
        raise SmithError("all %d id ranges of the pool in %s are in use; wait for containers to end "
                         "or raise --max-containers" % (self.count, self.file))

    def free(self, taken: IdRange) -> None:
        with flocked(self.file + ".lock"):
            self._save([r for r in self._load() if r != taken])

    def in_use(self) -> List[IdRange]:
        with flocked(self.file + ".lock"):
            return self._load()
