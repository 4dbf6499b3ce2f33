"""Conversation records for supervisors over real HTTP (web/chatrecords.py): the list
and one conversation whole, from a real store; agents are refused."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from web_testkit import NOW, Portal

from text import mask_secure
from text.conversation import Conversation
from web.textexec import conversation_row


def _conversation(portal: Portal) -> str:
    s, t0 = portal.store, NOW - timedelta(minutes=30)
    conv = Conversation("sms:+15550123:1", "sms", "+15550123", t0, t0, state="waiting-agent",
                        language="en", intent="billing")
    s.save_conversation(conversation_row(conv))
    s.add_text_message(conv.id, t0, "in", mask_secure("my card 4111 1111 1111 1111").text,
                       "SM1", channel="sms")
    s.add_text_event(conv.id, t0, "handed-to-person", {"reason": "asked for a person"})
    r = s.route_chat(conv.id, "sms", "+15550123", "general", "en", "billing", t0)
    t1, t2, t3 = (t0 + timedelta(seconds=x) for x in (20, 50, 300))
    s.update_chat_route(r.route_id, t1, state="accepted", agent_id="alice", offered_at=t1,
                        accepted_at=t1)
    s.add_text_message(conv.id, t2, "out", "Hello, Alice here")
    s.update_chat_route(r.route_id, t2, first_reply_at=t2)
    s.update_chat_route(r.route_id, t3, state="ended", ended_by="agent", ended_at=t3,
                        wrap_up="refund promised", survey_score=4)
    return conv.id


def test_a_supervisor_sees_conversations_and_one_whole(portal: Portal) -> None:
    cid = _conversation(portal)
    c, _ = portal.login("sam")
    page = c.get("/supervisor/chats")
    assert page.status_code == 200
    assert f'data-conversation="{cid}"' in page.text and "+15550123" in page.text
    assert "<td>alice</td>" in page.text and "<td>50</td>" in page.text  # first response
    one = c.get(f"/supervisor/chats/{quote(cid)}")
    assert one.status_code == 200
    html = one.text
    assert "[card number removed]" in html and "4111" not in html
    assert "Hello, Alice here" in html and "refund promised" in html
    assert f'data-route="{cid}#1"' in html and "event-handed-to-person" in html
    assert '<td class="survey">4 </td>' in html
    assert c.get("/supervisor/chats/nope").status_code == 404


def test_agents_may_not_see_conversation_records(portal: Portal) -> None:
    cid = _conversation(portal)
    c, _ = portal.login("alice")
    for path in ("/supervisor/chats", f"/supervisor/chats/{quote(cid)}"):
        r = c.get(path)
        assert r.status_code == 403 and "4111" not in r.text
    anon = portal.client()
    assert anon.get("/supervisor/chats", follow_redirects=False).status_code == 303
