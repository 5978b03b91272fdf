"""Contracts of the annotation campaign file, the app's request guard and the status numbers, stated one by one.

``semsim_metric.annotate.storage``: creating a campaign file, opening it, who an annotator is, which item ids and
secrets are well formed, and the refusals (with their HTTP status and a message that says what happened);
``semsim_metric.annotate.security``: which ``Host`` headers a server answers, the headers added to every response
and the JSON content type a ``POST`` needs; ``semsim_metric.annotate.status``: Fleiss' kappa over complete items.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3

import pytest

from semsim_metric.annotate.security import SECURITY_HEADERS, HostRule, RequestGuard
from semsim_metric.annotate.status import campaign_status
from semsim_metric.annotate.storage import AnnotationError, Campaign, create_campaign
from tests.annotate_helpers import SCHEMA_1

TICKET = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16): 128 random bits


def _campaign(path, items=None, votes_per_item=1, **kwargs) -> Campaign:
    return create_campaign(
        path,
        dataset="demo",
        fingerprint="x",
        class_names=["cat", "dog"],
        items=items
        if items is not None
        else [("reconstruction", "r0", b"png", "o0"), ("original", "o0", b"png")],
        votes_per_item=votes_per_item,
        **kwargs,
    )


def _set_meta(path, key, value) -> None:
    with sqlite3.connect(path) as con:
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
    con.close()


# -- creating and opening a campaign file ------------------------------------------------------------------------


def test_creating_a_campaign_over_an_existing_file_is_refused_naming_the_file_and_leaves_it_intact(tmp_path):
    path = tmp_path / "c.sqlite"
    campaign = _campaign(path)
    campaign.join("alice")
    with pytest.raises(AnnotationError) as caught:
        _campaign(path, items=[("original", "other", b"png")])
    assert str(path) in str(caught.value) and "already exists" in str(caught.value)
    assert Campaign(path).annotators() == ["alice"]
    assert [key for _, _, key in Campaign(path).items()] == ["r0", "o0"]


def test_a_campaign_can_be_created_in_folders_that_do_not_exist_yet(tmp_path):
    path = tmp_path / "runs" / "2024" / "c.sqlite"
    campaign = _campaign(path)
    assert path.is_file() and campaign.items() == [(1, "reconstruction", "r0"), (2, "original", "o0")]


def test_each_campaign_gets_its_own_random_seed_of_16_hex_digits(tmp_path):
    seeds = [_campaign(tmp_path / f"c{i}.sqlite").meta["seed"] for i in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", s) for s in seeds), seeds
    assert seeds[0] != seeds[1]


def test_a_campaign_file_of_another_schema_is_refused_naming_the_file_and_both_schemas(tmp_path):
    path = tmp_path / "c.sqlite"
    _campaign(path)
    _set_meta(path, "schema_version", 3)
    with pytest.raises(AnnotationError) as caught:
        Campaign(path)
    message = str(caught.value)
    assert str(path) in message and "schema 3" in message and "reads 2" in message


def test_a_schema_1_campaign_that_cannot_be_written_is_refused_with_503_and_left_as_it_was(
    tmp_path, monkeypatch
):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")  # campaign files were always WAL databases
    con.executescript(SCHEMA_1)
    meta = {"schema_version": 1, "class_names": ["cat", "dog"], "votes_per_item": 1, "lease_seconds": 60.0}
    con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
    con.execute("INSERT INTO items VALUES (1, 'reconstruction', 'r0', x'00')")
    con.commit()
    con.close()
    real_connect = sqlite3.connect
    monkeypatch.setattr(  # read-only, as on a read-only or full disk (root ignores chmod)
        "semsim_metric.annotate.storage.sqlite3.connect",
        lambda *a, **kw: real_connect(f"file:{path}?mode=ro", uri=True, **kw),
    )
    with pytest.raises(AnnotationError) as caught:
        Campaign(path)
    assert caught.value.status == 503
    assert "cannot be written" in str(caught.value) and str(path) in str(caught.value)
    monkeypatch.undo()
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    con.close()


# -- who an annotator is -----------------------------------------------------------------------------------------


def test_a_secret_of_up_to_200_characters_is_looked_up_and_a_longer_one_is_refused(tmp_path):
    path = tmp_path / "c.sqlite"
    campaign = _campaign(path)
    campaign.join("alice")
    campaign.join("bob")
    with sqlite3.connect(
        path
    ) as con:  # secrets as a campaign file may hold them (only their SHA-256 is stored)
        for name, secret in (("alice", "a" * 200), ("bob", "b" * 201)):
            digest = hashlib.sha256(secret.encode()).hexdigest()
            con.execute("UPDATE annotators SET secret_sha256 = ? WHERE name = ?", (digest, name))
    con.close()
    assert campaign.annotator_for("a" * 200) == "alice"
    with pytest.raises(AnnotationError) as caught:
        campaign.annotator_for("b" * 201)
    assert caught.value.status == 401


def test_a_resume_code_cannot_be_reissued_for_a_name_that_never_joined_403(tmp_path):
    campaign = _campaign(tmp_path / "c.sqlite")
    with pytest.raises(AnnotationError) as caught:
        campaign.reissue_resume_code("mallory")
    assert caught.value.status == 403
    assert campaign.annotators() == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.next_item("mallory"),
        lambda c: c.progress("mallory"),
        lambda c: c.undo("mallory"),
        lambda c: c.answer("mallory", 1, "ticket", 0),
        lambda c: c.image("mallory", 1, "ticket"),
    ],
    ids=["next_item", "progress", "undo", "answer", "image"],
)
def test_an_annotator_who_never_joined_is_refused_with_403(tmp_path, call):
    campaign = _campaign(tmp_path / "c.sqlite")
    campaign.join("alice")
    with pytest.raises(AnnotationError) as caught:
        call(campaign)
    assert caught.value.status == 403
    assert campaign.answers() == [] and campaign.shown() == []


# -- item ids: 0 is well formed (no item has it), negative ones are not --------------------------------------------


def test_answering_item_id_0_is_a_stale_ticket_409_not_a_malformed_id_422(tmp_path):
    campaign = _campaign(tmp_path / "c.sqlite")
    campaign.join("alice")
    item = campaign.next_item("alice")
    with pytest.raises(AnnotationError) as caught:
        campaign.answer("alice", 0, item.ticket, 0)
    assert caught.value.status == 409
    with pytest.raises(AnnotationError) as caught:
        campaign.answer("alice", -1, item.ticket, 0)
    assert caught.value.status == 422
    assert campaign.answers() == []


def test_image_of_item_id_0_asks_who_the_annotator_is_first(tmp_path):
    campaign = _campaign(tmp_path / "c.sqlite")
    campaign.join("alice")
    with pytest.raises(AnnotationError) as caught:
        campaign.image("mallory", 0, "ticket")
    assert caught.value.status == 403  # unknown annotator: the id 0 itself is well formed
    with pytest.raises(AnnotationError) as caught:
        campaign.image("alice", 0, "ticket")
    assert caught.value.status == 404  # not on alice's screen
    with pytest.raises(AnnotationError) as caught:
        campaign.image("mallory", -1, "ticket")
    assert caught.value.status == 404  # a malformed id is not on anyone's screen


# -- answers and undo ----------------------------------------------------------------------------------------------


def test_answering_an_item_again_with_another_ticket_is_refused_pointing_to_undo(tmp_path):
    campaign = _campaign(tmp_path / "c.sqlite", votes_per_item=2)
    campaign.join("alice")
    item = campaign.next_item("alice")
    campaign.answer("alice", item.item_id, item.ticket, 1)
    with pytest.raises(AnnotationError) as caught:
        campaign.answer("alice", item.item_id, "another-ticket", 0)
    assert caught.value.status == 409
    assert "already answered" in str(caught.value) and "undo" in str(caught.value)
    assert [a["answer"] for a in campaign.answers()] == [1]


def test_a_reconstruction_given_back_after_its_original_was_shown_cannot_be_answered_blind(tmp_path):
    campaign = _campaign(tmp_path / "c.sqlite")
    campaign.join("alice")
    first = campaign.next_item("alice")
    assert campaign.items()[first.item_id - 1][1] == "reconstruction"  # reconstructions come first
    campaign.answer("alice", first.item_id, first.ticket, 1)
    original = campaign.next_item("alice")  # its original is on screen now
    assert campaign.items()[original.item_id - 1] == (original.item_id, "original", "o0")
    again = campaign.undo("alice")
    assert again.item_id == first.item_id
    with pytest.raises(AnnotationError) as caught:
        campaign.answer("alice", again.item_id, again.ticket, 0)
    assert caught.value.status == 409
    assert "blind" in str(caught.value) and "nothing was recorded" in str(caught.value)
    assert campaign.answers() == []


def test_undo_hands_the_item_back_with_a_fresh_128_bit_ticket_like_next_item(tmp_path):
    campaign = _campaign(tmp_path / "c.sqlite")
    campaign.join("alice")
    item = campaign.next_item("alice")
    campaign.answer("alice", item.item_id, item.ticket, 0)
    again = campaign.undo("alice")
    assert TICKET.fullmatch(item.ticket) and TICKET.fullmatch(again.ticket)
    assert again.item_id == item.item_id and again.ticket != item.ticket
    assert campaign.image("alice", again.item_id, again.ticket) == b"png"


# -- linking reconstructions to their originals ----------------------------------------------------------------


def test_link_originals_records_and_counts_only_the_reconstructions_it_was_told_about(tmp_path):
    items = [("reconstruction", f"r{i}", b"png") for i in range(3)] + [("original", "o0", b"png")]
    campaign = _campaign(
        tmp_path / "c.sqlite", items=items
    )  # no original keys, as in an upgraded schema 1 file
    assert campaign.link_originals({"r0": "o0", "r1": "o0", "elsewhere": "o9"}) == 2
    assert campaign.link_originals({"r0": "o0", "r1": "o0"}) == 0  # recorded already
    assert campaign.link_originals({"r2": "o0"}) == 1
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        linked = con.execute("SELECT key, original_key FROM items WHERE kind = 'reconstruction'").fetchall()
    con.close()
    assert sorted(linked) == [("r0", "o0"), ("r1", "o0"), ("r2", "o0")]


# -- status --------------------------------------------------------------------------------------------------------


def test_campaign_status_fleiss_kappa_is_1_when_annotators_agree_on_items_of_different_classes(tmp_path):
    items = [("reconstruction", "r0", b"png"), ("reconstruction", "r1", b"png")]
    campaign = _campaign(tmp_path / "c.sqlite", items=items, votes_per_item=2)
    class_of = {"r0": 0, "r1": 1}
    key_of = {item_id: key for item_id, _, key in campaign.items()}
    for name in ("alice", "bob"):
        campaign.join(name)
        while (item := campaign.next_item(name)) is not None:
            campaign.answer(name, item.item_id, item.ticket, class_of[key_of[item.item_id]])
    status = campaign_status(campaign)
    assert status["kappa_items"] == 2
    assert status["fleiss_kappa"] == 1.0
    assert status["items"] == {"reconstruction": {"items": 2, "complete": 2, "answers": 4}}


# -- security: Host rule -------------------------------------------------------------------------------------------


def test_a_server_on_every_interface_answers_its_fully_qualified_name_in_any_case(monkeypatch):
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "Lab-PC")
    monkeypatch.setattr(socket, "getfqdn", lambda *a: "Lab-PC.Example.ORG")
    rule = HostRule.for_bind_address("0.0.0.0")
    assert {"lab-pc", "lab-pc.example.org"} <= rule.names
    assert rule.allows("lab-pc.example.org:8765") and rule.allows("LAB-PC.EXAMPLE.ORG")
    assert rule.allows("10.1.2.3:8765") and not rule.allows("evil.example:8765")


def test_a_server_bound_to_a_bracketed_ipv6_address_answers_that_address():
    rule = HostRule.for_bind_address("[2001:DB8::5]")
    assert rule.names == frozenset({"2001:db8::5"})
    assert rule.allows("[2001:db8::5]:8765") and rule.allows("[2001:db8::5]")
    assert not rule.allows("[2001:db8::6]:8765") and not rule.allows("10.1.2.3")


@pytest.mark.parametrize(
    ("host_header", "allowed"),
    [
        ("lab-pc:8765", True),
        ("LAB-PC", True),
        ("[::1]:8765", True),
        ("[::1]", True),
        ("lab-pc:8765:1", False),
        ("[lab-pc]]:8765", True),
        ("other:8765", False),
    ],
)
def test_host_headers_are_compared_without_port_brackets_or_case(host_header, allowed):
    rule = HostRule(frozenset({"lab-pc", "::1"}))
    assert rule.allows(host_header) is allowed


# -- security: the ASGI guard --------------------------------------------------------------------------------------


def _run_guard(app, *, method="GET", headers=()) -> list[dict]:
    sent: list[dict] = []
    scope = {
        "type": "http",
        "method": method,
        "scheme": "http",
        "path": "/",
        "headers": [(b"host", b"127.0.0.1:8765"), *((k.encode(), v.encode()) for k, v in headers)],
    }

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(dict(message))

    asyncio.run(RequestGuard(app, HostRule.for_bind_address("127.0.0.1"))(scope, receive, send))
    return sent


async def _bare_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 204})  # no "headers" key at all (ASGI allows that)
    await send({"type": "http.response.body", "body": b""})


def test_the_guard_adds_its_headers_to_a_response_that_started_without_any_headers():
    sent = _run_guard(_bare_app)
    assert sent[0]["status"] == 204
    assert dict(sent[0]["headers"]) == {k.encode(): v.encode() for k, v in SECURITY_HEADERS.items()}


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 204),
        ("Application/JSON; charset=utf-8", 204),
        ("application/json; charset=utf-8; profile=x", 204),
        ("text/plain; charset=utf-8; x=application/json", 415),
        ("application/x-www-form-urlencoded", 415),
    ],
)
def test_a_post_passes_the_guard_exactly_when_its_media_type_is_json_whatever_parameters_follow(
    content_type, status
):
    sent = _run_guard(_bare_app, method="POST", headers=[("content-type", content_type)])
    assert sent[0]["status"] == status
