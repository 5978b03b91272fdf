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
- nothing is deleted: an undone answer moves to ``retracted`` with the time it was undone;
- the file is private to its owner (mode 0600) and is created under a lock (a second process creating the
  same campaign is told it is in use).

Each annotator sees the items in a random order of their own (seeded by their name and the campaign),
reconstructions first and originals after them, so that seeing an original never helps anyone recognise
its reconstructions: once an original has been on someone's screen, none of its reconstructions is offered
to them again (``shown`` records every item handed out).

Who may do what is described in ``docs/reliability.md`` (the annotation app's trust model): the shared
campaign token lets a person *join*; joining gives each annotator a secret of their own (stored here only as a
SHA-256 digest), and every later call of that annotator is made with it. Names are compared ignoring case and
punctuation (``name_key``), so "alice", "Alice" and "alice." are one annotator.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AnnotationError

__all__ = [
    "ANNOTATOR_NAME",
    "UNRECOGNISABLE",
    "AnnotationError",
    "Campaign",
    "CampaignItem",
    "create_campaign",
    "name_key",
]

#: The answer "I cannot recognise anything".
UNRECOGNISABLE = -1
#: Allowed annotator names: letters, digits, space, ``_ . -``; 1 to 40 characters, starting with a letter or digit
#: (and not ending in a space).
ANNOTATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,39}$")
SCHEMA_VERSION = 2
#: Largest item id SQLite can hold; larger ids in a request are refused before they reach the database.
MAX_ITEM_ID = 2**63 - 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    item_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('reconstruction', 'original')),
    key TEXT NOT NULL,
    image BLOB NOT NULL,
    original_key TEXT,
    UNIQUE (kind, key)
);
CREATE TABLE annotators (
    name TEXT PRIMARY KEY,
    joined REAL NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    secret_sha256 TEXT
);
CREATE TABLE shown (
    annotator TEXT NOT NULL REFERENCES annotators(name),
    item_id INTEGER NOT NULL REFERENCES items(item_id),
    first_shown REAL NOT NULL,
    PRIMARY KEY (annotator, item_id)
) WITHOUT ROWID;
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
    expires REAL NOT NULL,
    client TEXT NOT NULL DEFAULT ''
);
CREATE INDEX leases_item ON leases(item_id);
CREATE INDEX items_original ON items(original_key);
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


@dataclass(frozen=True)
class CampaignItem:
    """One image to annotate as handed to an annotator (``ticket`` must come back with the answer)."""

    item_id: int
    ticket: str
    expires: float


def _order_key(seed: str, annotator: str, item_id: int) -> bytes:
    return hashlib.sha256(f"{seed}\0{annotator}\0{item_id}".encode()).digest()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def name_key(name: str) -> str:
    """The form in which annotator names are compared: lower case, letters and digits only.

    Examples:
        >>> name_key("Alice.") == name_key("alice") == name_key("a-lice")
        True
    """
    return "".join(ch for ch in name.casefold() if ch.isalnum())


@contextmanager
def _creation_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock while ``path`` is created; a second process is told the campaign is in use."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AnnotationError(
                f"campaign {path} is in use: another process is creating it right now. Wait "
                "for it to finish and resume the campaign instead.",
                409,
            ) from None
        yield
    finally:
        os.close(fd)
        with suppress(OSError):
            lock_path.unlink()


def create_campaign(
    path: str | Path,
    *,
    dataset: str,
    fingerprint: str,
    class_names: Sequence[str],
    items: Iterator[tuple[str, ...]] | Sequence[tuple[str, ...]],
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
        items: ``(kind, key, png_bytes)`` or ``(kind, key, png_bytes, original_key)`` with kind
            ``"reconstruction"`` (key = reconstruction_id, original_key = its original_id, which lets the campaign
            keep a reconstruction away from anyone who has seen its original) or ``"original"`` (key = original_id).
        votes_per_item: how many different annotators should answer each item.
        lease_seconds: how long an item handed out stays reserved for its annotator.
        token: a shared secret a person needs to join (stored as a SHA-256 digest only).
        annotators: the only names allowed to join (empty: anyone who gives a valid name).

    Raises:
        AnnotationError: ``path`` exists, another process is creating it, a setting is invalid, or there is
            nothing to annotate.
    """
    path = Path(path)
    if path.exists():
        raise AnnotationError(
            f"campaign file {path} already exists; open it with Campaign({str(path)!r}) or "
            "choose another path."
        )
    if votes_per_item < 1:
        raise AnnotationError(f"votes_per_item must be at least 1, got {votes_per_item}.")
    if (
        len(class_names) < 1
        or len(set(class_names)) != len(class_names)
        or not all(n.strip() for n in class_names)
    ):
        raise AnnotationError(f"class names must be distinct and non-empty, got {list(class_names)}.")
    allowed = _check_allow_list(annotators)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _creation_lock(path):
        if path.exists():  # another process finished creating it while we waited for nothing
            raise AnnotationError(
                f"campaign file {path} already exists; open it with Campaign({str(path)!r})."
            )
        tmp = path.with_name(path.name + ".creating")
        tmp.unlink(missing_ok=True)
        os.close(
            os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        )  # private before any answer is in it
        con = sqlite3.connect(tmp)
        try:
            con.executescript(_SCHEMA)
            meta = {
                "schema_version": SCHEMA_VERSION,
                "dataset": dataset,
                "fingerprint": fingerprint,
                "class_names": list(class_names),
                "votes_per_item": votes_per_item,
                "lease_seconds": lease_seconds,
                "token_sha256": _digest(token) if token else None,
                "annotators": allowed,
                "seed": secrets.token_hex(8),
                "created": time.time(),
            }
            con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            n = 0
            for kind, key, image, *original in items:
                con.execute(
                    "INSERT INTO items (kind, key, image, original_key) VALUES (?, ?, ?, ?)",
                    (kind, key, image, original[0] if original and kind == "reconstruction" else None),
                )
                n += 1
            if n == 0:
                raise AnnotationError(f"dataset {dataset!r} has nothing to annotate.")
            con.commit()
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        con.close()
        tmp.replace(path)  # the campaign exists only once it is complete
    return Campaign(path)


def _check_allow_list(annotators: Sequence[str]) -> list[str]:
    names = sorted(_check_name(n) for n in annotators)
    keys = [name_key(n) for n in names]
    if len(set(keys)) != len(keys):
        raise AnnotationError(
            f"the annotator list {names} names someone twice (names are compared ignoring case "
            "and punctuation)."
        )
    return names


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not ANNOTATOR_NAME.match(name) or name != name.rstrip():
        raise AnnotationError(
            f"annotator name {str(name)[:60]!r} is not allowed: use 1 to 40 letters, digits, "
            "spaces or _ . - (starting with a letter or digit, not ending in a space).",
            400,
        )
    return name


def _check_item_id(item_id: Any) -> int:
    if isinstance(item_id, bool) or not isinstance(item_id, int) or not 0 <= item_id <= MAX_ITEM_ID:
        raise AnnotationError(
            f"item_id must be a whole number from 0 to {MAX_ITEM_ID}, got {str(item_id)[:30]!r}.", 422
        )
    return item_id


def _upgrade_from_v1(con: sqlite3.Connection) -> None:
    """Bring a schema-1 campaign (written before per-annotator secrets) to schema 2; answers are kept as they are.

    Annotators of a schema-1 campaign have no secret yet: the next to join under each name claims it (or the
    campaign's owner hands out a resume code with ``semsim annotate resume-code``). Reconstructions get their
    original's key when the campaign is resumed with its dataset (``open_or_create_campaign``).
    """
    con.execute("ALTER TABLE items ADD COLUMN original_key TEXT")
    con.execute("ALTER TABLE annotators ADD COLUMN name_key TEXT")
    con.execute("ALTER TABLE annotators ADD COLUMN secret_sha256 TEXT")
    con.execute("ALTER TABLE leases ADD COLUMN client TEXT NOT NULL DEFAULT ''")
    taken: set[str] = set()
    for (name,) in con.execute("SELECT name FROM annotators ORDER BY joined, name").fetchall():
        key, n = name_key(name), 1
        while (key if n == 1 else f"{key}~{n}") in taken:  # two v1 names that now compare equal stay apart
            n += 1
        key = key if n == 1 else f"{key}~{n}"
        taken.add(key)
        con.execute("UPDATE annotators SET name_key = ? WHERE name = ?", (key, name))
    con.execute("CREATE UNIQUE INDEX annotators_name_key ON annotators(name_key)")
    con.execute("CREATE INDEX items_original ON items(original_key)")
    con.execute(
        "CREATE TABLE shown (annotator TEXT NOT NULL REFERENCES annotators(name), item_id INTEGER NOT NULL "
        "REFERENCES items(item_id), first_shown REAL NOT NULL, PRIMARY KEY (annotator, item_id)) WITHOUT ROWID"
    )
    con.execute("INSERT OR IGNORE INTO shown SELECT annotator, item_id, answered FROM answers")
    con.execute("INSERT OR IGNORE INTO shown SELECT annotator, item_id, answered FROM retracted")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (json.dumps(SCHEMA_VERSION),))


class Campaign:
    """An open campaign file. Safe to share between threads: every call opens its own connection.

    The methods take the annotator's *name*: they are the trusted, local interface. The web app
    (``server.create_app``) finds the name from the annotator's own secret (``annotator_for``) and never
    from what a request says.

    Examples:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.sqlite"
        >>> c = create_campaign(path, dataset="demo", fingerprint="x", class_names=["cat", "dog"],
        ...                     items=[("reconstruction", "r0", b"png")], votes_per_item=1)
        >>> secret = c.join("alice")
        >>> c.annotator_for(secret)
        'alice'
        >>> item = c.next_item("alice")
        >>> c.answer("alice", item.item_id, item.ticket, 1)["answered"]
        1
        >>> c.next_item("alice") is None  # the only item has its one vote
        True
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AnnotationError(
                f"no campaign file at {self.path}; create one with `semsim annotate serve DATASET "
                f"--campaign {self.path}`."
            )
        with self._connect() as con:
            try:
                rows = con.execute("SELECT key, value FROM meta").fetchall()
            except sqlite3.DatabaseError as err:
                raise AnnotationError(f"{self.path} is not a campaign file ({err}).") from err
            con.execute("PRAGMA journal_mode=WAL")
        self.meta = {k: json.loads(v) for k, v in rows}
        if self.meta.get("schema_version") == 1:
            try:
                with self._write() as con:
                    _upgrade_from_v1(con)
            except sqlite3.OperationalError as err:
                raise AnnotationError(
                    f"{self.path} was written by an older semsim-metric and must be upgraded, "
                    f"but it cannot be written ({err}); make it writable and open it again.",
                    503,
                ) from err
            self.meta["schema_version"] = SCHEMA_VERSION
        if self.meta.get("schema_version") != SCHEMA_VERSION:
            raise AnnotationError(
                f"{self.path} has campaign schema {self.meta.get('schema_version')}, this version "
                f"reads {SCHEMA_VERSION}."
            )
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

    def check_writable(self) -> None:
        """Write to the campaign file once (its ``last_opened`` time), so that a server never starts on a file it
        cannot record answers in.

        Raises:
            AnnotationError: (503) the file or its folder is read-only, the disk is full, or the file is locked.
        """
        try:
            with self._write() as con:
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('last_opened', ?)", (json.dumps(time.time()),)
                )
        except sqlite3.OperationalError as err:
            raise AnnotationError(
                f"campaign {self.path} cannot be written ({err}): answers could not be saved. "
                "Make the file and its folder writable (and free disk space), then start again.",
                503,
            ) from err

    # -- access ------------------------------------------------------------------------------------------------
    @property
    def requires_token(self) -> bool:
        """Whether joining needs the campaign's shared token."""
        return self.meta.get("token_sha256") is not None

    @property
    def allowed_annotators(self) -> list[str]:
        """The only names that may join (empty: anyone with a valid name)."""
        return list(self.meta.get("annotators") or [])

    def check_token(self, token: Any) -> None:
        """Raise (401) unless ``token`` is the campaign's token (or the campaign has none).

        Raises:
            AnnotationError: the token is missing or wrong.
        """
        expected = self.meta.get("token_sha256")
        if expected is None:
            return
        given = _digest(token) if isinstance(token, str) else ""
        if not hmac.compare_digest(given, expected):
            raise AnnotationError("this campaign needs its access token: ask the person who started it.", 401)

    def access_differences(self, *, token: str | None, annotators: Sequence[str] | None) -> list[str]:
        """What differs between the given access settings and those the campaign stores (``None``: not given).

        An empty token means "no token"; an empty list means "anyone may join".
        """
        problems = []
        if token is not None:
            stored = self.meta.get("token_sha256")
            if stored is None and token:
                problems.append("it has no access token but one was given")
            elif stored is not None and not token:
                problems.append("it has an access token but 'none' was given")
            elif stored is not None and not hmac.compare_digest(_digest(token), stored):
                problems.append("its access token is not the one given")
        if annotators is not None and sorted(map(name_key, annotators)) != sorted(
            map(name_key, self.allowed_annotators)
        ):
            problems.append(
                f"its annotator list is {self.allowed_annotators or 'open to anyone'}, not "
                f"{sorted(annotators) or 'open to anyone'}"
            )
        return problems

    def set_access(self, *, token: str | None = None, annotators: Sequence[str] | None = None) -> None:
        """Store new access settings (``None`` keeps a setting; ``""`` removes the token, ``[]`` opens the list).

        Annotators who already joined keep their own secrets and their answers.

        Raises:
            AnnotationError: a name in ``annotators`` is not allowed.
        """
        updates: dict[str, Any] = {}
        if token is not None:
            updates["token_sha256"] = _digest(token) if token else None
        if annotators is not None:
            updates["annotators"] = _check_allow_list(annotators)
        with self._write() as con:
            for key, value in updates.items():
                con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        self.meta.update(updates)

    def join(self, name: Any, *, resume_code: str | None = None) -> str:
        """Register annotator ``name`` and return their own secret (their *resume code*).

        Every later call of this annotator through the web app is made with the secret, so only the person who
        joined can answer, fetch images or undo as ``name``. Coming back under a name that has joined before
        needs that name's resume code; names are compared ignoring case and punctuation.

        Raises:
            AnnotationError: (400) a name that is not allowed; (403) a name outside the campaign's annotator list;
                (409) a name taken by someone else (or a wrong resume code).
        """
        name = _check_name(name)
        key = name_key(name)
        allowed = self.allowed_annotators
        if allowed and key not in {name_key(a) for a in allowed}:
            raise AnnotationError(f"{name!r} is not an annotator of this campaign.", 403)
        with self._write() as con:
            row = con.execute(
                "SELECT name, secret_sha256 FROM annotators WHERE name_key = ?", (key,)
            ).fetchone()
            if row is not None:
                stored_name, stored_secret = row
                if (
                    stored_secret is None
                ):  # joined before secrets existed (or through the Python API): claim it
                    secret = secrets.token_urlsafe(24)
                    con.execute(
                        "UPDATE annotators SET secret_sha256 = ? WHERE name = ?",
                        (_digest(secret), stored_name),
                    )
                    return secret
                if isinstance(resume_code, str) and hmac.compare_digest(_digest(resume_code), stored_secret):
                    return resume_code
                raise AnnotationError(
                    f"the name {name!r} is taken (as {stored_name!r}; names are compared ignoring case and "
                    "punctuation). If it is you, continue in the browser you started with or enter your resume "
                    "code; otherwise choose another name.",
                    409,
                )
            secret = secrets.token_urlsafe(24)
            con.execute(
                "INSERT INTO annotators (name, joined, name_key, secret_sha256) VALUES (?, ?, ?, ?)",
                (name, time.time(), key, _digest(secret)),
            )
            seed = self.meta["seed"]
            items = con.execute("SELECT item_id, kind FROM items").fetchall()
            order = sorted(items, key=lambda r: (r[1] != "reconstruction", _order_key(seed, name, r[0])))
            con.executemany(
                "INSERT INTO orders VALUES (?, ?, ?)", [(name, k, r[0]) for k, r in enumerate(order)]
            )
            return secret

    def annotator_for(self, secret: Any) -> str:
        """The annotator whose own secret ``secret`` is.

        Raises:
            AnnotationError: (401) no annotator has this secret.
        """
        row = None
        if isinstance(secret, str) and 0 < len(secret) <= 200:
            with self._read() as con:
                row = con.execute(
                    "SELECT name FROM annotators WHERE secret_sha256 = ?", (_digest(secret),)
                ).fetchone()
        if row is None:
            raise AnnotationError(
                "your session is unknown or has expired: enter your name (and resume code) on the "
                "start page again.",
                401,
            )
        return row[0]

    def reissue_resume_code(self, name: str) -> str:
        """A new resume code for ``name`` (the old one stops working): for someone who lost theirs.

        Raises:
            AnnotationError: (403) ``name`` has not joined this campaign.
        """
        with self._write() as con:
            row = con.execute(
                "SELECT name FROM annotators WHERE name_key = ?", (name_key(_check_name(name)),)
            ).fetchone()
            if row is None:
                raise AnnotationError(
                    f"{name!r} has not joined this campaign; they can join on the start page.", 403
                )
            secret = secrets.token_urlsafe(24)
            con.execute("UPDATE annotators SET secret_sha256 = ? WHERE name = ?", (_digest(secret), row[0]))
            return secret

    def link_originals(self, original_of: dict[str, str]) -> int:
        """Record each reconstruction's original (``reconstruction_id -> original_id``) where it is missing (a
        campaign upgraded from schema 1); returns how many were recorded."""
        with self._write() as con:
            missing = [
                k
                for (k,) in con.execute(
                    "SELECT key FROM items WHERE kind = 'reconstruction' AND original_key IS NULL"
                )
            ]
            con.executemany(
                "UPDATE items SET original_key = ? WHERE kind = 'reconstruction' AND key = ?",
                [(original_of[k], k) for k in missing if k in original_of],
            )
        return sum(k in original_of for k in missing)

    def _known(self, con: sqlite3.Connection, name: Any) -> str:
        name = _check_name(name)
        if con.execute("SELECT 1 FROM annotators WHERE name = ?", (name,)).fetchone() is None:
            raise AnnotationError(
                f"unknown annotator {name!r}: enter your name on the start page first.", 403
            )
        return name

    #: ``name`` may see item ``{i}`` at all: not answered by them, and not a reconstruction of an original that
    #: has been on their screen.
    #: (The inner aliases end in ``_`` so that they never shadow the caller's ``{i}``, e.g. ``o.item_id``.)
    _ALLOWED = """NOT EXISTS (SELECT 1 FROM answers a_ WHERE a_.item_id = {i} AND a_.annotator = :name)
               AND NOT EXISTS (SELECT 1 FROM items r_ JOIN items o_ ON o_.kind = 'original' AND o_.key = r_.original_key
                               JOIN shown s_ ON s_.item_id = o_.item_id AND s_.annotator = :name
                               WHERE r_.item_id = {i} AND r_.kind = 'reconstruction')"""
    _ANSWERS = "(SELECT COUNT(*) FROM answers a_ WHERE a_.item_id = {i})"
    _LEASES = (
        "(SELECT COUNT(*) FROM leases l_ WHERE l_.item_id = {i} AND l_.annotator != :name "
        "AND l_.expires > :now)"
    )
    #: ... and it is below its target, counting others' open leases.
    _OPEN = _ALLOWED + " AND " + _ANSWERS + " + " + _LEASES + " < :target"

    def _args(self, name: str, now: float, **more: Any) -> dict[str, Any]:
        return {"name": name, "now": now, "target": self.votes_per_item, **more}

    def _holds(self, con: sqlite3.Connection, condition: str, name: str, item_id: int, now: float) -> bool:
        return (
            con.execute(
                f"SELECT {condition.format(i=':item')}", self._args(name, now, item=item_id)
            ).fetchone()[0]
            == 1
        )

    def _count(self, con: sqlite3.Connection, condition: str, name: str, now: float) -> int:
        return con.execute(
            f"SELECT COUNT(*) FROM items i WHERE {condition.format(i='i.item_id')}", self._args(name, now)
        ).fetchone()[0]

    def next_item(
        self, name: Any, *, client: str = "", max_client_leases: int | None = None
    ) -> CampaignItem | None:
        """The item on ``name``'s screen: their open lease, else the next open item in their own order (``None``
        when nothing is left for them now; ``progress`` tells whether others hold what is left).

        Args:
            name: the annotator.
            client: where the request comes from (the web app passes the client's address).
            max_client_leases: at most this many unexpired leases for one ``client`` across all names (``None``:
                no limit), so that one computer cannot reserve every item under many names.

        Raises:
            AnnotationError: (403) an unknown annotator; (429) ``client`` holds ``max_client_leases`` already.
        """
        now = time.time()
        with self._write() as con:
            name = self._known(con, name)
            lease = con.execute("SELECT item_id, ticket FROM leases WHERE annotator = ?", (name,)).fetchone()
            if lease is not None:
                if self._holds(con, self._OPEN, name, lease[0], now):
                    expires = now + self.lease_seconds
                    con.execute("UPDATE leases SET expires = ? WHERE annotator = ?", (expires, name))
                    return CampaignItem(lease[0], lease[1], expires)
                con.execute("DELETE FROM leases WHERE annotator = ?", (name,))
            if client and max_client_leases is not None:
                held = con.execute(
                    "SELECT COUNT(*) FROM leases WHERE client = ? AND annotator != ? AND expires > ?",
                    (client, name, now),
                ).fetchone()[0]
                if held >= max_client_leases:
                    raise AnnotationError(
                        f"this computer already has {held} images on screen under other names "
                        f"(at most {max_client_leases}); answer those first, or wait "
                        f"{self.lease_seconds:.0f} s for them to be released.",
                        429,
                    )
            row = con.execute(
                f"SELECT o.item_id FROM orders o WHERE o.annotator = :name AND "
                f"{self._OPEN.format(i='o.item_id')} ORDER BY o.rank LIMIT 1",
                self._args(name, now),
            ).fetchone()
            if row is None:
                return None
            ticket, expires = secrets.token_urlsafe(16), now + self.lease_seconds
            con.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?)", (name, row[0], ticket, expires, client))
            con.execute("INSERT OR IGNORE INTO shown VALUES (?, ?, ?)", (name, row[0], now))
            return CampaignItem(row[0], ticket, expires)

    def image(self, name: Any, item_id: Any, ticket: Any) -> bytes:
        """The PNG of the item currently handed to ``name`` with ``ticket`` (nothing else can be fetched).

        Raises:
            AnnotationError: (404) the item is not on ``name``'s screen with this ticket.
        """
        if isinstance(item_id, bool) or not isinstance(item_id, int) or not 0 <= item_id <= MAX_ITEM_ID:
            raise AnnotationError(
                "this image is not on your screen (the ticket is stale); reload the page.", 404
            )
        with self._read() as con:
            name = self._known(con, name)
            lease = con.execute("SELECT item_id, ticket FROM leases WHERE annotator = ?", (name,)).fetchone()
            if lease is None or lease[0] != item_id or not isinstance(ticket, str) or lease[1] != ticket:
                raise AnnotationError(
                    "this image is not on your screen (the ticket is stale); reload the page.", 404
                )
            return con.execute("SELECT image FROM items WHERE item_id = ?", (item_id,)).fetchone()[0]

    def answer(self, name: Any, item_id: Any, ticket: Any, answer: Any) -> dict[str, int]:
        """Record ``name``'s answer to the item handed out with ``ticket``; returns their progress.

        ``answer`` is a class index (``0 .. len(class_names) - 1``) or ``UNRECOGNISABLE`` (-1).

        Raises:
            AnnotationError: (422) a malformed answer, item id or ticket; (409) a duplicate, a stale ticket, an
                item others filled meanwhile or a reconstruction whose original ``name`` has seen.
        """
        if (
            isinstance(answer, bool)
            or not isinstance(answer, int)
            or not -1 <= answer < len(self.class_names)
        ):
            raise AnnotationError(
                f"answer must be a class index 0..{len(self.class_names) - 1} or -1 (cannot "
                f"recognise), got {str(answer)[:40]!r}.",
                422,
            )
        item_id = _check_item_id(item_id)
        if not isinstance(ticket, str):
            raise AnnotationError("item_id must be an integer and ticket a string.", 422)
        now = time.time()
        with self._write() as con:
            name = self._known(con, name)
            if con.execute("SELECT 1 FROM answers WHERE ticket = ?", (ticket,)).fetchone():
                raise AnnotationError(
                    "this answer was already recorded (duplicate submission); nothing changed.", 409
                )
            if con.execute(
                "SELECT 1 FROM answers WHERE annotator = ? AND item_id = ?", (name, item_id)
            ).fetchone():
                raise AnnotationError(
                    "you already answered this item; use undo to change your last answer.", 409
                )
            lease = con.execute("SELECT item_id, ticket FROM leases WHERE annotator = ?", (name,)).fetchone()
            if lease is None or lease[0] != item_id or lease[1] != ticket:
                raise AnnotationError(
                    "this item is no longer on your screen (stale ticket); ask for the next item.", 409
                )
            if not self._holds(con, self._ALLOWED, name, item_id, now):
                raise AnnotationError(
                    "you have seen the original of this reconstruction, so your answer would not "
                    "be blind; nothing was recorded. Ask for the next item.",
                    409,
                )
            if not self._holds(con, self._OPEN, name, item_id, now):  # (the next call hands out another item)
                raise AnnotationError(
                    "your time on this item ran out and others answered it meanwhile; ask for the next item.",
                    409,
                )
            con.execute(
                "INSERT INTO answers (annotator, item_id, answer, ticket, answered) VALUES (?, ?, ?, ?, ?)",
                (name, item_id, answer, ticket, now),
            )
            con.execute("DELETE FROM leases WHERE annotator = ?", (name,))
            return self._progress(con, name, now)

    def undo(self, name: Any) -> CampaignItem:
        """Take back ``name``'s last answer (kept in ``retracted``) and hand that item back to them.

        Raises:
            AnnotationError: (409) ``name`` has no answer to undo.
        """
        now = time.time()
        with self._write() as con:
            name = self._known(con, name)
            last = con.execute(
                "SELECT answer_id, item_id, answer, ticket, answered FROM answers WHERE annotator = ? "
                "ORDER BY answer_id DESC LIMIT 1",
                (name,),
            ).fetchone()
            if last is None:
                raise AnnotationError("there is no answer of yours to undo.", 409)
            con.execute("INSERT INTO retracted VALUES (?, ?, ?, ?, ?, ?, ?)", (last[0], name, *last[1:], now))
            con.execute("DELETE FROM answers WHERE answer_id = ?", (last[0],))
            ticket, expires = secrets.token_urlsafe(16), now + self.lease_seconds
            con.execute(
                "INSERT OR REPLACE INTO leases (annotator, item_id, ticket, expires) VALUES (?, ?, ?, ?)",
                (name, last[1], ticket, expires),
            )
            return CampaignItem(last[1], ticket, expires)

    def _progress(self, con: sqlite3.Connection, name: str, now: float) -> dict[str, int]:
        answered = con.execute("SELECT COUNT(*) FROM answers WHERE annotator = ?", (name,)).fetchone()[0]
        left = self._count(con, self._OPEN, name, now)
        below_target = self._count(con, self._ALLOWED + " AND " + self._ANSWERS + " < :target", name, now)
        return {"answered": answered, "left": left, "held_by_others": below_target - left}

    def progress(self, name: Any) -> dict[str, int]:
        """``{"answered", "left", "held_by_others"}``: ``name``'s answers, the items still open to them, and
        the items they could still answer that others have on screen right now.

        Raises:
            AnnotationError: (403) an unknown annotator.
        """
        with self._read() as con:
            return self._progress(con, self._known(con, name), time.time())

    def shown(self) -> list[dict[str, Any]]:
        """When each item was first handed to each annotator: annotator, item_id, kind, key, original_key,
        first_shown (epoch s)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT s.annotator, s.item_id, i.kind, i.key, i.original_key, s.first_shown "
                "FROM shown s JOIN items i USING (item_id) ORDER BY s.first_shown"
            ).fetchall()
        cols = ("annotator", "item_id", "kind", "key", "original_key", "first_shown")
        return [dict(zip(cols, r)) for r in rows]

    # -- reading everything back -------------------------------------------------------------------------------
    def items(self) -> list[tuple[int, str, str]]:
        """Every ``(item_id, kind, key)``."""
        with self._read() as con:
            return con.execute("SELECT item_id, kind, key FROM items ORDER BY item_id").fetchall()

    def answers(self) -> list[dict[str, Any]]:
        """Every recorded answer in the order given: annotator, item_id, kind, key, answer, answered (epoch s)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT a.answer_id, a.annotator, a.item_id, i.kind, i.key, a.answer, a.answered "
                "FROM answers a JOIN items i USING (item_id) ORDER BY a.answer_id"
            ).fetchall()
        cols = ("answer_id", "annotator", "item_id", "kind", "key", "answer", "answered")
        return [dict(zip(cols, r)) for r in rows]

    def retracted(self) -> list[dict[str, Any]]:
        """Every undone answer (never deleted): as ``answers()`` plus ``retracted`` (epoch s)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT answer_id, annotator, item_id, answer, answered, retracted FROM retracted "
                "ORDER BY answer_id"
            ).fetchall()
        cols = ("answer_id", "annotator", "item_id", "answer", "answered", "retracted")
        return [dict(zip(cols, r)) for r in rows]

    def annotators(self) -> list[str]:
        """Names that joined, in the order they joined."""
        with self._read() as con:
            return [r[0] for r in con.execute("SELECT name FROM annotators ORDER BY joined, name")]
