// The agent desktop: plain modern JavaScript, served by the dialer itself (no build step).
// It talks to the dialer over its HTTP API (session cookie) and its event WebSocket, and carries
// the agent's audio over WebRTC: the peer connection is the agent's leg, nailed up while logged in.

const $ = (selector) => document.querySelector(selector);
const API = "/api/v1";
const KINDS = [
  ["sale", "Sale"],
  ["not_interested", "Not interested"],
  ["callback", "Callback"],
  ["do_not_call", "Do not call"],
  ["wrong_number", "Wrong number"],
  ["other", "Other"],
];

// Everything the page knows, in one place; `window.desk` lets the tests read it.
const desk = {
  me: null,
  agentId: null,
  agent: null, // the agent's view (state, since, attempt_id, campaign)
  campaigns: [], // the agent's campaigns: {name, mode, status}
  campaign: null,
  stream: null, // the microphone
  pc: null,
  remote: new MediaStream(),
  audio: "off", // off | connecting | up | down
  link: "off", // the event stream: off | up | down
  working: false, // the agent asked to work (audio wanted) and has not logged out
  wanted: null, // the state the agent last chose: {state: "ready"} or {state: "paused", reason}
  muted: false,
  held: false,
  call: null, // the call on the line, with its contact card
  preview: null, // the contact offered in preview mode
  reconnects: 0, // offers made again after a blip or a restart, since the page opened
  errors: [],
};
window.desk = desk;

// ---------- small helpers ----------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.error || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  const text = await response.text();
  let value = null;
  if (text) {
    try {
      value = JSON.parse(text);
    } catch {
      value = { error: text };
    }
  }
  if (!response.ok) throw new ApiError(response.status, value);
  return value;
}

function show(id, visible) {
  $(id).hidden = !visible;
}

function notice(text, bad = false) {
  const box = $("#notice");
  box.textContent = text || "";
  box.className = bad ? "bad" : "";
  box.hidden = !text;
  if (text && bad) desk.errors.push(text);
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function fill(list, pairs) {
  list.replaceChildren();
  for (const [key, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = key;
    const dd = document.createElement("dd");
    dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    list.append(dt, dd);
  }
}

function label(key) {
  return key.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

// The contact's card: its well-known fields first, then every other column of its list.
function cardPairs(contact) {
  if (!contact) return [];
  const name =
    contact.name || [contact.first_name, contact.last_name].filter(Boolean).join(" ") || null;
  const pairs = [
    ["Name", name],
    ["Number", contact.phone || contact.number],
    ["Time zone", contact.time_zone],
    ["Status", contact.status],
    ["Attempts", contact.attempts],
  ];
  const skip = new Set(["id", "name", "first_name", "last_name", "phone", "number", "time_zone",
    "status", "attempts", "fields", "columns", "extra", "campaign_id", "list_id", "e164", "zones", "time_zones",
    "lease_node", "next_attempt_at", "last_outcome", "last_attempt_at"]);
  for (const [key, value] of Object.entries(contact)) {
    if (!skip.has(key) && typeof value !== "object") pairs.push([label(key), value]);
  }
  const extra = contact.fields || contact.columns || contact.extra || {};
  for (const [key, value] of Object.entries(extra)) pairs.push([label(key), value]);
  return pairs;
}

// A wall-clock time in an IANA time zone, as an instant: the zone's offset at that moment
// comes from Intl (the browser's own tz database), checked once more across a DST change.
function zonedToUtc(local, zone) {
  const [date, time] = local.split("T");
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi] = time.split(":").map(Number);
  const guess = Date.UTC(y, mo - 1, d, h, mi);
  const offset = (at) => {
    const parts = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(at));
    const get = (type) => Number(parts.find((p) => p.type === type).value);
    return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) - at;
  };
  let at = guess - offset(guess);
  const again = guess - offset(at);
  if (again !== at) at = again;
  return new Date(at).toISOString();
}

// ---------- views ----------

function view(name) {
  for (const id of ["#login-view", "#setup-view", "#work-view"]) show(id, id === `#${name}-view`);
  show("#status", name === "work");
  show("footer", name === "work");
  show("#sign-out", name !== "login");
}

function setAudio(state) {
  desk.audio = state;
  const el = $("#audio-state");
  el.textContent = `audio: ${state}`;
  el.className = "audio " + (state === "up" ? "up" : state === "off" ? "" : "down");
}

function setLink(state) {
  desk.link = state;
  const el = $("#link-state");
  el.textContent = `live: ${state}`;
  el.className = "link " + (state === "up" ? "up" : state === "off" ? "" : "down");
}

function render() {
  const agent = desk.agent;
  const state = agent?.state || "logged_out";
  const badge = $("#state");
  badge.textContent = state.replace("_", " ") + (state === "paused" && agent.pause_reason ? ` (${agent.pause_reason})` : "");
  badge.className = `state ${state}`;
  const onCall = state === "on_call";
  $("#hangup").disabled = !onCall;
  $("#hold").disabled = !onCall;
  $("#hold").classList.toggle("on", desk.held);
  $("#hold").lastChild.textContent = desk.held ? " Resume" : " Hold";
  $("#mute").classList.toggle("on", desk.muted);
  $("#mute").lastChild.textContent = desk.muted ? " Unmute" : " Mute";
  $("#ready").disabled = ["ready", "logged_out", "reserved", "on_call"].includes(state);
  for (const button of document.querySelectorAll("#keypad button")) button.disabled = !onCall;

  const call = desk.call;
  show("#card", Boolean(call?.contact));
  show("#script-panel", Boolean(call?.script));
  if (call?.contact) {
    fill($("#card-fields"), cardPairs(call.contact));
    $("#call-stage").textContent = call.state ? `(${String(call.state).replace("_", " ")})` : "";
    const body = $("#card-attempts tbody");
    body.replaceChildren();
    for (const attempt of call.history || []) {
      const row = document.createElement("tr");
      for (const value of [
        attempt.started_at ? new Date(attempt.started_at).toLocaleString() : "",
        attempt.outcome || (attempt.attempt_id === call.attempt_id ? "this call" : ""),
        attempt.disposition || "",
        attempt.note || "",
        attempt.agent_name || "",
      ]) {
        const cell = document.createElement("td");
        cell.textContent = typeof value === "object" ? JSON.stringify(value) : value;
        row.append(cell);
      }
      body.append(row);
    }
    if (!body.children.length) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 5;
      cell.textContent = "None: this is the first call.";
      row.append(cell);
      body.append(row);
    }
    $("#script").textContent = call.script || "";
    $("#callee-zone").textContent = call.contact.time_zone || "unknown";
  }
  const wrapping = state === "wrap_up";
  show("#wrapup", wrapping);
  const previewing = state === "ready" && currentMode() === "preview";
  show("#preview", previewing);
  if (previewing) {
    show("#preview-empty", !desk.preview);
    show("#preview-fields", Boolean(desk.preview));
    $("#preview-dial").disabled = !desk.preview;
    $("#preview-skip").disabled = !desk.preview;
    fill($("#preview-fields"), cardPairs(desk.preview?.contact));
  }
  show("#idle", !call?.contact && !previewing);
  $("#idle-text").textContent =
    state === "ready" ? "Ready: waiting for the next call." :
    state === "paused" ? "Paused. Press Ready to take calls." :
    state === "reserved" ? "A call is being connected." :
    state === "logged_out" ? "Logged out." : "";
  tick();
}

function tick() {
  const agent = desk.agent;
  const since = agent?.since ? Date.parse(agent.since) : Date.now();
  $("#state-timer").textContent = clock((Date.now() - since) / 1000);
  if (agent?.state === "wrap_up") $("#wrapup-timer").textContent = clock((Date.now() - since) / 1000);
}

function currentMode() {
  const name = desk.agent?.campaign || desk.campaign;
  return desk.campaigns.find((c) => c.name === name)?.mode;
}

// ---------- login ----------

async function start() {
  buildStatic();
  setInterval(tick, 250);
  try {
    desk.me = await api("GET", "/me");
  } catch (err) {
    if (err.status === 401) return view("login");
    return notice(`The dialer cannot be reached: ${err.message}`, true);
  }
  await afterLogin();
}

async function afterLogin() {
  const me = desk.me;
  $("#who").textContent = me.user.username;
  show("#who", true);
  if (me.role !== "agent" || !me.user.agent_id) {
    view("login");
    show("#login-form", false);
    $("#login-error").textContent = `${me.user.username} is a ${me.role}: this page is for agents (supervisors and managers use the console).`;
    show("#sign-out", true);
    return;
  }
  desk.agentId = me.user.agent_id;
  desk.campaigns = me.campaigns || me.agent?.campaigns || [];
  const select = $("#campaign");
  select.replaceChildren();
  for (const c of desk.campaigns) {
    const option = document.createElement("option");
    const name = typeof c === "string" ? c : c.name;
    option.value = name;
    option.textContent = typeof c === "string" ? c : `${c.name} (${c.mode || "?"}, ${c.status || "?"})`;
    select.append(option);
  }
  desk.campaigns = desk.campaigns.map((c) => (typeof c === "string" ? { name: c } : c));
  const saved = localStorage.getItem("desk.campaign");
  if (saved && desk.campaigns.some((c) => c.name === saved)) select.value = saved;
  desk.agent = await api("GET", `/agents/${desk.agentId}`);
  connectEvents();
  if (desk.agent.state !== "logged_out" || localStorage.getItem("desk.working") === "1") {
    // A reload or a restart under a working agent: take the leg back without asking.
    desk.campaign = desk.agent.campaign || saved || select.value;
    view("work");
    await openMicrophone(localStorage.getItem("desk.mic") || undefined);
    if (desk.stream) await startWork(true);
    render();
    return;
  }
  view("setup");
  await openMicrophone(localStorage.getItem("desk.mic") || undefined);
}

async function login(event) {
  event.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api("POST", "/login", { username: $("#username").value, password: $("#password").value });
    desk.me = await api("GET", "/me");
    $("#password").value = "";
    await afterLogin();
  } catch (err) {
    $("#login-error").textContent =
      err.status === 429 ? "Too many attempts: wait a little and try again." : err.message;
  }
}

async function signOut() {
  if (desk.working) await logout();
  try {
    await api("POST", "/logout");
  } catch {}
  localStorage.removeItem("desk.working");
  location.reload();
}

// ---------- microphone ----------

let meterContext = null;

async function openMicrophone(deviceId) {
  $("#mic-error").textContent = "";
  show("#mic-retry", false);
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        deviceId: deviceId ? { exact: deviceId } : undefined,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      },
    });
    desk.stream?.getTracks().forEach((t) => t.stop());
    desk.stream = stream;
    for (const track of stream.getAudioTracks()) track.enabled = !desk.muted;
    await listDevices(stream.getAudioTracks()[0]?.getSettings().deviceId);
    meter(stream);
    const sender = desk.pc?.getSenders().find((s) => s.track?.kind === "audio" || s.track === null);
    if (sender) await sender.replaceTrack(stream.getAudioTracks()[0]);
    $("#start").disabled = false;
    return true;
  } catch (err) {
    if (deviceId && err.name === "OverconstrainedError") return openMicrophone(undefined);
    desk.stream = null;
    const why =
      err.name === "NotAllowedError" || err.name === "SecurityError"
        ? "The microphone is blocked. Allow it for this site in the browser (the icon left of the address), then try again."
        : err.name === "NotFoundError"
          ? "No microphone was found. Plug one in, then try again."
          : `The microphone cannot be opened: ${err.message || err.name}`;
    $("#mic-error").textContent = why;
    if (desk.working) notice(why, true);
    else desk.errors.push(why);
    show("#mic-retry", true);
    $("#start").disabled = true;
    if (desk.working) setAudio("down");
    return false;
  }
}

async function listDevices(current) {
  const select = $("#mic");
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
  select.replaceChildren();
  for (const [i, device] of devices.entries()) {
    const option = document.createElement("option");
    option.value = device.deviceId;
    option.textContent = device.label || `Microphone ${i + 1}`;
    select.append(option);
  }
  if (current) select.value = current;
}

function meter(stream) {
  meterContext?.close();
  meterContext = new AudioContext();
  const analyser = meterContext.createAnalyser();
  analyser.fftSize = 1024;
  meterContext.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const update = () => {
    if (meterContext?.state === "closed" || desk.stream !== stream) return;
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const x of data) sum += x * x;
    const level = desk.muted ? 0 : Math.min(1, Math.sqrt(sum / data.length) * 4);
    desk.micLevel = level;
    $("#mic-level").value = level;
    $("#work-level").value = level;
    setTimeout(update, 100);
  };
  meterContext.resume().catch(() => {});
  update();
}

// ---------- the WebRTC leg ----------

function iceGathered(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    // Host candidates come at once; a missing STUN server must not hold the page up.
    setTimeout(resolve, ms);
  });
}

let reconnecting = null;

async function connectAudio() {
  desk.pc?.close();
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
  desk.pc = pc;
  setAudio("connecting");
  const track = desk.stream.getAudioTracks()[0];
  pc.addTrack(track, desk.stream);
  pc.ontrack = (event) => {
    for (const old of desk.remote.getTracks()) desk.remote.removeTrack(old);
    desk.remote.addTrack(event.track);
    const audio = $("#remote-audio");
    audio.srcObject = desk.remote;
    audio.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (desk.pc !== pc) return;
    const state = pc.connectionState;
    if (state === "connected") {
      setAudio("up");
      notice("");
    } else if (state === "failed" || state === "closed") {
      setAudio("down");
      reconnectAudio(`the audio connection ${state}`);
    } else if (state === "disconnected") {
      setAudio("down");
      // ICE often recovers by itself from a short blip; give it a few seconds first.
      setTimeout(() => {
        if (desk.pc === pc && pc.connectionState === "disconnected") reconnectAudio("the audio connection dropped");
      }, 3000);
    }
  };
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await iceGathered(pc, 2000);
  const answer = await api("POST", `/agents/${desk.agentId}/webrtc`, {
    sdp: pc.localDescription.sdp,
    campaign: desk.campaign,
  });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
}

// Re-offers until the dialer takes the leg back (a network blip, a node restart), keeping the
// agent's state: the dialer replaces the leg of a logged-in agent without changing its state.
function reconnectAudio(why) {
  if (!desk.working || reconnecting) return reconnecting;
  reconnecting = (async () => {
    notice(`Reconnecting the audio: ${why}…`);
    for (let attempt = 0; desk.working; attempt++) {
      desk.reconnects++;
      await sleep(Math.min(500 * 2 ** attempt, 8000));
      if (!desk.working) break;
      try {
        if (!desk.stream && !(await openMicrophone($("#mic").value || undefined))) continue;
        await connectAudio();
        await restoreState();
        break;
      } catch (err) {
        setAudio("down");
        notice(`Reconnecting the audio (attempt ${attempt + 1}): ${err.message}`, true);
      }
    }
    reconnecting = null;
  })();
  return reconnecting;
}

async function startWork(resuming = false) {
  desk.campaign = resuming ? desk.campaign : $("#campaign").value;
  if (!desk.campaign) return notice("No campaign is assigned to you: ask your supervisor.", true);
  if (!desk.stream) return;
  localStorage.setItem("desk.campaign", desk.campaign);
  localStorage.setItem("desk.mic", $("#mic").value || "");
  desk.working = true;
  localStorage.setItem("desk.working", "1");
  view("work");
  try {
    await connectAudio();
    await restoreState();
  } catch (err) {
    if (err.status && err.status < 500 && err.status !== 429) {
      desk.working = false;
      localStorage.removeItem("desk.working");
      setAudio("off");
      view("setup");
      return notice(`Cannot log in to ${desk.campaign}: ${err.message}`, true);
    }
    reconnectAudio(err.message);
  }
  render();
}

// After a reconnect the dialer may have restarted without our state: put back what the agent
// chose, and send a disposition that did not get through.
async function restoreState() {
  desk.agent = await api("GET", `/agents/${desk.agentId}`);
  const wanted = desk.wanted || JSON.parse(localStorage.getItem("desk.wanted") || "null");
  if (wanted && desk.agent.state !== wanted.state && ["ready", "paused"].includes(desk.agent.state)) {
    if (wanted.state === "ready") await act("ready");
    else if (wanted.state === "paused") await act("pause", { reason: wanted.reason });
  }
  await flushDisposition();
  await refreshCall();
  render();
}

// ---------- the agent's actions ----------

async function act(action, body) {
  try {
    const result = await api("POST", `/agents/${desk.agentId}/${action}`, body);
    if (result && result.state && result.id === desk.agentId) desk.agent = result;
    notice("");
    return result;
  } catch (err) {
    notice(`${action}: ${err.message}`, true);
    throw err;
  } finally {
    render();
  }
}

function remember(wanted) {
  desk.wanted = wanted;
  localStorage.setItem("desk.wanted", JSON.stringify(wanted));
}

async function ready() {
  remember({ state: "ready" });
  await act("ready").catch(() => {});
}

async function pause() {
  const reason = $("#pause-reason").value;
  remember({ state: "paused", reason });
  await act("pause", { reason }).catch(() => {});
}

async function hangup() {
  if (desk.agent?.state === "on_call") await act("hangup").catch(() => {});
}

async function toggleHold() {
  if (desk.agent?.state !== "on_call") return;
  try {
    await act(desk.held ? "unhold" : "hold");
    desk.held = !desk.held;
  } catch {}
  render();
}

function toggleMute() {
  desk.muted = !desk.muted;
  for (const track of desk.stream?.getAudioTracks() || []) track.enabled = !desk.muted;
  render();
}

async function logout() {
  desk.working = false;
  localStorage.removeItem("desk.working");
  try {
    await act("logout");
  } catch {}
  desk.pc?.close();
  desk.pc = null;
  setAudio("off");
  desk.call = null;
  view("setup");
}

async function sendDigit(digit) {
  await act("dtmf", { digits: digit }).catch(() => {});
}

// A disposition is kept until the dialer has it, so a reconnect in wrap-up does not lose it.
async function dispose(kind) {
  const attempt = desk.call?.attempt_id || desk.agent?.attempt_id;
  $("#wrapup-error").textContent = "";
  if (!attempt) return ($("#wrapup-error").textContent = "No call to set a disposition for.");
  const body = { attempt_id: attempt, kind };
  const note = $("#note").value.trim();
  if (note) body.note = note;
  if (kind === "callback") {
    const at = $("#callback-at").value;
    if (!at) return ($("#wrapup-error").textContent = "Choose the callback's date and time first.");
    const zone = desk.call?.contact?.time_zone || Intl.DateTimeFormat().resolvedOptions().timeZone;
    body.callback_at = zonedToUtc(at, zone);
    body.callback_personal = $("#callback-mine").checked;
  }
  localStorage.setItem("desk.disposition", JSON.stringify(body));
  await flushDisposition();
}

async function flushDisposition() {
  const saved = localStorage.getItem("desk.disposition");
  if (!saved) return;
  const body = JSON.parse(saved);
  try {
    desk.lastDisposition = await api("POST", `/agents/${desk.agentId}/disposition`, body);
    localStorage.removeItem("desk.disposition");
    $("#note").value = "";
    $("#callback-at").value = "";
    desk.call = null;
    notice("");
  } catch (err) {
    if (err.status && err.status < 500 && err.status !== 429) {
      // Refused for good (a field, or the call is no longer this agent's): say so, keep nothing.
      localStorage.removeItem("desk.disposition");
      $("#wrapup-error").textContent = err.message;
    } else {
      $("#wrapup-error").textContent = `Not sent yet (${err.message}): it is kept and sent when the dialer is back.`;
    }
  }
  render();
}

async function refreshCall() {
  const attempt = desk.agent?.attempt_id;
  if (!attempt) {
    if (desk.agent?.state !== "wrap_up") desk.call = null;
    desk.held = false;
    return loadPreview();
  }
  if (desk.call?.attempt_id === attempt && desk.call.contact) return;
  try {
    desk.call = await loadCall(attempt);
    if (desk.call?.contact) normalise(desk.call.contact);
  } catch (err) {
    desk.call = { attempt_id: attempt };
    notice(`The contact's card cannot be shown: ${err.message}`, true);
  }
  render();
}

// The call on the line with its card: the desktop's own route, or (a dialer without it) the
// attempt and its contact, which an agent may read while the call is on its line.
async function loadCall(attempt) {
  try {
    const answer = await api("GET", `/agents/${desk.agentId}/call`);
    return answer?.call ?? answer;
  } catch (err) {
    if (err.status !== 404 && err.status !== 405) throw err;
  }
  const row = await api("GET", `/attempts/${attempt}`);
  const contact = await api("GET", `/contacts/${row.contact_id}`);
  return { attempt_id: attempt, state: desk.agent?.state, contact };
}

// One shape for a contact whatever route gave it.
function normalise(contact) {
  contact.time_zone ??= contact.time_zones?.[0] ?? contact.zones?.[0];
  contact.phone ??= contact.number ?? contact.e164;
  return contact;
}

async function loadPreview() {
  if (desk.agent?.state !== "ready" || currentMode() !== "preview") {
    desk.preview = null;
    return;
  }
  try {
    const answer = await api("GET", `/agents/${desk.agentId}/preview`);
    desk.preview = answer?.contact ? answer : null;
    if (desk.preview) normalise(desk.preview.contact);
  } catch (err) {
    desk.preview = null;
    // A dialer without preview dialing answers 404 for the route itself.
    $("#preview-empty").textContent =
      err.status === 404 || err.status === 405
        ? "Preview dialing is not offered by this dialer yet."
        : `Preview: ${err.message}`;
  }
  render();
}

async function previewDial() {
  if (!desk.preview) return;
  await act("preview/dial").catch(() => {});
  desk.preview = null;
}

async function previewSkip() {
  if (!desk.preview) return;
  await act("preview/skip", { reason: $("#skip-reason").value }).catch(() => {});
  desk.preview = null;
  await loadPreview();
}

// ---------- live events ----------

let events = null;

function connectEvents(delay = 0) {
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${API}/events?types=agent,call`);
    events = ws;
    ws.onopen = () => {
      setLink("up");
      delay = 0;
    };
    ws.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      onEvent(event);
    };
    ws.onclose = () => {
      if (events !== ws) return;
      setLink("down");
      desk.resync = true;
      // The dialer restarting or the network dropping: come back, then resynchronise.
      delay = Math.min((delay || 500) * 2, 8000);
      setTimeout(open, delay);
    };
  };
  if (delay) setTimeout(open, delay);
  else open();
}

function onEvent(event) {
  if (event.type === "snapshot") {
    const me = (event.agents || []).find((a) => a.id === desk.agentId);
    const afterDrop = desk.resync;
    desk.resync = false;
    if (me && afterDrop && me.state === "logged_out" && desk.working) {
      // The stream came back from a dialer that no longer has our leg (it restarted): offer
      // the leg again rather than take this for a logout.
      desk.agent = me;
      reconnectAudio("the dialer restarted");
      render();
    } else if (me) setAgent(me);
  } else if (event.type === "agent" && event.id === desk.agentId) {
    setAgent(event);
  } else if (event.type === "call" && desk.call && event.attempt_id === desk.call.attempt_id) {
    desk.call.state = event.state;
    render();
  }
}

function setAgent(agent) {
  agent = { ...agent };
  delete agent.type;
  const before = desk.agent;
  desk.agent = agent;
  if (agent.state === "logged_out" && desk.working && desk.audio === "up" && !reconnecting && before?.state !== "logged_out") {
    // Logged out by the dialer (a supervisor, a lost leg) while our leg was up.
    desk.working = false;
    localStorage.removeItem("desk.working");
    desk.pc?.close();
    desk.pc = null;
    setAudio("off");
    view("setup");
    notice("You were logged out by the dialer.", true);
  }
  if (agent.state !== "on_call") desk.held = false;
  if (agent.attempt_id !== before?.attempt_id || agent.state !== before?.state) refreshCall();
  render();
}

// ---------- page furniture ----------

function buildStatic() {
  const grid = $("#dispositions");
  KINDS.forEach(([kind, text], i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.kind = kind;
    button.id = `dispose-${kind}`;
    const key = document.createElement("kbd");
    key.textContent = String(i + 1);
    button.append(key, ` ${text}`);
    button.addEventListener("click", () => dispose(kind));
    grid.append(button);
  });
  const pad = $("#keypad");
  for (const digit of "123456789*0#") {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = digit;
    button.dataset.digit = digit;
    button.addEventListener("click", () => sendDigit(digit));
    pad.append(button);
  }
  $("#login-form").addEventListener("submit", login);
  $("#sign-out").addEventListener("click", signOut);
  $("#start").addEventListener("click", () => startWork());
  $("#mic-retry").addEventListener("click", () => openMicrophone($("#mic").value || undefined));
  $("#mic").addEventListener("change", () => openMicrophone($("#mic").value));
  $("#ready").addEventListener("click", ready);
  $("#pause").addEventListener("click", pause);
  $("#hangup").addEventListener("click", hangup);
  $("#hold").addEventListener("click", toggleHold);
  $("#mute").addEventListener("click", toggleMute);
  $("#logout").addEventListener("click", logout);
  $("#preview-dial").addEventListener("click", previewDial);
  $("#preview-skip").addEventListener("click", previewSkip);
  document.addEventListener("keydown", onKey);
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || $("#work-view").hidden) return;
  const tag = event.target?.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
  const key = event.key.toLowerCase();
  const state = desk.agent?.state;
  const actions = {
    r: ready,
    p: pause,
    h: hangup,
    o: toggleHold,
    m: toggleMute,
    d: previewDial,
    s: previewSkip,
  };
  if (actions[key]) {
    event.preventDefault();
    actions[key]();
  } else if (state === "wrap_up" && /^[1-6]$/.test(key)) {
    event.preventDefault();
    dispose(KINDS[Number(key) - 1][0]);
  }
}

// For the tests and for troubleshooting: what the page hears, recorded at 8 kHz as 16-bit
// samples by an audio worklet (off the main thread, so a busy page drops nothing), from
// `startRecording()` until `stopRecording()`.
let recording = null;
desk.startRecording = async () => {
  const context = new AudioContext({ sampleRate: 8000 });
  await context.audioWorklet.addModule("/agent/recorder.js");
  const source = context.createMediaStreamSource(desk.remote);
  const node = new AudioWorkletNode(context, "desk-recorder");
  const samples = [];
  node.port.onmessage = (event) => {
    for (const x of event.data) samples.push(Math.max(-32768, Math.min(32767, Math.round(x * 32768))));
  };
  source.connect(node);
  await context.resume();
  recording = { context, source, node, samples };
};
desk.stopRecording = () => {
  if (!recording) return [];
  const { context, source, node, samples } = recording;
  source.disconnect();
  node.port.onmessage = null;
  context.close();
  recording = null;
  return samples;
};

start();
