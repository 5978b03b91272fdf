"""Contracts of the annotation app and of the campaign <-> dataset bridge that the broader tests leave open.

The class list read from a dataset's rows, what resuming a campaign logs, what an export counts, writes in
``answers.csv`` and states on its card, and the app's HTTP contracts: the oversized-body status, the failure
window, the 500 answer, the session cookie's lifetime, the checks ``/api/next`` applies to its body and the rows
of the status page.
"""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
from datetime import UTC, datetime

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from semsim_metric.annotate.dataset import class_names_of, export_campaign, open_or_create_campaign
from semsim_metric.annotate.server import MAX_BODY_BYTES, SESSION_SECONDS, create_app, render_status
from semsim_metric.data.sources import FASHION_MNIST_CLASSES
from tests.annotate_helpers import make_unannotated_dataset

BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A one-split dataset folder: two originals of the bundled judged dataset, three reconstructions each, no votes."""
    out = tmp_path_factory.mktemp("contracts") / "to-annotate"
    return make_unannotated_dataset(out, 2, splits=("test",), reconstructions_per_original=3)


@pytest.fixture
def campaign(dataset, tmp_path):
    c, created = open_or_create_campaign(str(dataset), tmp_path / "c.sqlite", votes_per_item=2)
    assert created
    return c


def _client(app):
    return TestClient(app, base_url=BASE)


def _join(client, name):
    r = client.post("/api/join", json={"name": name})
    assert r.status_code == 200, r.text
    return r


# --- the class list of a dataset ---------------------------------------------------------------------------------


def test_the_class_list_of_a_dataset_without_class_label_names_is_the_names_its_rows_give_in_label_order():
    import datasets

    rows = {
        "class_label": [2, 0, 1, 0, -1],
        "class_name": ["bird", "cat", "dog", "cat", ""],
        "source_dataset": ["pets", "pets", "pets", "pets", "pets"],
    }
    dsd = datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)})
    assert class_names_of(dsd) == ["cat", "dog", "bird"]


# --- resuming a campaign: what it logs ---------------------------------------------------------------------------


@pytest.fixture
def semsim_log(caplog):
    with caplog.at_level(logging.INFO, logger="semsim_metric"):
        caplog.clear()
        yield caplog


def test_resuming_with_update_access_logs_the_campaign_file_and_what_changed(dataset, campaign, semsim_log):
    again, created = open_or_create_campaign(
        str(dataset), campaign.path, votes_per_item=2, token="n3w-token", update_access=True
    )
    assert not created and again.requires_token
    warnings = [r.getMessage() for r in semsim_log.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"campaign {campaign.path}: stored new access settings (")


def test_resuming_a_campaign_without_recorded_originals_logs_the_file_and_how_many_it_linked(
    dataset, campaign, semsim_log
):
    n = sum(1 for _, kind, _ in campaign.items() if kind == "reconstruction")
    with sqlite3.connect(campaign.path) as con:  # as a campaign upgraded from schema 1: no originals recorded
        con.execute("UPDATE items SET original_key = NULL WHERE kind = 'reconstruction'")
    con.close()
    semsim_log.clear()
    open_or_create_campaign(str(dataset), campaign.path, votes_per_item=2)
    messages = [r.getMessage() for r in semsim_log.records]
    assert (
        f"campaign {campaign.path}: recorded the original of {n} reconstructions (upgraded campaign)"
        in messages
    )


# --- the export ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(dataset, tmp_path_factory):
    """A campaign with originals, two annotators answering every item (alice: class 0, bob: cannot recognise
    the first item then class 0), exported from the campaign's *file path*."""
    root = tmp_path_factory.mktemp("exported")
    c, _ = open_or_create_campaign(str(dataset), root / "c.sqlite", votes_per_item=2, include_originals=True)
    for name in ("alice", "bob"):
        c.join(name)
        first = True
        while (item := c.next_item(name)) is not None:
            c.answer(name, item.item_id, item.ticket, -1 if (name == "bob" and first) else 0)
            first = False
    result = export_campaign(str(c.path), root / "out")
    return c, result, root / "out"


def test_export_accepts_the_campaign_file_path_and_counts_every_complete_original(exported):
    campaign, result, out = exported
    originals = sum(1 for _, kind, _ in campaign.items() if kind == "original")
    assert originals > 0
    assert result.originals_annotated == originals
    assert result.out == out and (out / "README.md").is_file()
    assert f"; {originals} originals annotated;" in result.summary()


def test_answers_csv_names_each_answer_and_gives_its_time_in_utc(exported):
    campaign, _, out = exported
    with open(out / "answers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    answers = {a["answer_id"]: a for a in campaign.answers()}
    assert len(rows) == len(answers)
    for row in rows:
        a = answers[int(row["answer_id"])]
        name = "cannot recognise" if a["answer"] == -1 else FASHION_MNIST_CLASSES[a["answer"]]
        assert row["answer_name"] == name
        expected = datetime.fromtimestamp(a["answered"], tz=UTC).isoformat(timespec="milliseconds")
        assert row["answered"] == expected and row["answered"].endswith("+00:00")
    assert {r["answer_name"] for r in rows} == {"T-shirt/top", "cannot recognise"}


def test_the_export_card_states_fleiss_kappa_and_the_rule_the_votes_were_judged_by(exported):
    _, result, out = exported
    card = (out / "README.md").read_text()
    assert result.rule.min_votes == 2  # a majority of the campaign's 2 answers per item
    assert f"`{json.dumps(result.rule.to_dict())}`" in card
    assert "recognized = at least 2 votes equal the true class" in card
    kappa = "undefined (no complete items, or one answer only)"
    if result.fleiss_kappa == result.fleiss_kappa:  # not NaN
        kappa = f"{result.fleiss_kappa:.3f}"
    assert f"Fleiss' kappa over complete items: {kappa}." in card


# --- the app ------------------------------------------------------------------------------------------------------


def test_a_body_streamed_without_a_declared_length_past_the_limit_is_refused_with_413(campaign):
    client = _client(create_app(campaign))
    _join(client, "alice")

    def chunks():
        yield b'{"item_id": 1, "ticket": "'
        yield b"x" * (MAX_BODY_BYTES + 10)
        yield b'", "answer": 0}'

    r = client.post("/api/answer", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"], r.text
    assert campaign.answers() == []


def test_a_client_over_the_failure_limit_waits_for_the_configured_window(campaign):
    client = _client(create_app(campaign, max_failures=1, failure_window_seconds=1000))
    wrong = {"Authorization": "Bearer not-a-secret"}
    assert client.get("/api/me", headers=wrong).status_code == 401
    blocked = client.get("/api/me", headers=wrong)
    assert blocked.status_code == 429
    assert 990 <= int(blocked.headers["Retry-After"]) <= 1000


def test_an_unexpected_error_is_answered_500_as_json_and_records_nothing(campaign, monkeypatch):
    client = _client(create_app(campaign))
    _join(client, "alice")

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(campaign, "progress", broken)
    r = client.get("/api/me")
    assert r.status_code == 500
    assert r.json() == {"error": "internal error; nothing was recorded."}


def test_joining_sets_an_httponly_strict_session_cookie_that_lasts_thirty_days(campaign):
    client = _client(create_app(campaign))
    r = _join(client, "alice")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"semsim_session_{campaign.meta['seed'][:8]}={r.json()['resume_code']};")
    assert SESSION_SECONDS == 30 * 24 * 3600
    assert f"Max-Age={SESSION_SECONDS}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"name": "mallory"}', 403, "signed in as 'alice'"),
        (b"{not json", 400, "JSON object"),
        (b"[1, 2]", 400, "JSON object"),
    ],
)
def test_asking_for_the_next_item_checks_the_body_and_hands_out_nothing_when_refused(
    campaign, body, status, words
):
    client = _client(create_app(campaign))
    _join(client, "alice")
    r = client.post("/api/next", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status and words in r.json()["error"], r.text
    assert campaign.progress("alice")["answered"] == 0
    ok = client.post("/api/next", json={"name": "alice"})  # naming oneself is fine
    assert ok.status_code == 200 and ok.json()["done"] is False


def test_the_status_page_lists_each_annotator_with_answers_shared_items_and_agreement(campaign):
    client = _client(create_app(campaign))
    _join(client, "alice")
    item = client.post("/api/next", json={}).json()
    assert client.post(
        "/api/answer", json={"item_id": item["item_id"], "ticket": item["ticket"], "answer": 1}
    ).json()["recorded"]
    page = client.get("/api/status.html").text
    assert "<tr><td>alice</td><td>1</td><td>0</td><td></td></tr>" in page


def _status(kappa_items, annotators=()):
    return {
        "answers": 4,
        "votes_per_item": 2,
        "items": {"reconstruction": {"items": 3, "complete": kappa_items, "answers": 4}},
        "kappa_items": kappa_items,
        "fleiss_kappa": 0.5 if kappa_items else None,
        "annotators": list(annotators),
    }


def test_render_status_escapes_names_and_formats_agreement_as_a_percentage():
    html = render_status(
        _status(2, [{"name": "<b>al</b>", "answers": 3, "agreement_items": 2, "agreement": 0.75}]), "T"
    )
    assert "<tr><td>&lt;b&gt;al&lt;/b&gt;</td><td>3</td><td>2</td><td>75.0%</td></tr>" in html


@pytest.mark.parametrize(("kappa_items", "warned"), [(0, False), (1, True), (19, True), (20, False)])
def test_the_status_page_warns_that_kappa_is_untrustworthy_from_one_to_nineteen_complete_items(
    kappa_items, warned
):
    html = render_status(_status(kappa_items), "T")
    assert ("(too few complete items to trust yet)" in html) is warned
