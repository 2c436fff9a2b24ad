"""What the stores share about collection names that can be aliases.

Both stores let a collection name be an alias of the collection that holds its data (the shadow
rebuild of ragline/ingestion/rebuild.py switches a name to its finished build). Dropping a name
drops what it reads, with its manifest, and the aliases that pointed there.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from ragline.store.manifest import manifest_name


class AliasedCollections(ABC):
    """`drop_collection` written once over a store's alias primitives."""

    _lock: threading.RLock

    @abstractmethod
    def _physical(self, name: str) -> str:
        """The collection a name reads: itself, or the one it is an alias of."""

    @abstractmethod
    def _unalias(self, names: list[str]) -> None:
        """Remove these aliases (each is one)."""

    @abstractmethod
    def _drop_one(self, physical: str) -> None:
        """Delete one real collection and its data; nothing when it is absent."""

    @abstractmethod
    def _refresh_aliases(self) -> None:
        """Re-read the alias map, where another process may have changed it."""

    def drop_collection(self, name: str) -> None:
        """Delete a collection and its sync manifest (evaluation runs use throwaway collections);
        an alias goes with the collection it named."""
        with self._lock:
            self._refresh_aliases()
            physical = self._physical(name)
            if physical != name:
                self._unalias([n for n in (name, manifest_name(name)) if self._physical(n) != n])
            self._drop_physical(physical)

    def _drop_physical(self, physical: str) -> None:
        for collection in (physical, manifest_name(physical)):
            self._drop_one(collection)
