"""The annotation app's trust model as a specification (docs/reliability.md, "The annotation app's trust model").

Each test is one of the reproducers a hostile or careless user found: a resumed campaign must keep its
protection, nobody may act as another annotator, other sites may not drive the page, the protocol's order holds
when leases expire, and a broken request or file gives a clear JSON error rather than a 500.
"""

from __future__ import annotations

import base64
import csv
import fcntl
import hashlib
import os
import re
import sqlite3
import stat

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from semsim_metric.annotate.dataset import export_campaign, open_or_create_campaign
from semsim_metric.annotate.security import HostRule
from semsim_metric.annotate.server import create_app
from semsim_metric.annotate.storage import AnnotationError, Campaign, create_campaign
from tests.annotate_helpers import make_unannotated_dataset

BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_unannotated_dataset(tmp_path_factory.mktemp("trust") / "to-annotate", originals_per_split=1)


def browser(app, **kwargs) -> TestClient:
    """One person's browser: a client with a cookie jar of its own."""
    return TestClient(app, base_url=BASE, **kwargs)


def joined(app, name, **headers) -> TestClient:
    client = browser(app)
    r = client.post("/api/join", json={"name": name}, headers=headers)
    assert r.status_code == 200, r.text
    return client


@pytest.fixture
def served(monkeypatch):
    """Run `semsim annotate serve ...` up to the point where uvicorn would start; returns the app it would serve."""
    import uvicorn

    from semsim_metric.cli import main

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))

    def serve(*args: str) -> tuple[int, dict]:
        started.clear()
        return main(["annotate", "serve", *args]), dict(started)

    return serve


# -- 1. a resumed campaign keeps its protection ------------------------------------------------------------------


def test_a_token_given_when_resuming_a_campaign_without_one_is_refused_not_ignored(
    dataset, tmp_path, served, capsys
):
    path = tmp_path / "c.sqlite"
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    code, started = served(str(dataset), "--campaign", str(path))  # created without a token
    assert code == 0 and started["host"] == "127.0.0.1"
    code, started = served(
        str(dataset),
        "--campaign",
        str(path),
        "--token-file",
        str(token_file),
        "--annotator",
        "alice",
        "--host",
        "0.0.0.0",
    )
    err = capsys.readouterr().err
    assert code == 2 and started == {}, "the server must not start with less protection than asked for"
    assert "no access token but one was given" in err and "--update-access" in err
    assert Campaign(path).requires_token is False  # nothing changed
    code, started = served(
        str(dataset),
        "--campaign",
        str(path),
        "--token-file",
        str(token_file),
        "--annotator",
        "alice",
        "--host",
        "0.0.0.0",
        "--update-access",
    )
    assert code == 0 and started["host"] == "0.0.0.0"
    stored = Campaign(path)
    assert stored.requires_token and stored.allowed_annotators == ["alice"]
    r = browser(started["app"]).post("/api/join", json={"name": "alice"})
    assert r.status_code == 401  # what is in force is the new token


def test_resuming_with_another_token_or_list_is_refused_and_resuming_without_keeps_the_stored_one(
    dataset, tmp_path
):
    path = tmp_path / "c.sqlite"
    open_or_create_campaign(str(dataset), path, token="s3cret", annotators=["alice", "bob"])
    with pytest.raises(AnnotationError, match="its access token is not the one given"):
        open_or_create_campaign(str(dataset), path, token="guess")
    with pytest.raises(AnnotationError, match="it has an access token but 'none' was given"):
        open_or_create_campaign(str(dataset), path, token="")
    with pytest.raises(AnnotationError, match="annotator list"):
        open_or_create_campaign(str(dataset), path, annotators=["alice"])
    campaign, created = open_or_create_campaign(
        str(dataset), path, token="s3cret", annotators=["Bob", "alice"]
    )
    assert not created and campaign.requires_token  # the same settings (names compared as names)
    campaign, _ = open_or_create_campaign(str(dataset), path)
    assert campaign.requires_token and campaign.allowed_annotators == ["alice", "bob"]


def test_the_open_host_guard_checks_the_protection_in_force(dataset, tmp_path, served, capsys, monkeypatch):
    with_token = tmp_path / "t.sqlite"
    monkeypatch.setenv("SEMSIM_ANNOTATE_TOKEN", "from-the-environment")
    assert served(str(dataset), "--campaign", str(with_token))[0] == 0
    assert Campaign(with_token).requires_token  # the token came from the environment, not the command line
    monkeypatch.delenv("SEMSIM_ANNOTATE_TOKEN")
    code, started = served(str(dataset), "--campaign", str(with_token), "--host", "0.0.0.0")
    assert code == 0 and started["host"] == "0.0.0.0"  # no token typed, but the stored one is in force
    code, _ = served(
        str(dataset), "--campaign", str(with_token), "--host", "0.0.0.0", "--token", "from-the-environment"
    )
    assert code == 0 and "visible to other users" in capsys.readouterr().err  # a typed token is warned about
    without = tmp_path / "n.sqlite"
    assert served(str(dataset), "--campaign", str(without))[0] == 0
    code, started = served(str(dataset), "--campaign", str(without), "--host", "0.0.0.0")
    assert code == 2 and started == {} and "has no access token" in capsys.readouterr().err
    code, started = served(str(dataset), "--campaign", str(tmp_path / "new.sqlite"), "--host", "0.0.0.0")
    assert code == 2 and "give the campaign a token" in capsys.readouterr().err
    assert not (tmp_path / "new.sqlite").exists()  # refused before anything was written


# -- 2. everyone is only themselves ------------------------------------------------------------------------------


@pytest.fixture
def app(dataset, tmp_path):
    campaign, _ = open_or_create_campaign(
        str(dataset), tmp_path / "c.sqlite", votes_per_item=2, include_originals=True, token="s3cret"
    )
    return create_app(campaign)


TOKEN = {"X-Campaign-Token": "s3cret"}


def test_someone_with_the_shared_token_cannot_undo_answer_or_look_as_someone_else(app):
    campaign = app.state.campaign
    alice, bob = joined(app, "alice", **TOKEN), joined(app, "bob", **TOKEN)
    item = alice.post("/api/next", json={}).json()
    assert (
        alice.post(
            "/api/answer", json={**{k: item[k] for k in ("item_id", "ticket")}, "answer": 3}
        ).status_code
        == 200
    )
    r = bob.post("/api/undo", json={"name": "alice"})
    assert r.status_code == 403 and "signed in as 'bob'" in r.json()["error"]
    assert bob.post("/api/undo", json={}).status_code == 409  # bob has nothing of his own to undo
    assert [a["annotator"] for a in campaign.answers()] == ["alice"]
    held = alice.post("/api/next", json={}).json()
    bobs = bob.post("/api/next", json={"name": "bob"}).json()
    assert bobs["ticket"] != held["ticket"]  # /api/next hands bob his own item, never alice's ticket
    theft = bob.post("/api/answer", json={"item_id": held["item_id"], "ticket": held["ticket"], "answer": 0})
    assert theft.status_code == 409 and bob.get(held["image"]).status_code == 404
    anonymous = browser(app)  # the token alone is not a session
    assert anonymous.post("/api/next", json={"name": "alice"}, headers=TOKEN).status_code == 401
    assert anonymous.get(held["image"], headers=TOKEN).status_code == 401


@pytest.mark.parametrize("twin", ["Alice", "alice.", "ALICE", "a-lice"])
def test_one_person_cannot_take_several_votes_under_lookalike_names(app, twin):
    joined(app, "alice", **TOKEN)
    r = browser(app).post("/api/join", json={"name": twin}, headers=TOKEN)
    assert r.status_code == 409 and "is taken" in r.json()["error"]
    assert app.state.campaign.annotators() == ["alice"]


def test_coming_back_needs_the_same_browser_or_the_resume_code(app):
    first = browser(app)
    code = first.post("/api/join", json={"name": "alice"}, headers=TOKEN).json()["resume_code"]
    assert first.get("/api/me").json()["name"] == "alice"  # the same browser carries on by itself
    assert first.post("/api/join", json={"name": "alice"}, headers=TOKEN).status_code == 200
    elsewhere = browser(app)
    assert elsewhere.post("/api/join", json={"name": "alice"}, headers=TOKEN).status_code == 409
    r = elsewhere.post("/api/join", json={"name": "Alice", "resume_code": code}, headers=TOKEN)
    assert r.status_code == 200 and r.json()["name"] == "alice"
    script = browser(app)  # scripts may send the secret as a bearer token instead of a cookie
    assert script.get("/api/me", headers={"Authorization": f"Bearer {code}"}).json()["name"] == "alice"
    new_code = app.state.campaign.reissue_resume_code("alice")
    assert script.get("/api/me", headers={"Authorization": f"Bearer {code}"}).status_code == 401
    assert script.get("/api/me", headers={"Authorization": f"Bearer {new_code}"}).status_code == 200


def test_one_computer_cannot_reserve_every_item_under_many_names(dataset, tmp_path):
    campaign, _ = open_or_create_campaign(str(dataset), tmp_path / "c.sqlite", votes_per_item=1)
    app = create_app(campaign, leases_per_client=3)
    held = [joined(app, f"sock{k}").post("/api/next", json={}) for k in range(4)]
    assert [r.status_code for r in held] == [200, 200, 200, 429]
    assert "already has 3 images on screen" in held[3].json()["error"]
    assert len({r.json()["item_id"] for r in held[:3]}) == 3


def test_an_annotator_whose_remaining_items_are_on_others_screens_is_told_to_wait_not_that_all_is_done(
    dataset, tmp_path
):
    campaign, _ = open_or_create_campaign(str(dataset), tmp_path / "c.sqlite", votes_per_item=1)
    n = len(campaign.items())
    app = create_app(campaign, leases_per_client=None)
    others = [joined(app, f"other{k}") for k in range(n)]
    for other in others:
        assert other.post("/api/next", json={}).json()["done"] is False  # each holds one item: all are held
    late = joined(app, "late").post("/api/next", json={}).json()
    assert late["done"] is False and late["waiting"] is True and late["progress"]["held_by_others"] == n


# -- 3. other sites cannot drive the app -------------------------------------------------------------------------


def test_requests_from_other_sites_are_refused_and_change_nothing(app):
    alice = joined(app, "alice", **TOKEN)
    item = alice.post("/api/next", json={}).json()
    alice.post("/api/answer", json={"item_id": item["item_id"], "ticket": item["ticket"], "answer": 1})
    for headers, status in [
        ({"Origin": "http://evil.example", "Content-Type": "application/json"}, 403),
        ({"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403),
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Host": "evil.example:8765", "Content-Type": "application/json"}, 421),
    ]:
        r = alice.post("/api/undo", content=b'{"name": "alice"}', headers=headers)
        assert r.status_code == status and "error" in r.json(), (headers, r.text)
    assert len(app.state.campaign.answers()) == 1 and app.state.campaign.retracted() == []
    same_origin = alice.post("/api/undo", json={}, headers={"Origin": BASE})
    assert same_origin.status_code == 200 and app.state.campaign.answers() == []


def test_no_page_can_be_framed_and_the_page_runs_only_its_own_script(app):
    client = browser(app)
    for path in ("/", "/status", "/api/campaign", "/api/nothing-here"):
        r = client.get(path)
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
    page = client.get("/")
    script = re.search(r"<script>(.*?)</script>", page.text, flags=re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = page.headers["content-security-policy"]
    assert f"'sha256-{digest}'" in csp and "unsafe-inline" not in csp


def test_the_host_rule_answers_the_bound_names_only():
    loopback = HostRule.for_bind_address("127.0.0.1")
    assert (
        loopback.allows("127.0.0.1:8765")
        and loopback.allows("localhost:8765")
        and loopback.allows("[::1]:8765")
    )
    assert not loopback.allows("attacker.example:8765") and not loopback.allows(None)
    everywhere = HostRule.for_bind_address("0.0.0.0", extra=["annotate.lab.example"])
    assert everywhere.allows("192.168.1.20:8765") and everywhere.allows("annotate.lab.example")
    assert not everywhere.allows("rebound.attacker.example")


def test_wrong_secrets_are_rate_limited_per_address(app):
    client = browser(app)
    for _ in range(10):
        assert (
            client.post(
                "/api/join", json={"name": "alice"}, headers={"X-Campaign-Token": "guess"}
            ).status_code
            == 401
        )
    r = client.post("/api/join", json={"name": "alice"}, headers=TOKEN)  # even the right one, for a while
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert app.state.campaign.annotators() == []


# -- 4. the protocol's order holds when leases expire ------------------------------------------------------------


def _reconstruction_of(campaign, original_key):
    with sqlite3.connect(campaign.path) as con:
        return con.execute(
            "SELECT item_id FROM items WHERE kind = 'reconstruction' AND original_key = ? "
            "ORDER BY item_id LIMIT 1",
            (original_key,),
        ).fetchone()[0]


def test_a_reconstruction_is_never_offered_to_someone_who_has_seen_its_original(
    dataset, tmp_path, monkeypatch
):
    import time as time_module

    campaign, _ = open_or_create_campaign(
        str(dataset), tmp_path / "c.sqlite", votes_per_item=1, include_originals=True
    )
    campaign.join("alice")
    campaign.join("bob")
    held = campaign.next_item("alice")  # a reconstruction on alice's screen...
    with sqlite3.connect(campaign.path) as con:
        original_key = con.execute(
            "SELECT original_key FROM items WHERE item_id = ?", (held.item_id,)
        ).fetchone()[0]
    seen_original = False
    while (
        item := campaign.next_item("bob")
    ) is not None:  # ...while bob answers everything else, its original too
        kind = next(k for i, k, _ in campaign.items() if i == item.item_id)
        seen_original |= (
            kind == "original"
            and next(key for i, _, key in campaign.items() if i == item.item_id) == original_key
        )
        campaign.answer("bob", item.item_id, item.ticket, 0)
    assert seen_original
    real = time_module.time
    monkeypatch.setattr(
        "semsim_metric.annotate.storage.time.time", lambda: real() + campaign.lease_seconds + 1
    )
    assert campaign.next_item("bob") is None  # alice's lease expired, but bob has seen the original
    assert campaign.next_item("alice").item_id == held.item_id


def test_answers_that_broke_the_order_are_flagged_in_the_export_and_left_out_of_the_votes(dataset, tmp_path):
    campaign, _ = open_or_create_campaign(
        str(dataset), tmp_path / "c.sqlite", votes_per_item=1, include_originals=True
    )
    campaign.join("alice")
    while (item := campaign.next_item("alice")) is not None:
        campaign.answer("alice", item.item_id, item.ticket, 2)
    original = next(key for _, kind, key in campaign.items() if kind == "original")
    recon = _reconstruction_of(campaign, original)
    with sqlite3.connect(campaign.path) as con:  # as a campaign written before the rule would hold it
        answered = con.execute("SELECT answered FROM answers WHERE item_id = ?", (recon,)).fetchone()[0]
        con.execute(
            "UPDATE shown SET first_shown = ? WHERE item_id = (SELECT item_id FROM items WHERE kind = "
            "'original' AND key = ?)",
            (answered, original),
        )
        broken = {
            k
            for (k,) in con.execute(
                "SELECT i.key FROM answers a JOIN items i USING (item_id) WHERE i.original_key = ? AND a.answered >= ?",
                (original, answered),
            )
        }
    result = export_campaign(campaign, tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "answers.csv").read_text().splitlines()))
    flagged = {r["key"] for r in rows if r["saw_original_first"] == "true"}
    assert flagged == broken and len(broken) >= 1 and len(rows) == len(campaign.answers())
    assert result.reconstructions_annotated == sum(
        k == "reconstruction" for _, k, _ in campaign.items()
    ) - len(broken)
    assert "saw_original_first=true" in (tmp_path / "out" / "README.md").read_text()


# -- 9. broken requests and files get clear answers --------------------------------------------------------------


@pytest.mark.parametrize("content", [b"[" * 4000, b"{" * 4000])
def test_a_deeply_nested_body_is_a_400_not_a_500(app, content):
    alice = joined(app, "alice", **TOKEN)
    r = alice.post("/api/answer", content=content[:4000], headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON object" in r.json()["error"]


def test_a_campaign_file_that_cannot_be_written_is_refused_at_start_and_answers_503(
    dataset, tmp_path, monkeypatch, served, capsys
):
    path = tmp_path / "c.sqlite"
    campaign, _ = open_or_create_campaign(str(dataset), path, votes_per_item=1)
    app = create_app(campaign)
    alice = joined(app, "alice")
    uri = f"file:{path}?mode=ro"  # read-only, as a file on a read-only or full disk behaves (root ignores chmod)
    real_connect = sqlite3.connect
    monkeypatch.setattr(
        "semsim_metric.annotate.storage.sqlite3.connect",
        lambda *a, **kw: real_connect(uri, uri=True, **{k: v for k, v in kw.items() if k != "uri"}),
    )
    with pytest.raises(AnnotationError, match="cannot be written") as caught:
        campaign.check_writable()
    assert caught.value.status == 503
    r = alice.post("/api/next", json={})
    assert r.status_code == 503 and "nothing was recorded" in r.json()["error"]
    code, started = served(str(dataset), "--campaign", str(path), "--votes-per-item", "1")
    assert code == 2 and started == {} and "cannot be written" in capsys.readouterr().err


def test_campaign_files_are_private_and_created_under_a_lock(dataset, tmp_path):
    path = tmp_path / "c.sqlite"
    open_or_create_campaign(str(dataset), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    other = tmp_path / "other.sqlite"
    with open(tmp_path / "other.sqlite.lock", "w") as lock:  # another process is creating it
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(AnnotationError, match="in use"):
            create_campaign(
                other, dataset="d", fingerprint="f", class_names=["a"], items=[("original", "o", b"x")]
            )
    assert not other.exists() and not other.with_name("other.sqlite.creating").exists()


def test_the_default_campaign_file_stays_beside_its_dataset_folder(dataset, tmp_path, served, monkeypatch):
    import shutil

    data = shutil.copytree(dataset, tmp_path / "data" / "to-annotate")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert served(str(data))[0] == 0
    assert (tmp_path / "data" / "to-annotate.campaign.sqlite").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing lands where the command happened to run
