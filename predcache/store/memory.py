"""In-process memory backend: a dict of JSON text, bounded, for tests and the bench.

Values are kept as JSON text so the memory backend behaves exactly like the others: a reader
gets a copy, and a corrupt value is detected by the same decoder. The decoded entry is kept
next to the text (decoded once, when stored), so a hit costs a dict copy, not a JSON parse.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict

from predcache.entry import Entry, decode_entry, encode_entry
from predcache.keys import namespaced
from predcache.store.base import Store, StoreStats

DEFAULT_MAX_ENTRIES = 1_000_000


class MemoryStore(Store):
    """A bounded in-memory store; evicts the least recently stored entry when full."""

    name = "memory"

    def __init__(self, namespace: str = "", max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        super().__init__(namespace)
        #: key -> (JSON text, monotonic deadline, the decoded entry or None when not an entry)
        self._data: OrderedDict[str, tuple[str, float | None, Entry | None]] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> Entry | None:
        item = self._data.get(namespaced(self.namespace, key))
        if item is None:
            return None
        _text, deadline, entry = item
        if deadline is not None and time.monotonic() >= deadline:
            return None
        if entry is None:
            self._note_corrupt()
            return None
        return entry.copy()

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        self.set_raw(key, encode_entry(entry), retain_s)

    def set_raw(self, key: str, text: str, retain_s: float | None = None) -> None:
        """Store text as-is (tests plant corrupt values with this)."""
        deadline = None if retain_s is None else time.monotonic() + retain_s
        full = namespaced(self.namespace, key)
        entry = decode_entry(text)
        with self._lock:
            self._data[full] = (text, deadline, entry)
            self._data.move_to_end(full)
            while len(self._data) > self._max_entries:
                self._data.popitem(last=False)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._data.pop(namespaced(self.namespace, key), None) is not None

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        full = namespaced(self.namespace, name)
        now = time.monotonic()
        with self._lock:
            held = self._leases.get(full)
            if held is not None and held[1] > now:
                return None
            token = uuid.uuid4().hex
            self._leases[full] = (token, now + lease_s)
            return token

    def release_lock(self, name: str, token: str) -> None:
        full = namespaced(self.namespace, name)
        with self._lock:
            held = self._leases.get(full)
            if held is not None and held[0] == token:
                del self._leases[full]

    def renew_lock(self, name: str, token: str, lease_s: float) -> bool:
        full = namespaced(self.namespace, name)
        with self._lock:
            held = self._leases.get(full)
            if held is None or held[0] != token:
                return False
            self._leases[full] = (token, time.monotonic() + lease_s)
            return True

    def _own_keys(self) -> list[str]:
        prefix = namespaced(self.namespace, "")
        return [k for k in self._data if k.startswith(prefix)]

    def entry_keys(self) -> list[str]:
        start = len(namespaced(self.namespace, ""))
        with self._lock:
            return [k[start:] for k in self._own_keys()]

    def clear(self) -> int:
        with self._lock:
            keys = self._own_keys()
            for k in keys:
                del self._data[k]
            return len(keys)

    def stats(self) -> StoreStats:
        created = []
        with self._lock:
            items = [self._data[k][0] for k in self._own_keys()]
        for text in items:
            entry = decode_entry(text)
            if entry is not None:
                created.append(float(entry["created_at"]))
        return StoreStats(
            backend=self.name,
            location="(process memory)",
            entries=len(items),
            bytes=sum(len(t) for t in items),
            oldest_created_at=min(created, default=None),
            newest_created_at=max(created, default=None),
            corrupt=self.corrupt_reads,
        )
