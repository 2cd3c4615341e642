"""The server's SQLite store: conversations, members and messages.

One connection guarded by a lock (the server calls it from worker threads). A message's
``seq`` is its position in its conversation; ``client_msg_id`` is unique, which is what makes
POST idempotent: a retry finds the row the first attempt wrote.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChatStore", "Conversation", "StoredMessage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    conv_id TEXT NOT NULL REFERENCES conversations(id), user_id TEXT NOT NULL,
    PRIMARY KEY (conv_id, user_id));
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, conv_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL, client_msg_id TEXT NOT NULL UNIQUE, sender TEXT NOT NULL,
    text TEXT NOT NULL, created_at REAL NOT NULL, UNIQUE (conv_id, seq));
"""


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    title: str
    members: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "members": list(self.members)}


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    conv_id: str
    seq: int
    client_msg_id: str
    sender: str
    text: str
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChatStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create_conversation(self, conv_id: str, title: str, members: list[str]) -> Conversation:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO conversations VALUES (?, ?, ?)", (conv_id, title, time.time())
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO members VALUES (?, ?)", [(conv_id, u) for u in members]
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return Conversation(conv_id, title, tuple(sorted(set(members))))

    def conversation(self, conv_id: str) -> Conversation | None:
        with self._lock:
            row = self._db.execute(
                "SELECT title FROM conversations WHERE id = ?", (conv_id,)
            ).fetchone()
            if row is None:
                return None
            members = self._db.execute(
                "SELECT user_id FROM members WHERE conv_id = ? ORDER BY user_id", (conv_id,)
            ).fetchall()
        return Conversation(conv_id, row[0], tuple(m[0] for m in members))

    def conversations_of(self, user: str) -> list[Conversation]:
        with self._lock:
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT conv_id FROM members WHERE user_id = ? ORDER BY conv_id", (user,)
                )
            ]
        return [c for c in map(self.conversation, ids) if c is not None]

    def add_message(
        self, conv_id: str, client_msg_id: str, sender: str, text: str
    ) -> tuple[StoredMessage, bool]:
        """Insert the message, or return the one this ``client_msg_id`` already made.

        Returns ``(message, created)``.
        """
        with self._lock:
            existing = self._by_client_id(client_msg_id)
            if existing is not None:
                return existing, False
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (last,) = self._db.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conv_id = ?", (conv_id,)
                ).fetchone()
                (count,) = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
                msg = StoredMessage(
                    id=f"m{count + 1}",
                    conv_id=conv_id,
                    seq=last + 1,
                    client_msg_id=client_msg_id,
                    sender=sender,
                    text=text,
                    created_at=time.time(),
                )
                self._db.execute(
                    "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (msg.id, conv_id, msg.seq, client_msg_id, sender, text, msg.created_at),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return msg, True

    def history(
        self, conv_id: str, *, limit: int, before_seq: int | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """The ``limit`` newest messages before ``before_seq``, oldest first, and whether
        older ones remain."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, conv_id, seq, client_msg_id, sender, text, created_at FROM messages"
                " WHERE conv_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                (conv_id, before_seq if before_seq is not None else 2**62, limit + 1),
            ).fetchall()
        more = len(rows) > limit
        return [StoredMessage(*r) for r in reversed(rows[:limit])], more

    def _by_client_id(self, client_msg_id: str) -> StoredMessage | None:
        row = self._db.execute(
            "SELECT id, conv_id, seq, client_msg_id, sender, text, created_at FROM messages"
            " WHERE client_msg_id = ?",
            (client_msg_id,),
        ).fetchone()
        return StoredMessage(*row) if row is not None else None
