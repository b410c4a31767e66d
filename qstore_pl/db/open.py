"""``open_store``: one call to reach any supported store."""

from __future__ import annotations

import os
from pathlib import Path

from qstore_pl.db.errors import StorePathError
from qstore_pl.db.store import StateStore
from qstore_pl.support import paths

DEFAULT = "default"
KINDS = ("embedded", "qdrant", "pinecone")


def default_store_path() -> Path:
    """The embedded store's default directory: ``$QSTORE_DB_PATH`` or the user data dir."""
    return paths.store_path()


def open_store(
    kind: str = "embedded",
    *,
    path: str | os.PathLike[str] | None = DEFAULT,
    url: str | None = None,
    index_host: str | None = None,
    api_key: str | None = None,
) -> StateStore:
    """Open a state store.

    Parameters
    ----------
    kind : {"embedded", "qdrant", "pinecone"}
        ``"embedded"``: Qdrant local mode in this process, no server. ``"qdrant"``: a
        Qdrant server at ``url``. ``"pinecone"``: a Pinecone index at ``index_host``.
    path : str or PathLike or None
        Embedded store directory; the default is :func:`default_store_path`,
        ``None`` keeps the store in memory.
    url : str, optional
        Qdrant server URL (``kind="qdrant"``); ``QDRANT_URL`` by default.
    index_host : str, optional
        Pinecone index host (``kind="pinecone"``); ``PINECONE_INDEX_HOST`` by default.
    api_key : str, optional
        Qdrant or Pinecone API key; ``QDRANT_API_KEY`` / ``PINECONE_API_KEY`` by default.
        Never printed.

    Returns
    -------
    StateStore

    Raises
    ------
    StorePathError
        If the embedded store's directory cannot be created or used.
    """
    if kind == "embedded":
        from qstore_pl.db.backends.qdrant import QdrantBackend

        if path == DEFAULT:
            path = default_store_path()
        if path is None:
            return StateStore(QdrantBackend(None))
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
            return StateStore(QdrantBackend(path))
        except OSError as err:
            raise StorePathError(
                f"cannot use {str(path)!r} as the embedded store's directory: "
                f"{err.strerror or err}. Give open_store(path=...) (or ${paths.DB_PATH_ENV}, "
                "or --path of `qstore-pl db`) a directory you can write to, or path=None for a "
                "store in memory."
            ) from err
    if kind == "qdrant":
        from qstore_pl.db.backends.qdrant import QdrantBackend

        url = url or os.environ.get("QDRANT_URL")
        if not url:
            raise ValueError("open_store('qdrant') needs url= or the QDRANT_URL variable")
        key = api_key or os.environ.get("QDRANT_API_KEY")
        return StateStore(QdrantBackend(url=url, api_key=key))
    if kind == "pinecone":
        from qstore_pl.db.backends.pinecone import PineconeBackend

        host = index_host or os.environ.get("PINECONE_INDEX_HOST")
        if not host:
            raise ValueError(
                "open_store('pinecone') needs index_host= or the PINECONE_INDEX_HOST variable "
                "(the index's data-plane host, shown by pc.describe_index(name).host)"
            )
        return StateStore(PineconeBackend(host, api_key))
    raise ValueError(f"unknown store kind {kind!r}; use one of {KINDS}")
