"""Drives the real API with the client openapi-python-client generated from its document.

Run by `openapi.rs` as `python3 openapi_client.py BASE_URL DOCUMENT` with the generated
package `dialer_client` on PYTHONPATH and an admin's API token in `DIALER_TOKEN`. Every request is built by the generated client from the
document's models (so the server accepting it shows the request schemas are right); every
answer's status must be documented for its route, and its body must match the schema the
document gives for that status (openapi-schema-validator, the validator's own JSON Schema
engine for OpenAPI 3.1). Every operation of the document is called at least once.
"""

import base64
import io
import json
import os
import socket
import sys
import urllib.parse

import httpx
from openapi_schema_validator import OAS31Validator

from dialer_client import AuthenticatedClient, Client
from dialer_client import models as m
from dialer_client.api.accounts import (
    audit,
    create_token,
    create_user,
    delete_user,
    end_session,
    get_me,
    list_tokens,
    list_users,
    login,
    revoke_token,
)
from dialer_client.api.agents import (
    create_agent,
    disposition,
    get_agent,
    dtmf,
    hangup,
    hold,
    line_call,
    list_agents,
    logout,
    pause,
    webrtc,
    ready,
    unhold,
)
from dialer_client.api.attempts import get_attempt, list_attempts
from dialer_client.api.campaigns import (
    create_campaign,
    get_campaign,
    get_spec,
    list_campaigns,
    patch_pacing,
    pause_campaign,
    start_campaign,
    stop_campaign,
)
from dialer_client.api.contacts import contact_counts, get_contact, list_contacts
from dialer_client.api.events import events, snapshot
from dialer_client.api.lists import upload_list
from dialer_client.api.service import health, metrics_text
from dialer_client.types import File

BASE, DOCUMENT = sys.argv[1], sys.argv[2]
TOKEN = os.environ["DIALER_TOKEN"]
with open(DOCUMENT, encoding="utf-8") as f:
    DOC = json.load(f)

called = set()
answers = 0


def validator(schema):
    """A validator of `schema` whose `#/components/...` references resolve in the document."""
    return OAS31Validator({**schema, "components": DOC["components"]})


def operation(operation_id):
    """The route, method and operation object of an operationId."""
    for route, item in DOC["paths"].items():
        for method, op in item.items():
            if op.get("operationId") == operation_id:
                return route, method, op
    raise AssertionError(f"no operation `{operation_id}` in the document")


def check(operation_id, response, status, request=None):
    """The answer has the expected status, documented for the route, and a body matching the
    schema of that status; the request body (if any) matches the request schema. Returns the
    answer's JSON."""
    global answers
    route, method, op = operation(operation_id)
    at = f"{method.upper()} {route}"
    code = int(response.status_code)
    body = response.content.decode("utf-8", "replace")
    assert code == status, f"{at}: status {code}, expected {status}: {body[:500]}"
    documented = op["responses"].get(str(code))
    assert documented is not None, f"{at}: status {code} is not documented: {body[:500]}"
    if request is not None:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        validator(schema).validate(request)
    kind = response.headers.get("content-type", "")
    assert kind.startswith("application/json"), f"{at} {code}: content type {kind!r}"
    schema = documented["content"]["application/json"]["schema"]
    value = json.loads(response.content)
    errors = sorted(validator(schema).iter_errors(value), key=str)
    assert not errors, f"{at} {code}: the answer does not match its schema: {errors[0]}\n{body[:2000]}"
    called.add(operation_id)
    answers += 1
    return value


def problem(operation_id, response, status, field=None):
    """An error answer: a documented status, a Problem the client parsed, naming `field`."""
    value = check(operation_id, response, status)
    parsed = response.parsed
    assert isinstance(parsed, m.Problem), f"{operation_id} {status}: parsed as {type(parsed)}"
    assert parsed.error, value
    if field is not None:
        fields = [f.field for f in parsed.fields] if parsed.fields else []
        assert field in fields, f"{operation_id} {status}: {field!r} not named in {value}"
    return parsed


def stream_messages(path, count):
    """The first `count` JSON text messages of the WebSocket at `path`, read with the standard
    library (the server's frames are whole and unmasked)."""
    url = urllib.parse.urlsplit(BASE)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Upgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    stream = sock.makefile("rb")
    status = stream.readline()
    assert status.split()[1] == b"101", status
    while stream.readline() not in (b"\r\n", b""):
        pass
    messages = []
    while len(messages) < count:
        head = stream.read(2)
        assert len(head) == 2 and head[0] & 0x80, f"a fragmented or broken frame: {head!r}"
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(stream.read(2), "big")
        elif length == 127:
            length = int.from_bytes(stream.read(8), "big")
        payload = stream.read(length)
        assert opcode != 8, f"the stream closed: {payload!r}"
        if opcode == 1:
            messages.append(json.loads(payload))
    sock.close()
    return messages


client = AuthenticatedClient(base_url=BASE, token=TOKEN, raise_on_unexpected_status=True, timeout=30.0)
anonymous = Client(base_url=BASE, raise_on_unexpected_status=True, timeout=30.0)

# The document served is the document checked.
served = httpx.get(f"{BASE}/api-docs/openapi.json", timeout=30.0).json()
assert served == DOC, "the served document differs from the one generated"

r = health.sync_detailed(client=anonymous)
check("health", r, 200)
assert r.parsed.status == "ok", r.parsed

# Accounts: no login is 401; the admin's token; a user made, logged in and out, tokens made
# and revoked, the user deleted.
problem("get_me", get_me.sync_detailed(client=anonymous), 401)
r = get_me.sync_detailed(client=client)
check("get_me", r, 200)
assert r.parsed.role == m.Role.ADMIN and r.parsed.via == "token", r.parsed
sam = m.UserRequest(username="sam", password="sam-password-1", role=m.Role.SUPERVISOR)
r = create_user.sync_detailed(client=client, body=sam)
check("create_user", r, 201, request=sam.to_dict())
sam_id = r.parsed.id
problem("create_user", create_user.sync_detailed(client=client, body=sam), 409)
short = m.UserRequest(username="tim", password="short", role=m.Role.MANAGER)
problem("create_user", create_user.sync_detailed(client=client, body=short), 422, field="password")
r = list_users.sync_detailed(client=client)
check("list_users", r, 200)
assert [u.username for u in r.parsed] == ["openapi-admin", "sam"], r.parsed
wrong = m.LoginRequest(username="sam", password="not-the-password")
problem("login", login.sync_detailed(client=anonymous, body=wrong), 401)
creds = m.LoginRequest(username="sam", password="sam-password-1")
r = login.sync_detailed(client=anonymous, body=creds)
check("login", r, 200, request=creds.to_dict())
assert r.parsed.role == m.Role.SUPERVISOR and r.parsed.via == "session", r.parsed
session_id = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
session = Client(
    base_url=BASE,
    cookies={"dialer_session": session_id},
    headers={"Origin": BASE},
    raise_on_unexpected_status=True,
    timeout=30.0,
)
r = get_me.sync_detailed(client=session)
check("get_me", r, 200)
r = end_session.sync_detailed(client=session)
assert int(r.status_code) == 204 and "204" in operation("end_session")[2]["responses"], r
called.add("end_session")
problem("get_me", get_me.sync_detailed(client=session), 401)
wish = m.TokenRequest(name="py", role=m.Role.MANAGER)
r = create_token.sync_detailed(client=client, body=wish)
check("create_token", r, 201, request=wish.to_dict())
assert r.parsed.secret.startswith("dlr_") and r.parsed.token.role == m.Role.MANAGER, r.parsed.token
made = r.parsed.token.id
r = list_tokens.sync_detailed(client=client)
check("list_tokens", r, 200)
assert made in [t.id for t in r.parsed], r.parsed
r = revoke_token.sync_detailed(made, client=client)
check("revoke_token", r, 200)
assert r.parsed.revoked_at is not None, r.parsed
problem("revoke_token", revoke_token.sync_detailed(10**9, client=client), 404)
r = delete_user.sync_detailed(sam_id, client=client)
check("delete_user", r, 200)
problem("delete_user", delete_user.sync_detailed(sam_id, client=client), 404)

spec = m.CampaignSpec(
    name="openapi",
    default_country="US",
    caller_id="+12025550123",
    trunk=m.Trunk(uri="sip:127.0.0.1:9"),
    pacing=m.Pacing(mode=m.DialMode.PREVIEW, max_lines=5),
    calling_hours=m.CallingHours(default="00:00-24:00", override_legal_limits=True),
)
r = create_campaign.sync_detailed(client=client, body=spec)
check("create_campaign", r, 201, request=spec.to_dict())
assert r.parsed.applied == m.Applied.CREATED, r.parsed
assert r.parsed.campaign.status == m.CampaignStatus.PAUSED, r.parsed
r = create_campaign.sync_detailed(client=client, body=spec)
check("create_campaign", r, 200, request=spec.to_dict())
assert r.parsed.applied == m.Applied.UNCHANGED, r.parsed

bad = m.CampaignSpec.from_dict({**spec.to_dict(), "default_country": "Atlantis"})
r = create_campaign.sync_detailed(client=client, body=bad)
problem("create_campaign", r, 422, field="default_country")

r = list_campaigns.sync_detailed(client=client)
check("list_campaigns", r, 200)
assert [c.name for c in r.parsed] == ["openapi"], r.parsed

r = get_campaign.sync_detailed("openapi", client=client)
view = check("get_campaign", r, 200)
assert r.parsed.name == "openapi" and r.parsed.mode == m.DialMode.PREVIEW, r.parsed
assert isinstance(r.parsed.figures.abandon.window, m.AbandonWindow), view
problem("get_campaign", get_campaign.sync_detailed("nowhere", client=client), 404)

r = get_spec.sync_detailed("openapi", client=client)
stored = check("get_spec", r, 200)
assert stored["name"] == "openapi" and stored["trunk"]["uri"] == "sip:127.0.0.1:9", stored
problem("get_spec", get_spec.sync_detailed("nowhere", client=client), 404)

r = start_campaign.sync_detailed("openapi", client=client)
check("start_campaign", r, 200)
assert r.parsed.status == m.CampaignStatus.RUNNING, r.parsed

change = m.PacingPatch(max_lines=8)
r = patch_pacing.sync_detailed("openapi", client=client, body=change)
check("patch_pacing", r, 200, request=change.to_dict())
crossing = m.PacingPatch(min_ratio=5.0, max_ratio=2.0)
r = patch_pacing.sync_detailed("openapi", client=client, body=crossing)
problem("patch_pacing", r, 422)
# A field the schema refuses is refused by the route too, and named.
unknown = {"max_line": 3}
route, _, op = operation("patch_pacing")
schema = op["requestBody"]["content"]["application/json"]["schema"]
assert not validator(schema).is_valid(unknown), "the schema takes an unknown field"
r = client.get_httpx_client().patch("/api/v1/campaigns/openapi/pacing", json=unknown)
value = check("patch_pacing", r, 422)
assert [f["field"] for f in value["fields"]] == ["max_line"], value

csv = b"phone,name\n+12025550100,Ann\n2025550101,Bob\nnot a number,Cy\n"


def upload_form():
    """The list above as the upload's multipart form."""
    return m.UploadForm(file=File(payload=io.BytesIO(csv), file_name="spring.csv", mime_type="text/csv"))


r = upload_list.sync_detailed("openapi", client=client, body=upload_form())
check("upload_list", r, 201)
assert (r.parsed.rows, r.parsed.imported, r.parsed.rejected) == (3, 2, 1), r.parsed
assert r.parsed.errors[0].line == 4, r.parsed
# Refused before its body is read, the upload's connection closes, and the answer says so: the
# same keep-alive client's next request goes on a fresh connection.
r = upload_list.sync_detailed("nowhere", client=client, body=upload_form())
problem("upload_list", r, 404)
assert r.headers.get("connection") == "close", dict(r.headers)

r = list_contacts.sync_detailed("openapi", client=client, limit=1)
page = check("list_contacts", r, 200)
assert len(r.parsed.items) == 1 and r.parsed.next_after_id == r.parsed.items[0].id, page
contact_id = r.parsed.items[0].id
assert r.parsed.items[0].e164 == "+12025550100", page
r = list_contacts.sync_detailed("openapi", client=client, after_id=contact_id, status=m.ContactStatus.PENDING)
check("list_contacts", r, 200)
assert [c.e164 for c in r.parsed.items] == ["+12025550101"], r.parsed
problem("list_contacts", list_contacts.sync_detailed("openapi", client=client, limit=0), 400, field="limit")

r = contact_counts.sync_detailed("openapi", client=client)
check("contact_counts", r, 200)
assert r.parsed.total == 2, r.parsed
problem("contact_counts", contact_counts.sync_detailed("nowhere", client=client), 404)

r = get_contact.sync_detailed(contact_id, client=client)
check("get_contact", r, 200)
assert r.parsed.id == contact_id and r.parsed.extra["name"] == "Ann", r.parsed
problem("get_contact", get_contact.sync_detailed(10**9, client=client), 404)

r = list_attempts.sync_detailed("openapi", client=client, contact_id=contact_id)
check("list_attempts", r, 200)
assert r.parsed.items == [], r.parsed
problem(
    "list_attempts", list_attempts.sync_detailed("openapi", client=client, limit=10**6), 400, field="limit"
)
problem("get_attempt", get_attempt.sync_detailed(10**9, client=client), 404)

agent = m.AgentSpec(username="alice", password="correct-horse", campaigns=["openapi"])
r = create_agent.sync_detailed(client=client, body=agent)
check("create_agent", r, 201, request=agent.to_dict())
agent_id = r.parsed.id
assert r.parsed.state == m.AgentState.LOGGED_OUT, r.parsed
problem("create_agent", create_agent.sync_detailed(client=client, body=agent), 409)
short = m.AgentSpec(username="bob", password="short")
problem("create_agent", create_agent.sync_detailed(client=client, body=short), 422, field="password")
lost = m.AgentSpec(username="carol", password="correct-horse", campaigns=["nowhere"])
problem("create_agent", create_agent.sync_detailed(client=client, body=lost), 422, field="campaigns[0]")

r = list_agents.sync_detailed(client=client)
check("list_agents", r, 200)
assert [a.username for a in r.parsed] == ["alice"], r.parsed
r = get_agent.sync_detailed(agent_id, client=client)
check("get_agent", r, 200)
problem("get_agent", get_agent.sync_detailed(10**9, client=client), 404)
r = client.get_httpx_client().get("/api/v1/agents/alice")
value = check("get_agent", r, 400)
assert [f["field"] for f in value["fields"]] == ["id"], value

# The agent's phone never called in: every state change is refused as not logged in.
problem("ready", ready.sync_detailed(agent_id, client=client), 409)
reason = m.PauseRequest(reason="break")
problem("pause", pause.sync_detailed(agent_id, client=client, body=reason), 409)
problem("logout", logout.sync_detailed(agent_id, client=client), 409)
offer = m.WebrtcOffer(sdp="not sdp")
problem("webrtc", webrtc.sync_detailed(agent_id, client=client, body=offer), 422)
problem("hangup", hangup.sync_detailed(agent_id, client=client), 409)
problem("hold", hold.sync_detailed(agent_id, client=client), 409)
problem("unhold", unhold.sync_detailed(agent_id, client=client), 409)
keys = m.DtmfRequest(digits="12#")
problem("dtmf", dtmf.sync_detailed(agent_id, client=client, body=keys), 409)
r = line_call.sync_detailed(agent_id, client=client)
check("line_call", r, 200)
assert not r.parsed.call, r.parsed
verdict = m.DispositionRequest(attempt_id=10**9, kind=m.DispositionKind.SALE)
problem("disposition", disposition.sync_detailed(agent_id, client=client, body=verdict), 404)

r = snapshot.sync_detailed(client=client)
check("snapshot", r, 200)
assert [c.name for c in r.parsed.campaigns] == ["openapi"], r.parsed
assert [a.username for a in r.parsed.agents] == ["alice"], r.parsed

# The stream's messages match the schema of the upgrade's answer: the snapshot, then the
# campaign's figures (sent every second while it is loaded).
_, _, op = operation("events")
message_schema = op["responses"]["101"]["content"]["application/json"]["schema"]
messages = stream_messages("/api/v1/events?campaign=openapi&types=campaign", 2)
for message in messages:
    errors = sorted(validator(message_schema).iter_errors(message), key=str)
    assert not errors, f"a stream message does not match StreamMessage: {errors[0]}\n{message}"
    answers += 1
assert [msg["type"] for msg in messages] == ["snapshot", "campaign"], messages
assert messages[1]["name"] == "openapi", messages[1]

# A plain GET is no WebSocket upgrade; a bad filter is named.
problem("events", events.sync_detailed(client=client), 400)
problem("events", events.sync_detailed(client=client, types="calls"), 400, field="types")

r = metrics_text.sync_detailed(client=client)
assert int(r.status_code) == 200, r
assert r.headers["content-type"].startswith("text/plain"), r.headers
assert b"dialer_http_requests_total" in r.content
called.add("metrics_text")

r = pause_campaign.sync_detailed("openapi", client=client)
check("pause_campaign", r, 200)
assert r.parsed.status == m.CampaignStatus.PAUSED, r.parsed
r = stop_campaign.sync_detailed("openapi", client=client)
check("stop_campaign", r, 200)
assert r.parsed.status == m.CampaignStatus.STOPPED, r.parsed

r = audit.sync_detailed(client=client, limit=1000)
check("audit", r, 200)
actions = {e.action for e in r.parsed.items}
for wanted in ["user.create", "user.delete", "token.create", "token.revoke", "campaign.apply", "campaign.pacing"]:
    assert wanted in actions, f"{wanted} not audited: {sorted(actions)}"
problem("audit", audit.sync_detailed(client=client, limit=0), 400, field="limit")

every = {op["operationId"] for item in DOC["paths"].values() for op in item.values()}
assert called == every, f"operations never called: {sorted(every - called)}"
print(f"checked {answers} answers of {len(every)} operations against the document")
