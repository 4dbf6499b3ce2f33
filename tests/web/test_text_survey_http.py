"""The text survey after a chat over real HTTP: the app on uvicorn (loopback), the
local provider server, the real store; the chat closed as the portal closes it
(issue 11, "Agent side": the optional one-question survey by text)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from provider_kit import Provider, post_sms, provider_text_config, start_provider
from web_testkit import AGENTS, NOW, SECRET, Clock

from homeline.secrets import SecretStore
from homeline.textwiring import text_channels
from routing import load_directory
from store import SqliteStore
from store.chats import ChatRoute
from web import Passwords, WebServer, WebSettings, create_app
from web.textexec import TextChannels

REPO = Path(__file__).resolve().parents[2]
TOKEN = "twilio-auth-token-for-tests"
APP_SECRET = "messenger-app-secret-for-tests"
SMS_OUT = "/2010-04-01/Accounts/"
CUSTOMER = "+15550123"
QUESTION = "How did we do? Reply with a number from 1 (poor) to 5 (great)."
METRICS = "metrics-token-for-the-chat-test"


@dataclass
class Stack:
    url: str
    store: SqliteStore
    provider: Provider
    client: httpx.Client
    text: TextChannels
    clock: Clock

    def sms(self, body: str, sid: str) -> httpx.Response:
        return post_sms(self.client, self.url, TOKEN, CUSTOMER, body, sid)

    def replies(self) -> list[str]:
        return [r.form()["Body"] for r in self.provider.sent(SMS_OUT)]


def _config(provider: Provider, survey: bool) -> dict[str, Any]:
    doc = provider_text_config(provider)
    if not survey:
        del doc["survey"]
    return doc


def _stack(tmp_path: Path, survey: bool = True) -> Iterator[Stack]:
    server, provider = start_provider()
    store = SqliteStore(tmp_path / "web.sqlite3")
    secrets = SecretStore(tmp_path / "secrets.json")
    secrets.set("sms:auth_token", TOKEN)
    secrets.set("messenger:app_secret", APP_SECRET)
    cfg = tmp_path / "text.yaml"
    cfg.write_text(yaml.safe_dump(_config(provider, survey), allow_unicode=True),
                   encoding="utf-8")
    clock = Clock(NOW)
    text = text_channels(store, secrets, clock, cfg)
    assert text is not None
    directory = load_directory(AGENTS)
    store.sync_agents(directory)
    store.add_user("sam", "supervisor", None, Passwords().hash("sam-password"), NOW)
    app = create_app(store, directory, clock, WebSettings(session_secret=SECRET,
                                                          metrics_token=METRICS), text=text)
    web = WebServer(app, "127.0.0.1", 0).start()
    client = httpx.Client(base_url=web.url, timeout=10.0)
    try:
        yield Stack(web.url, store, provider, client, text, clock)
    finally:
        client.close()
        web.stop()
        server.shutdown()
        server.server_close()
        store.close()


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(tmp_path)


def _served_and_closed(st: Stack, agent: str = "chloe") -> ChatRoute:
    """The customer asks for a person (the route is created by the webhook's
    HandToPerson), an agent accepts, replies and closes it as the portal does."""
    assert st.sms("I want an agent", "SM1").status_code == 200
    conv = st.store.open_conversation("sms", CUSTOMER)
    assert conv is not None and conv.state == "waiting-agent"
    route = st.store.open_chat_route(conv.id)
    assert route is not None and route.state == "waiting"
    st.clock.advance(20)
    assert st.store.update_chat_route(route.route_id, st.clock(), expect_states=("waiting",),
                                      state="accepted", agent_id=agent,
                                      accepted_at=st.clock())
    st.clock.advance(15)
    accepted = st.store.chat_route(route.route_id)
    assert accepted is not None and st.text.agent_reply(accepted, "Hello, I am Chloe.")
    st.clock.advance(120)
    assert st.store.update_chat_route(route.route_id, st.clock(), expect_states=("accepted",),
                                      expect_agent=agent, state="ended",
                                      ended_at=st.clock(), ended_by="agent",
                                      wrap_up="resolved")
    ended = st.store.chat_route(route.route_id)
    assert ended is not None
    st.text.chat_closed(ended)
    return ended


def test_survey_question_then_a_score_kept_on_the_route(stack: Stack) -> None:
    route = _served_and_closed(stack)
    assert stack.replies() == ["A person will answer you here shortly.",
                               "Hello, I am Chloe.", QUESTION]
    conv = stack.store.open_conversation("sms", CUSTOMER)
    assert conv is not None and conv.id == route.conversation_id and conv.state == "survey"
    assert conv.data["survey_route"] == route.route_id
    stack.clock.advance(30)
    assert stack.sms("4", "SM2").status_code == 200
    got = stack.store.chat_route(route.route_id)
    assert got is not None and (got.survey_score, got.survey_comment) == (4, None)
    assert (got.state, got.agent_id, got.wrap_up) == ("ended", "chloe", "resolved")
    assert stack.replies()[-1] == "Thank you for your answer."
    assert stack.store.open_conversation("sms", CUSTOMER) is None  # closed
    events = [(e, d) for _, e, d in stack.store.text_events(route.conversation_id)]
    assert ("closed", {"route_id": route.route_id, "by": "agent", "survey": True}) in events
    assert events[-1] == ("survey", {"route_id": route.route_id, "score": 4,
                                     "comment": None})
    msgs = stack.store.text_messages(route.conversation_id)
    assert [(m.direction, m.text) for m in msgs][-3:] == [
        ("out", QUESTION), ("in", "4"), ("out", "Thank you for your answer.")]
    # the provider's retry of the answer is not a second answer
    assert stack.sms("4", "SM2").status_code == 200
    assert len(stack.replies()) == 4


def test_a_comment_after_the_score(stack: Stack) -> None:
    route = _served_and_closed(stack)
    assert stack.sms(" 5 thanks, very quick", "SM2").status_code == 200
    got = stack.store.chat_route(route.route_id)
    assert got is not None and (got.survey_score, got.survey_comment) == (5, "thanks, very quick")


def test_a_non_number_starts_a_new_conversation(stack: Stack) -> None:
    route = _served_and_closed(stack)
    stack.clock.advance(60)
    assert stack.sms("what are your opening hours?", "SM2").status_code == 200
    got = stack.store.chat_route(route.route_id)
    assert got is not None and got.survey_score is None and got.survey_comment is None
    assert stack.replies()[-1].startswith("We are open Monday to Friday")
    new = stack.store.open_conversation("sms", CUSTOMER)
    assert new is not None and new.id != route.conversation_id
    assert (new.state, new.intent) == ("awaiting-feedback", "opening-hours")
    assert [(m.direction, m.message_id) for m in stack.store.text_messages(new.id)] == [
        ("in", "SM2"), ("out", None)]
    old = [c for c in stack.store.text_conversations() if c.id == route.conversation_id]
    assert [c.state for c in old] == ["closed"]
    assert stack.store.text_events(route.conversation_id)[-1][1:] == (
        "survey-unanswered", {"route_id": route.route_id, "next": new.id})
    # the old conversation's transcript ends with the question: the message is the new one's
    assert stack.store.text_messages(route.conversation_id)[-1].text == QUESTION


def test_without_a_survey_the_customer_is_told_it_is_closed(tmp_path: Path) -> None:
    for st in _stack(tmp_path, survey=False):
        route = _served_and_closed(st)
        assert st.replies()[-1] == "This conversation is closed. Write again any time."
        assert st.store.open_conversation("sms", CUSTOMER) is None
        assert st.sms("4", "SM2").status_code == 200  # a new conversation, not a score
        got = st.store.chat_route(route.route_id)
        assert got is not None and got.survey_score is None
        new = st.store.open_conversation("sms", CUSTOMER)
        assert new is not None and new.id != route.conversation_id


def test_a_transferred_route_does_not_close_the_conversation(stack: Stack) -> None:
    assert stack.sms("agent", "SM1").status_code == 200
    conv = stack.store.open_conversation("sms", CUSTOMER)
    assert conv is not None
    route = stack.store.open_chat_route(conv.id)
    assert route is not None
    assert stack.store.update_chat_route(route.route_id, stack.clock(), state="ended",
                                         ended_at=stack.clock(), ended_by="transfer")
    ended = stack.store.chat_route(route.route_id)
    assert ended is not None
    stack.text.chat_closed(ended)
    still = stack.store.open_conversation("sms", CUSTOMER)
    assert still is not None and still.state == "waiting-agent"
    assert stack.replies() == ["A person will answer you here shortly."]


def test_the_chat_and_its_survey_in_the_statistics(stack: Stack) -> None:
    """The webhook's route, the portal's accept/reply/close and the survey's score, read
    back by ``GET /api/stats`` and ``/metrics`` from the same store: routed at 06:00,
    accepted 20 s later, first reply at 35 s, ended at 155 s, score 4."""
    route = _served_and_closed(stack)
    stack.clock.advance(30)
    assert stack.sms("4 quick and kind", "SM2").status_code == 200
    r = stack.client.post("/api/session", json={"user": "sam", "password": "sam-password"})
    assert r.status_code == 200, r.text
    d = stack.client.get("/api/stats").json()["chats"]
    sms = d["channels"]["sms"]
    assert (sms["offered"], sms["accepted"], sms["abandoned"], sms["open_now"],
            sms["first_response_avg_s"], sms["first_response_p90_s"], sms["handle_avg_s"],
            sms["survey_count"], sms["survey_avg"]) == (1, 1, 0, 0, 35.0, 35.0, 135.0, 1, 4.0)
    assert d["channels"]["messenger"]["offered"] == 0
    assert d["queues"][route.queue_id]["offered"] == 1
    chloe = d["agents"]["chloe"]
    assert (chloe["accepted"], chloe["survey_avg"], chloe["held_s"], chloe["concurrency_avg"],
            chloe["concurrency_max"]) == (1, 4.0, 135.0, 1.0, 1)
    assert d["intents"] == {"-": {"survey_count": 1, "survey_avg": 4.0}}
    m = httpx.get(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {METRICS}"})
    assert m.status_code == 200
    lines = set(m.text.splitlines())
    for line in ('homeline_channel_chats_offered_today{channel="sms"} 1.0',
                 'homeline_channel_chats_accepted_today{channel="sms"} 1.0',
                 'homeline_channel_chats_abandoned_today{channel="sms"} 0.0',
                 'homeline_channel_chats_offered_today{channel="messenger"} 0.0',
                 'homeline_channel_first_response_seconds{channel="sms",stat="p90"} 35.0',
                 'homeline_channel_handle_seconds{channel="sms"} 135.0',
                 'homeline_channel_survey_score{channel="sms"} 4.0'):
        assert line in lines, (line, m.text)


def test_a_number_a_day_later_is_not_the_answer(stack: Stack) -> None:
    route = _served_and_closed(stack)
    stack.clock.advance(25 * 3600)
    assert stack.sms("2", "SM2").status_code == 200
    got = stack.store.chat_route(route.route_id)
    assert got is not None and got.survey_score is None
    new = stack.store.open_conversation("sms", CUSTOMER)
    assert new is not None and new.id != route.conversation_id
    assert stack.store.text_events(route.conversation_id)[-1][1] == "survey-unanswered"
