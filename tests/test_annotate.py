"""The annotation app as a specification: the protocol, the API's refusals, durability and the export."""

from __future__ import annotations

import json
import sqlite3

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from semsim_metric.annotate.dataset import export_campaign, open_or_create_campaign
from semsim_metric.annotate.server import MAX_BODY_BYTES, create_app
from semsim_metric.annotate.storage import AnnotationError
from semsim_metric.data.sources import FASHION_MNIST_CLASSES
from tests.annotate_helpers import ROOT, SCHEMA_1, make_unannotated_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_unannotated_dataset(
        tmp_path_factory.mktemp("annotate") / "to-annotate", originals_per_split=1
    )


@pytest.fixture
def campaign(dataset, tmp_path):
    c, created = open_or_create_campaign(
        str(dataset), tmp_path / "c.sqlite", votes_per_item=2, include_originals=True
    )
    assert created
    return c


#: the address the test clients use (the app answers only the names it was started for)
BASE = "http://127.0.0.1:8765"


class AppClient(TestClient):
    """A client without a session, plus one client (own cookie jar, as a browser of their own) per annotator."""

    def __init__(self, app):
        super().__init__(app, base_url=BASE)
        self.people = {}

    def as_(self, name):
        if name not in self.people:
            self.people[name] = TestClient(self.app, base_url=BASE)
        return self.people[name]


@pytest.fixture
def client(campaign):
    return AppClient(create_app(campaign))


def join(client, name, **headers):
    r = client.as_(name).post("/api/join", json={"name": name}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def take(client, name):
    r = client.as_(name).post("/api/next", json={})
    assert r.status_code == 200, r.text
    return r.json()


def give(client, name, item, answer=0):
    return client.as_(name).post(
        "/api/answer", json={"item_id": item["item_id"], "ticket": item["ticket"], "answer": answer}
    )


def test_a_campaign_holds_every_reconstruction_then_every_original(campaign, dataset):
    from semsim_metric.data.loading import load_folder_or_hub

    dsd = load_folder_or_hub(str(dataset))
    items = campaign.items()
    kinds = [k for _, k, _ in items]
    assert kinds.count("reconstruction") == sum(len(s) for s in dsd.values())
    assert kinds.count("original") == len({o for s in dsd.values() for o in s["original_id"]})
    assert campaign.class_names == FASHION_MNIST_CLASSES  # a Fashion-MNIST source gives all ten classes


def test_the_page_offers_every_class_and_cannot_recognise(client):
    page = client.get("/")
    assert page.status_code == 200 and "image-rendering: pixelated" in page.text
    info = client.get("/api/campaign").json()
    assert info["class_names"] == FASHION_MNIST_CLASSES and info["requires_token"] is False


def test_each_annotator_gets_an_order_of_their_own_with_reconstructions_first(campaign):
    orders = {}
    for name in ("alice", "bob"):
        campaign.join(name)
        seen = []
        while (item := campaign.next_item(name)) is not None:
            seen.append(item.item_id)
            campaign.answer(name, item.item_id, item.ticket, -1)
        orders[name] = seen
    kinds = {i: k for i, k, _ in campaign.items()}
    for seen in orders.values():
        assert sorted(seen) == sorted(kinds)  # every item once
        first_original = next(n for n, i in enumerate(seen) if kinds[i] == "original")
        assert all(
            kinds[i] == "original" for i in seen[first_original:]
        )  # originals only after reconstructions
    assert orders["alice"] != orders["bob"]


def test_the_same_item_stays_on_screen_until_answered(client):
    join(client, "alice")
    first = take(client, "alice")
    again = take(client, "alice")
    assert (again["item_id"], again["ticket"]) == (first["item_id"], first["ticket"])
    image = client.as_("alice").get(first["image"])
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_item_is_handed_out_beyond_its_target(campaign, dataset, tmp_path):
    single, _ = open_or_create_campaign(str(dataset), tmp_path / "one.sqlite", votes_per_item=1)
    for n in ("a1", "a2", "a3"):
        single.join(n)  # the Python API is the trusted, local interface: it takes names
    # with one vote per item, an item on one annotator's screen is reserved: nobody else is handed it
    held = [single.next_item(n).item_id for n in ("a1", "a2", "a3")]
    assert len(set(held)) == 3
    names = ["a1", "a2", "a3"]
    for n in names:
        campaign.join(n)
    counts = {}
    for n in names:
        while (item := campaign.next_item(n)) is not None:
            campaign.answer(n, item.item_id, item.ticket, 1)
    for a in campaign.answers():
        counts[a["item_id"]] = counts.get(a["item_id"], 0) + 1
    assert set(counts.values()) == {2} and len(counts) == len(campaign.items())


def test_undo_takes_back_the_last_answer_and_shows_it_again(client, campaign):
    join(client, "alice")
    item = take(client, "alice")
    assert give(client, "alice", item, 3).json()["progress"]["answered"] == 1
    back = client.as_("alice").post("/api/undo", json={}).json()
    assert back["item_id"] == item["item_id"] and back["ticket"] != item["ticket"]
    assert campaign.answers() == [] and [r["answer"] for r in campaign.retracted()] == [
        3
    ]  # kept, not deleted
    assert give(client, "alice", back, 4).status_code == 200
    assert [a["answer"] for a in campaign.answers()] == [4]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "mallory", "item_id": 1, "ticket": "x", "answer": 0}, 403, "signed in as 'alice'"),
        ({"name": "alice", "item_id": 1, "ticket": "forged", "answer": 0}, 409, "stale ticket"),
        ({"item_id": 2**70, "ticket": "T", "answer": 0}, 422, "whole number"),
        ({"name": "alice", "item_id": "ITEM", "ticket": "T", "answer": 10}, 422, "class index 0..9"),
        ({"name": "alice", "item_id": "ITEM", "ticket": "T", "answer": "Trouser"}, 422, "class index"),
        ({"name": "alice", "item_id": "ITEM", "ticket": "T", "answer": True}, 422, "class index"),
        ({"name": "alice", "item_id": "ITEM", "ticket": "T", "answer": -2}, 422, "class index"),
        (
            {"name": "alice", "item_id": "ITEM", "ticket": "T", "answer": 0, "admin": 1},
            422,
            "unexpected field",
        ),
        ({"name": "../../etc/passwd", "item_id": 1, "ticket": "x", "answer": 0}, 403, "signed in as"),
        ({"name": ["alice"], "item_id": 1, "ticket": "x", "answer": 0}, 403, "signed in as"),
    ],
)
def test_bad_answers_get_a_clear_4xx_and_write_nothing(client, campaign, body, status, words):
    join(client, "alice")
    item = take(client, "alice")
    body = {
        k: (item["item_id"] if v == "ITEM" else item["ticket"] if v == "T" else v) for k, v in body.items()
    }
    r = client.as_("alice").post("/api/answer", json=body)
    assert r.status_code == status and words in r.json()["error"], r.text
    assert campaign.answers() == []


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "alice'; DROP TABLE answers; --", ["alice"], "alice ", "a" * 41, None]
)
def test_names_that_are_not_allowed_cannot_join(client, campaign, name):
    r = client.post("/api/join", json={"name": name})
    assert r.status_code == 400 and "not allowed" in r.json()["error"], r.text
    assert campaign.annotators() == []


def test_duplicate_and_stale_submissions_are_refused(client, campaign):
    join(client, "alice")
    item = take(client, "alice")
    assert give(client, "alice", item).status_code == 200
    again = give(client, "alice", item)
    assert again.status_code == 409 and "duplicate submission" in again.json()["error"]
    join(client, "bob")
    bobs = take(client, "bob")
    theft = client.as_("alice").post(
        "/api/answer", json={"item_id": bobs["item_id"], "ticket": bobs["ticket"], "answer": 0}
    )
    assert theft.status_code == 409  # another annotator's ticket
    assert len(campaign.answers()) == 1


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"{not json", 400, "JSON object"),
        (b"[1, 2]", 400, "JSON object"),
        (b"\xff\xfe", 400, "JSON object"),
        (b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}", 413, "too large"),
    ],
)
def test_malformed_and_oversized_bodies_are_refused(client, campaign, content, status, words):
    join(client, "alice")
    r = client.as_("alice").post("/api/answer", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status and words in r.json()["error"]
    assert campaign.answers() == []


def test_images_are_only_served_for_the_item_on_the_annotators_screen(client):
    join(client, "alice")
    join(client, "bob")
    item = take(client, "alice")
    assert client.as_("alice").get(item["image"]).status_code == 200
    assert client.as_("bob").get(item["image"]).status_code == 404  # bob does not hold it
    assert client.get(item["image"]).status_code == 401  # nobody without a session gets anything
    alice = client.as_("alice")
    assert alice.get(f"/api/image/{item['item_id'] + 1}?ticket={item['ticket']}").status_code == 404
    for trick in (
        "/api/image/..%2F..%2Fetc%2Fpasswd",
        "/api/image/-1",
        "/api/image/1.png",
        "/api/../c.sqlite",
        f"/api/image/{2**70}",
    ):
        r = alice.get(trick + "?ticket=x")
        assert r.status_code == 404 and "error" in r.json(), trick
    assert client.get("/api/answer").status_code == 405


def test_a_token_is_required_everywhere_when_set(dataset, tmp_path):
    c, _ = open_or_create_campaign(str(dataset), tmp_path / "t.sqlite", votes_per_item=1, token="s3cret")
    client = AppClient(create_app(c))
    assert client.get("/api/campaign").json()["requires_token"] is True
    r = client.post("/api/join", json={"name": "alice"})
    assert r.status_code == 401 and "access token" in r.json()["error"]
    assert client.get("/api/status").status_code == 401 and client.get("/api/status.html").status_code == 401
    assert (
        client.get("/status?token=s3cret").status_code == 200 and "s3cret" not in client.get("/status").text
    )
    assert client.get("/api/status.html?token=s3cret").status_code == 401  # never from a URL
    join(client, "alice", **{"X-Campaign-Token": "s3cret"})
    assert client.get("/api/status", headers={"X-Campaign-Token": "s3cret"}).status_code == 200


def test_a_fixed_annotator_list_refuses_strangers(dataset, tmp_path):
    c, _ = open_or_create_campaign(str(dataset), tmp_path / "f.sqlite", annotators=["alice"])
    with pytest.raises(AnnotationError, match="not an annotator of this campaign"):
        c.join("bob")
    c.join("Alice")  # names are compared ignoring case and punctuation
    assert c.annotators() == ["Alice"]


def test_answers_are_committed_in_a_wal_database_the_moment_they_are_given(client, campaign):
    join(client, "alice")
    give(client, "alice", take(client, "alice"), 2)
    con = sqlite3.connect(campaign.path)  # another connection, as after a crash, sees the answer
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT annotator, answer FROM answers").fetchall() == [("alice", 2)]


def test_reopening_a_campaign_resumes_and_refuses_other_settings(dataset, campaign):
    campaign.join("alice")
    item = campaign.next_item("alice")
    campaign.answer("alice", item.item_id, item.ticket, 5)
    again, created = open_or_create_campaign(str(dataset), campaign.path, votes_per_item=2)
    assert not created and len(again.answers()) == 1
    assert again.next_item("alice").item_id != item.item_id
    with pytest.raises(AnnotationError, match="annotators per item"):
        open_or_create_campaign(str(dataset), campaign.path, votes_per_item=5)


def test_the_status_page_counts_answers_and_agreement(client, campaign):
    for name in ("alice", "bob", "cy"):
        join(client, name)
    for name in ("alice", "bob"):
        for _ in range(3):
            give(client, name, take(client, name), 0)
    status = client.get("/api/status").json()
    assert status["answers"] == 6 and [a["answers"] for a in status["annotators"]] == [3, 3, 0]
    assert client.get("/status").status_code == 200 and "Fleiss" in client.get("/api/status.html").text


def test_export_writes_human_votes_loadable_with_load_dataset(campaign, dataset, tmp_path):
    import datasets

    names = ("alice", "bob")
    for n in names:
        campaign.join(n)
    answered = 0
    for n in names:  # alice names the true class of everything, bob says "cannot recognise" to the first few
        while (item := campaign.next_item(n)) is not None and answered < 40:
            campaign.answer(n, item.item_id, item.ticket, -1 if n == "bob" and answered % 3 == 0 else 0)
            answered += 1
    result = export_campaign(campaign, tmp_path / "out")
    ds = datasets.load_dataset(str(tmp_path / "out"), download_mode="force_redownload")
    rows = [r for split in ds.values() for r in split]
    annotated = [r for r in rows if r["annotator_kind"] == "human"]
    assert len(annotated) == result.reconstructions_annotated > 0
    assert all(len(r["votes"]) == 2 for r in annotated)  # only complete items carry votes
    assert len(rows) == sum(1 for _, k, _ in campaign.items() if k == "reconstruction")  # no row lost
    given = {}
    for a in campaign.answers():
        given.setdefault(a["key"], []).append(a["answer"])
    assert all(r["votes"] == given[r["reconstruction_id"]] for r in annotated)  # every vote, in answer order
    # the default rule is a majority of the campaign's target (3 of 5 in the study; here 2 of 2)
    assert result.rule.min_votes == 2
    assert all(r["recognized"] == (sum(v == r["class_label"] for v in r["votes"]) >= 2) for r in annotated)
    exported = (tmp_path / "out" / "answers.csv").read_text().splitlines()
    assert len(exported) == 1 + result.answers  # every answer, raw
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Fleiss' kappa" in card and "| alice |" in card and "crowdsourced" in card
    with_incomplete = export_campaign(campaign, tmp_path / "out2", include_incomplete=True)
    assert (
        with_incomplete.reconstructions_annotated
        == result.reconstructions_annotated + result.reconstructions_incomplete
    )


def test_export_refuses_a_different_dataset(campaign, tmp_path):
    other = make_unannotated_dataset(tmp_path / "other", originals_per_split=2)
    with pytest.raises(AnnotationError, match="does not hold the reconstructions"):
        export_campaign(campaign, tmp_path / "out", dataset=str(other))


def test_fleiss_kappa_matches_the_textbook_example():
    """Fleiss (1971) as reproduced on Wikipedia: 10 items, 14 raters, 5 categories, kappa 0.210."""
    from semsim_metric.annotate.agreement import fleiss_kappa

    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    ratings = [[cat for cat, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(ratings) == pytest.approx(0.210, abs=5e-4)
    with pytest.raises(ValueError, match="same number of answers"):
        fleiss_kappa([[0, 0], [0, 0, 1]])


@pytest.mark.slow
def test_a_model_fine_tuned_on_the_exported_votes_loads_with_semsim(
    campaign, dataset, tmp_path, tiny_model_dir
):
    """Export -> `semsim train --init-from` (here the tiny test model) -> SemSim(folder)."""
    import zlib

    import torch

    from semsim_metric import SemSim
    from semsim_metric.data.loading import load_folder_or_hub
    from semsim_metric.training import TrainerOptions, TrainOptions, train

    dsd = load_folder_or_hub(str(dataset))
    truth = {r: c for s in dsd.values() for r, c in zip(s["reconstruction_id"], s["class_label"])}
    keys = {i: key for i, kind, key in campaign.items()}
    for name in ("alice", "bob"):
        campaign.join(name)
        while (item := campaign.next_item(name)) is not None:
            key = keys[item.item_id]
            if key not in truth:  # an original: annotated as its first class
                answer = 0
            else:  # people recognise some reconstructions and not others
                answer = truth[key] if zlib.crc32(key.encode()) % 2 == 0 else -1
            campaign.answer(name, item.item_id, item.ticket, answer)
    exported = export_campaign(campaign, tmp_path / "annotated")  # 2 votes per item: recognised = 2 of 2
    assert exported.rule.min_votes == 2
    result = train(
        str(tmp_path / "annotated"),
        tmp_path / "model",
        recipe="quick",
        options=TrainOptions(init_from=str(tiny_model_dir), trainer=TrainerOptions(progress=False)),
    )
    info = json.loads((tmp_path / "model" / "training_info.json").read_text())
    assert info["init_from"] == str(tiny_model_dir) and result.train_seconds > 0
    assert set(info["estimates"]) == set(
        info["stages"]
    )  # each stage's timing is recorded (empty below 3 steps)
    from safetensors.torch import load_file

    tuned, start = (
        load_file(tmp_path / "model" / "model.safetensors"),
        load_file(tiny_model_dir / "model.safetensors"),
    )
    assert tuned.keys() == start.keys() and any(
        not torch.equal(tuned[k], start[k]) for k in tuned
    )  # it was trained
    metric = SemSim(str(tmp_path / "model"), check_domain=False)  # random inputs are outside any domain
    x = torch.rand(2, 1, 28, 28)
    assert metric(x, x).item() == pytest.approx(0.0, abs=1e-4)


def test_export_refuses_a_rule_no_row_can_meet(campaign, tmp_path):
    from semsim_metric.data.schema import RecognitionRule

    with pytest.raises(AnnotationError, match="at most 2 votes"):
        export_campaign(campaign, tmp_path / "out", rule=RecognitionRule(min_votes=3))


def test_an_old_ticket_is_stale_after_undo_and_after_expiry(client, campaign, monkeypatch):
    join(client, "alice")
    item = take(client, "alice")
    give(client, "alice", item, 1)
    client.as_("alice").post("/api/undo", json={})
    old = give(client, "alice", item, 2)  # the ticket of the undone answer
    assert old.status_code == 409 and "stale ticket" in old.json()["error"]
    assert campaign.answers() == []
    # a lease that expired while others filled the item is refused, and the next call hands out another item
    import time as time_module

    held = campaign.next_item("alice")
    real = time_module.time
    monkeypatch.setattr(
        "semsim_metric.annotate.storage.time.time", lambda: real() + campaign.lease_seconds + 1
    )
    for name in ("bob", "cy"):
        campaign.join(name)
        while (other := campaign.next_item(name)) is not None and other.item_id != held.item_id:
            campaign.answer(name, other.item_id, other.ticket, 0)
        if other is not None:
            campaign.answer(name, other.item_id, other.ticket, 0)
    with pytest.raises(AnnotationError, match="ran out"):
        campaign.answer("alice", held.item_id, held.ticket, 0)
    assert campaign.next_item("alice").item_id != held.item_id


def test_the_command_line_reports_status_exports_and_refuses_an_open_host(
    campaign, dataset, tmp_path, capsys
):
    from semsim_metric.cli import main

    campaign.join("alice")
    item = campaign.next_item("alice")
    campaign.answer("alice", item.item_id, item.ticket, 0)
    assert main(["annotate", "status", str(campaign.path)]) == 0
    assert "1 answers (0 undone), 2 annotators per image" in capsys.readouterr().out
    assert main(["annotate", "status", str(campaign.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answers"] == 1
    assert main(["annotate", "export", str(campaign.path), "--out", str(tmp_path / "out")]) == 0
    assert "1 with fewer answers than the target" in capsys.readouterr().out
    assert (
        main(["annotate", "export", str(campaign.path), "--out", str(tmp_path / "o2"), "--min-votes", "3"])
        == 2
    )
    assert "at most 2 votes" in capsys.readouterr().err
    assert (
        main(
            ["annotate", "serve", str(dataset), "--host", "0.0.0.0", "--campaign", str(tmp_path / "x.sqlite")]
        )
        == 2
    )
    assert "give the campaign a token" in capsys.readouterr().err
    assert main(["annotate", "status", str(tmp_path / "missing.sqlite")]) == 2
    assert "no campaign file" in capsys.readouterr().err


def test_rows_the_campaign_did_not_complete_keep_their_earlier_votes_and_the_card_says_so(tmp_path):
    """Re-annotating a model-judged dataset: finished rows become human, the rest stay model-judge (labelled)."""
    import datasets

    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder
    from semsim_metric.data.loading import load_folder_or_hub, undecoded

    dsd = undecoded(load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1")))
    keep = sorted(set(dsd["test"]["original_id"]))[:1]
    rows = [r for r in dsd["test"] if r["original_id"] in keep]
    write_dataset_folder(
        {"test": rows}, tmp_path / "judged", DatasetCard(title="judged", summary="model judges")
    )
    c, _ = open_or_create_campaign(str(tmp_path / "judged"), tmp_path / "c.sqlite", votes_per_item=1)
    c.join("alice")
    item = c.next_item("alice")
    c.answer("alice", item.item_id, item.ticket, 3)
    export_campaign(c, tmp_path / "out")
    out = datasets.load_dataset(str(tmp_path / "out"), download_mode="force_redownload")["test"]
    kinds = sorted(out["annotator_kind"])
    assert kinds.count("human") == 1 and kinds.count("model-judge") == len(rows) - 1
    assert "NOT the people of this campaign" in (tmp_path / "out" / "README.md").read_text()


def test_a_schema_1_campaign_is_upgraded_in_place_keeping_every_answer(tmp_path):
    """A campaign written before per-annotator secrets (schema 1) opens as schema 2: answers and retractions kept,
    names that now compare equal kept apart, what each annotator was shown recorded, and a returning annotator
    claims their name with a fresh secret."""
    from semsim_metric.annotate.storage import SCHEMA_VERSION, Campaign

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_1)
    meta = {
        "schema_version": 1,
        "dataset": "demo",
        "fingerprint": "x",
        "class_names": ["cat", "dog"],
        "votes_per_item": 2,
        "lease_seconds": 60.0,
        "token_sha256": None,
        "annotators": None,
        "seed": "5eed",
        "created": 0.0,
    }
    con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
    con.executemany(
        "INSERT INTO items (item_id, kind, key, image) VALUES (?, ?, ?, ?)",
        [(1, "reconstruction", "r0", b"png"), (2, "original", "o0", b"png")],
    )
    con.executemany("INSERT INTO annotators VALUES (?, ?)", [("alice", 1.0), ("Alice.", 2.0), ("bob", 3.0)])
    con.executemany(
        "INSERT INTO answers (annotator, item_id, answer, ticket, answered) VALUES (?, ?, ?, ?, ?)",
        [("alice", 1, 1, "t1", 10.0), ("Alice.", 2, 2, "t2", 11.0)],
    )
    con.execute("INSERT INTO retracted VALUES (7, 'bob', 1, 0, 't0', 5.0, 6.0)")
    con.execute("INSERT INTO leases VALUES ('bob', 2, 't3', 99.0)")
    con.commit()
    con.close()

    campaign = Campaign(path)
    assert campaign.meta["schema_version"] == SCHEMA_VERSION == 2
    assert [(a["annotator"], a["key"], a["answer"], a["answered"]) for a in campaign.answers()] == [
        ("alice", "r0", 1, 10.0),
        ("Alice.", "o0", 2, 11.0),
    ]
    assert [(r["annotator"], r["item_id"], r["retracted"]) for r in campaign.retracted()] == [("bob", 1, 6.0)]
    with sqlite3.connect(path) as con:
        stored = json.loads(con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        keys = con.execute("SELECT name, name_key, secret_sha256 FROM annotators ORDER BY joined").fetchall()
        shown = con.execute(
            "SELECT annotator, item_id, first_shown FROM shown ORDER BY first_shown"
        ).fetchall()
        lease_client = con.execute("SELECT client FROM leases WHERE annotator = 'bob'").fetchone()[0]
    assert stored == 2
    assert keys == [("alice", "alice", None), ("Alice.", "alice~2", None), ("bob", "bob", None)]
    assert shown == [("bob", 1, 5.0), ("alice", 1, 10.0), ("Alice.", 2, 11.0)]
    assert lease_client == ""
    secret = campaign.join("alice")  # joined before secrets existed: the next to come claims the name
    assert campaign.annotator_for(secret) == "alice"
    with pytest.raises(AnnotationError):
        campaign.join("ALICE")  # claimed now: the same name without its resume code is refused
    assert Campaign(path).answers() == campaign.answers()  # opening again changes nothing


def test_campaign_status_counts_items_complete_items_answers_and_agreement(tmp_path):
    """``campaign_status``: per kind the items, the complete ones (``votes_per_item`` answers) and the answers;
    Fleiss' kappa over the complete items; each annotator's answers and agreement with the others."""
    from semsim_metric.annotate.status import campaign_status
    from semsim_metric.annotate.storage import create_campaign

    items = [("reconstruction", f"r{i}", b"png") for i in range(3)] + [("original", "o0", b"png")]
    c = create_campaign(
        tmp_path / "c.sqlite",
        dataset="demo",
        fingerprint="x",
        class_names=["cat", "dog"],
        items=items,
        votes_per_item=2,
    )
    for name in ("alice", "bob"):
        c.join(name)
    plan = {"alice": [1, 1, 0, 1], "bob": [1, 0]}  # alice answers every item, bob two: those two are complete
    for name, answers in plan.items():
        for answer in answers:
            item = c.next_item(name)
            c.answer(name, item.item_id, item.ticket, answer)
    status = campaign_status(c)
    assert status["answers"] == 6 and status["votes_per_item"] == 2
    kinds = status["items"]
    assert kinds["reconstruction"]["items"] == 3 and kinds["original"]["items"] == 1
    assert sum(k["answers"] for k in kinds.values()) == 6
    assert sum(k["complete"] for k in kinds.values()) == status["kappa_items"] == 2
    assert [(a["name"], a["answers"]) for a in status["annotators"]] == [("alice", 4), ("bob", 2)]
    assert all(a["agreement_items"] == 2 for a in status["annotators"])
    assert status["fleiss_kappa"] is None or -1.0 <= status["fleiss_kappa"] <= 1.0
    assert status["retracted"] == 0
