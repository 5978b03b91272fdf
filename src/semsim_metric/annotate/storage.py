"""The campaign file: one SQLite database (WAL mode) that holds everything an annotation campaign needs.

A campaign is created once from a dataset in the SemSim schema. It copies the images to annotate into the
database (so serving never touches the file system with a path from a request), records the class list,
how many annotators should see each item and the order rule, and then stores every answer the moment
it is given:

- ``journal_mode=WAL`` and ``synchronous=FULL``: a committed answer survives a killed server;
- every change runs in one ``BEGIN IMMEDIATE`` transaction, so concurrent requests are serialised and
  an item is never handed out beyond its target count;
- an annotator holds at most one *lease* (the item on their screen, with a one-time ticket); an item's
  open leases count against its target until answered or expired;
- nothing is deleted: an undone answer moves to ``retracted`` with the time it was undone.

Each annotator sees the items in a random order of their own (seeded by their name and the campaign),
reconstructions first and originals after them, so that seeing an original never helps anyone recognise
its reconstructions.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SemSimError

__all__ = [
    "ANNOTATOR_NAME",
    "UNRECOGNISABLE",
    "AnnotationError",
    "Campaign",
    "CampaignItem",
    "create_campaign",
]

#: The answer "I cannot recognise anything".
UNRECOGNISABLE = -1
#: Allowed annotator names: letters, digits, space, ``_ . -``; 1 to 40 characters, starting with a letter or digit
#: (and not ending in a space).
ANNOTATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,39}$")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    item_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('reconstruction', 'original')),
    key TEXT NOT NULL,
    image BLOB NOT NULL,
    UNIQUE (kind, key)
);
CREATE TABLE annotators (name TEXT PRIMARY KEY, joined REAL NOT NULL);
CREATE TABLE orders (
    annotator TEXT NOT NULL REFERENCES annotators(name),
    rank INTEGER NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items(item_id),
    PRIMARY KEY (annotator, rank)
) WITHOUT ROWID;
CREATE TABLE leases (
    annotator TEXT PRIMARY KEY REFERENCES annotators(name),
    item_id INTEGER NOT NULL REFERENCES items(item_id),
    ticket TEXT NOT NULL UNIQUE,
    expires REAL NOT NULL
);
CREATE INDEX leases_item ON leases(item_id);
CREATE TABLE answers (
    answer_id INTEGER PRIMARY KEY AUTOINCREMENT,
    annotator TEXT NOT NULL REFERENCES annotators(name),
    item_id INTEGER NOT NULL REFERENCES items(item_id),
    answer INTEGER NOT NULL,
    ticket TEXT NOT NULL UNIQUE,
    answered REAL NOT NULL,
    UNIQUE (annotator, item_id)
);
CREATE INDEX answers_item ON answers(item_id);
CREATE TABLE retracted (
    answer_id INTEGER PRIMARY KEY,
    annotator TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    answer INTEGER NOT NULL,
    ticket TEXT NOT NULL,
    answered REAL NOT NULL,
    retracted REAL NOT NULL
);
"""


class AnnotationError(SemSimError, ValueError):
    """A request the campaign refuses; ``status`` is the HTTP status the app answers with.

    Nothing is written when it is raised.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CampaignItem:
    """One image to annotate as handed to an annotator (``ticket`` must come back with the answer)."""

    item_id: int
    ticket: str
    expires: float


def _order_key(seed: str, annotator: str, item_id: int) -> bytes:
    return hashlib.sha256(f"{seed}\0{annotator}\0{item_id}".encode()).digest()


def create_campaign(
    path: str | Path,
    *,
    dataset: str,
    fingerprint: str,
    class_names: Sequence[str],
    items: Iterator[tuple[str, str, bytes]] | Sequence[tuple[str, str, bytes]],
    votes_per_item: int = 5,
    lease_seconds: float = 600.0,
    token: str | None = None,
    annotators: Sequence[str] = (),
) -> Campaign:
    """Write a new campaign file (refused if ``path`` exists) and open it.

    Args:
        path: the SQLite file to create.
        dataset: the dataset folder or Hub id the items come from (export reads it again).
        fingerprint: a digest of the dataset's reconstruction ids (export checks it).
        class_names: the answers annotators can give, in class-label order.
        items: ``(kind, key, png_bytes)`` with kind ``"reconstruction"`` (key = reconstruction_id) or
            ``"original"`` (key = original_id).
        votes_per_item: how many different annotators should answer each item.
        lease_seconds: how long an item handed out stays reserved for its annotator.
        token: a shared secret every request must carry (stored as a SHA-256 digest only).
        annotators: the only names allowed to join (empty: anyone who gives a valid name).
    """
    path = Path(path)
    if path.exists():
        raise AnnotationError(f"campaign file {path} already exists; open it with Campaign({str(path)!r}) or "
                              "choose another path.")
    if votes_per_item < 1:
        raise AnnotationError(f"votes_per_item must be at least 1, got {votes_per_item}.")
    if len(class_names) < 1 or len(set(class_names)) != len(class_names) or not all(n.strip() for n in class_names):
        raise AnnotationError(f"class names must be distinct and non-empty, got {list(class_names)}.")
    for name in annotators:
        _check_name(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".creating")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        con.executescript(_SCHEMA)
        meta = {"schema_version": SCHEMA_VERSION, "dataset": dataset, "fingerprint": fingerprint,
                "class_names": list(class_names), "votes_per_item": votes_per_item, "lease_seconds": lease_seconds,
                "token_sha256": hashlib.sha256(token.encode()).hexdigest() if token else None,
                "annotators": sorted(annotators), "seed": secrets.token_hex(8), "created": time.time()}
        con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        n = 0
        for kind, key, image in items:
            con.execute("INSERT INTO items (kind, key, image) VALUES (?, ?, ?)", (kind, key, image))
            n += 1
        if n == 0:
            raise AnnotationError(f"dataset {dataset!r} has nothing to annotate.")
        con.commit()
    finally:
        con.close()
    tmp.replace(path)  # the campaign exists only once it is complete
    return Campaign(path)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not ANNOTATOR_NAME.match(name) or name != name.rstrip():
        raise AnnotationError(f"annotator name {str(name)[:60]!r} is not allowed: use 1 to 40 letters, digits, "
                              "spaces or _ . - (starting with a letter or digit, not ending in a space).", 400)
    return name


class Campaign:
    """An open campaign file. Safe to share between threads: every call opens its own connection.

    Examples:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.sqlite"
        >>> c = create_campaign(path, dataset="demo", fingerprint="x", class_names=["cat", "dog"],
        ...                     items=[("reconstruction", "r0", b"png")], votes_per_item=1)
        >>> c.join("alice")
        >>> item = c.next_item("alice")
        >>> c.answer("alice", item.item_id, item.ticket, 1)["answered"]
        1
        >>> c.next_item("alice") is None  # the only item has its one vote
        True
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AnnotationError(f"no campaign file at {self.path}; create one with `semsim annotate serve DATASET "
                                  f"--campaign {self.path}`.")
        with self._connect() as con:
            try:
                rows = con.execute("SELECT key, value FROM meta").fetchall()
            except sqlite3.DatabaseError as err:
                raise AnnotationError(f"{self.path} is not a campaign file ({err}).") from err
            con.execute("PRAGMA journal_mode=WAL")
        self.meta = {k: json.loads(v) for k, v in rows}
        if self.meta.get("schema_version") != SCHEMA_VERSION:
            raise AnnotationError(f"{self.path} has campaign schema {self.meta.get('schema_version')}, this version "
                                  f"reads {SCHEMA_VERSION}.")
        self.class_names: list[str] = self.meta["class_names"]
        self.votes_per_item: int = int(self.meta["votes_per_item"])
        self.lease_seconds: float = float(self.meta["lease_seconds"])

    # -- connections -------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    # -- access ------------------------------------------------------------------------------------------------
    @property
    def requires_token(self) -> bool:
        """Whether requests must carry the campaign's shared token."""
        return self.meta.get("token_sha256") is not None

    def check_token(self, token: Any) -> None:
        """Raise (401) unless ``token`` is the campaign's token (or the campaign has none)."""
        import hmac

        expected = self.meta.get("token_sha256")
        if expected is None:
            return
        given = hashlib.sha256(token.encode()).hexdigest() if isinstance(token, str) else ""
        if not hmac.compare_digest(given, expected):
            raise AnnotationError("this campaign needs its access token: ask the person who started it.", 401)

    def join(self, name: Any) -> None:
        """Register annotator ``name`` (again is fine). Refused for bad names and, with a fixed list, strangers."""
        name = _check_name(name)
        allowed = self.meta.get("annotators") or []
        if allowed and name not in allowed:
            raise AnnotationError(f"{name!r} is not an annotator of this campaign.", 403)
        with self._write() as con:
            if con.execute("SELECT 1 FROM annotators WHERE name = ?", (name,)).fetchone():
                return
            con.execute("INSERT INTO annotators VALUES (?, ?)", (name, time.time()))
            seed = self.meta["seed"]
            items = con.execute("SELECT item_id, kind FROM items").fetchall()
            order = sorted(items, key=lambda r: (r[1] != "reconstruction", _order_key(seed, name, r[0])))
            con.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(name, k, r[0]) for k, r in enumerate(order)])

    def _known(self, con: sqlite3.Connection, name: Any) -> str:
        name = _check_name(name)
        if con.execute("SELECT 1 FROM annotators WHERE name = ?", (name,)).fetchone() is None:
            raise AnnotationError(f"unknown annotator {name!r}: enter your name on the start page first.", 403)
        return name

    _OPEN = """NOT EXISTS (SELECT 1 FROM answers a WHERE a.item_id = {i} AND a.annotator = :name)
               AND (SELECT COUNT(*) FROM answers a WHERE a.item_id = {i})
                 + (SELECT COUNT(*) FROM leases l WHERE l.item_id = {i} AND l.annotator != :name
                    AND l.expires > :now) < :target"""

    def _args(self, name: str, now: float, **more: Any) -> dict[str, Any]:
        return {"name": name, "now": now, "target": self.votes_per_item, **more}

    def _is_open(self, con: sqlite3.Connection, name: str, item_id: int, now: float) -> bool:
        """Whether ``name`` may answer ``item_id``: not answered by them, and below the target counting others'
        open leases."""
        return con.execute(f"SELECT {self._OPEN.format(i=':item')}", self._args(name, now, item=item_id)).fetchone()[0] == 1

    def _open_count(self, con: sqlite3.Connection, name: str, now: float) -> int:
        """How many items ``name`` may still answer (the same rule as ``_is_open``, over every item)."""
        return con.execute(f"SELECT COUNT(*) FROM items i WHERE {self._OPEN.format(i='i.item_id')}",
                           self._args(name, now)).fetchone()[0]

    def next_item(self, name: Any) -> CampaignItem | None:
        """The item on ``name``'s screen: their open lease, else the next open item in their own order (``None``
        when nothing is left for them)."""
        now = time.time()
        with self._write() as con:
            name = self._known(con, name)
            lease = con.execute("SELECT item_id, ticket FROM leases WHERE annotator = ?", (name,)).fetchone()
            if lease is not None:
                if self._is_open(con, name, lease[0], now):
                    expires = now + self.lease_seconds
                    con.execute("UPDATE leases SET expires = ? WHERE annotator = ?", (expires, name))
                    return CampaignItem(lease[0], lease[1], expires)
                con.execute("DELETE FROM leases WHERE annotator = ?", (name,))
            row = con.execute(f"SELECT o.item_id FROM orders o WHERE o.annotator = :name AND "
                              f"{self._OPEN.format(i='o.item_id')} ORDER BY o.rank LIMIT 1",
                              self._args(name, now)).fetchone()
            if row is None:
                return None
            ticket, expires = secrets.token_urlsafe(16), now + self.lease_seconds
            con.execute("INSERT INTO leases VALUES (?, ?, ?, ?)", (name, row[0], ticket, expires))
            return CampaignItem(row[0], ticket, expires)

    def image(self, name: Any, item_id: Any, ticket: Any) -> bytes:
        """The PNG of the item currently handed to ``name`` with ``ticket`` (nothing else can be fetched)."""
        with self._read() as con:
            name = self._known(con, name)
            lease = con.execute("SELECT item_id, ticket FROM leases WHERE annotator = ?", (name,)).fetchone()
            if lease is None or lease[0] != item_id or not isinstance(ticket, str) or lease[1] != ticket:
                raise AnnotationError("this image is not on your screen (the ticket is stale); reload the page.", 404)
            return con.execute("SELECT image FROM items WHERE item_id = ?", (item_id,)).fetchone()[0]

    def answer(self, name: Any, item_id: Any, ticket: Any, answer: Any) -> dict[str, int]:
        """Record ``name``'s answer to the item handed out with ``ticket``; returns their progress.

        ``answer`` is a class index (``0 .. len(class_names) - 1``) or ``UNRECOGNISABLE`` (-1).
        """
        if isinstance(answer, bool) or not isinstance(answer, int) or not -1 <= answer < len(self.class_names):
            raise AnnotationError(f"answer must be a class index 0..{len(self.class_names) - 1} or -1 (cannot "
                                  f"recognise), got {str(answer)[:40]!r}.", 422)
        if isinstance(item_id, bool) or not isinstance(item_id, int) or not isinstance(ticket, str):
            raise AnnotationError("item_id must be an integer and ticket a string.", 422)
        now = time.time()
        with self._write() as con:
            name = self._known(con, name)
            if con.execute("SELECT 1 FROM answers WHERE ticket = ?", (ticket,)).fetchone():
                raise AnnotationError("this answer was already recorded (duplicate submission); nothing changed.", 409)
            if con.execute("SELECT 1 FROM answers WHERE annotator = ? AND item_id = ?", (name, item_id)).fetchone():
                raise AnnotationError("you already answered this item; use undo to change your last answer.", 409)
            lease = con.execute("SELECT item_id, ticket FROM leases WHERE annotator = ?", (name,)).fetchone()
            if lease is None or lease[0] != item_id or lease[1] != ticket:
                raise AnnotationError("this item is no longer on your screen (stale ticket); ask for the next item.",
                                      409)
            if not self._is_open(con, name, item_id, now):  # (the next call hands out another item)
                raise AnnotationError("your time on this item ran out and others answered it meanwhile; "
                                      "ask for the next item.", 409)
            con.execute("INSERT INTO answers (annotator, item_id, answer, ticket, answered) VALUES (?, ?, ?, ?, ?)",
                        (name, item_id, answer, ticket, now))
            con.execute("DELETE FROM leases WHERE annotator = ?", (name,))
            return self._progress(con, name, now)

    def undo(self, name: Any) -> CampaignItem:
        """Take back ``name``'s last answer (kept in ``retracted``) and hand that item back to them."""
        now = time.time()
        with self._write() as con:
            name = self._known(con, name)
            last = con.execute("SELECT answer_id, item_id, answer, ticket, answered FROM answers WHERE annotator = ? "
                               "ORDER BY answer_id DESC LIMIT 1", (name,)).fetchone()
            if last is None:
                raise AnnotationError("there is no answer of yours to undo.", 409)
            con.execute("INSERT INTO retracted VALUES (?, ?, ?, ?, ?, ?, ?)", (last[0], name, *last[1:], now))
            con.execute("DELETE FROM answers WHERE answer_id = ?", (last[0],))
            ticket, expires = secrets.token_urlsafe(16), now + self.lease_seconds
            con.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (name, last[1], ticket, expires))
            return CampaignItem(last[1], ticket, expires)

    def _progress(self, con: sqlite3.Connection, name: str, now: float) -> dict[str, int]:
        answered = con.execute("SELECT COUNT(*) FROM answers WHERE annotator = ?", (name,)).fetchone()[0]
        return {"answered": answered, "left": self._open_count(con, name, now)}

    def progress(self, name: Any) -> dict[str, int]:
        """``{"answered": n, "left": m}``: ``name``'s answers and the items still open to them."""
        with self._read() as con:
            return self._progress(con, self._known(con, name), time.time())

    # -- reading everything back -------------------------------------------------------------------------------
    def items(self) -> list[tuple[int, str, str]]:
        """Every ``(item_id, kind, key)``."""
        with self._read() as con:
            return con.execute("SELECT item_id, kind, key FROM items ORDER BY item_id").fetchall()

    def answers(self) -> list[dict[str, Any]]:
        """Every recorded answer in the order given: annotator, item_id, kind, key, answer, answered (epoch s)."""
        with self._read() as con:
            rows = con.execute("SELECT a.answer_id, a.annotator, a.item_id, i.kind, i.key, a.answer, a.answered "
                               "FROM answers a JOIN items i USING (item_id) ORDER BY a.answer_id").fetchall()
        cols = ("answer_id", "annotator", "item_id", "kind", "key", "answer", "answered")
        return [dict(zip(cols, r)) for r in rows]

    def retracted(self) -> list[dict[str, Any]]:
        """Every undone answer (never deleted): as ``answers()`` plus ``retracted`` (epoch s)."""
        with self._read() as con:
            rows = con.execute("SELECT answer_id, annotator, item_id, answer, answered, retracted FROM retracted "
                               "ORDER BY answer_id").fetchall()
        cols = ("answer_id", "annotator", "item_id", "answer", "answered", "retracted")
        return [dict(zip(cols, r)) for r in rows]

    def annotators(self) -> list[str]:
        """Names that joined, in the order they joined."""
        with self._read() as con:
            return [r[0] for r in con.execute("SELECT name FROM annotators ORDER BY joined, name")]
