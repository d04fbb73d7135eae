// The wall's alarms panel (templates/wall/alarms.html): open alarms (critical first, then the
// newest) and those acknowledged in the last hours, each acknowledged with a note.
//
// A stream event about an alarm reloads the list at once (one reload at a time, a burst is one
// more reload): the event names the alarm, the list says everything about it. Rows are kept
// by alarm id and replaced only when the alarm changed, so a note being written survives the
// arrival of other alarms, and a new alarm is one new row.
import { api, esc, fill, fillText, problemText, stamp, throttled, wordsOf } from "./common.js";

const ALARM_KINDS = new Set(["alarm_raised", "alarm_repeated", "alarm_acknowledged", "alarm_cleared"]);
const ICONS = { critical: "‼", warning: "⚠", info: "ℹ" };
const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };
// Raised from the plan, not by any agent or device (docs/alarms.md).
const PLAN_ALARMS = new Set(["custody_red", "custody_black", "plan_violation", "van_late"]);
const ACKED_HOURS = 12; // acknowledged alarms raised this long ago or less stay on the wall
const ACKED_SHOWN = 30;
const PAGE = 1000;
const MAX_PAGES = 5;

const panel = document.getElementById("alarms-panel");
const list = document.getElementById("alarms-list");
const counter = document.getElementById("alarms-count");
const formTemplate = document.getElementById("alarm-ack-form");
const soundButton = document.getElementById("alarms-sound");
const words = wordsOf("alarms-words");
const zone = panel?.dataset.timezone || "UTC";

/** @type {{alarms: any[], failed: boolean}} */
const state = { alarms: [], failed: false };
const seen = new Set();
let loaded = false;

/** The icon of a severity (shared with the custody panel). */
export function alarmIcon(severity) {
  return `<span class="alarm-icon" aria-hidden="true">${ICONS[severity] || "•"}</span>`;
}

/** An alarm kind in words (shared with the custody panel). */
export function kindWords(kind) {
  return (words.kinds || {})[kind] || kind;
}

async function pages(query) {
  const items = [];
  let cursor = "";
  for (let n = 0; n < MAX_PAGES; n += 1) {
    const answer = await api(`/api/v1/alarms?${query}&limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`);
    if (!answer.ok) throw new Error(`alarms: ${answer.status}`);
    items.push(...answer.data.items);
    if (!answer.data.next_cursor) break;
    cursor = answer.data.next_cursor;
  }
  return items;
}

async function load() {
  const since = new Date(Date.now() - ACKED_HOURS * 3_600_000).toISOString();
  try {
    const [open, acked] = await Promise.all([
      pages("state=open"),
      pages(`state=acknowledged&since=${encodeURIComponent(since)}`),
    ]);
    state.alarms = [...open, ...acked];
    state.failed = false;
  } catch (error) {
    state.failed = true;
    console.error(error);
  }
  const fresh = state.alarms.filter((alarm) => alarm.state === "open" && !seen.has(alarm.id));
  for (const alarm of state.alarms) seen.add(alarm.id);
  if (loaded && fresh.length) beep();
  loaded = true;
  draw();
}

const reload = throttled(load, 0);

function ordered() {
  const open = state.alarms
    .filter((alarm) => alarm.state === "open")
    .sort((a, b) => (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3) || b.id - a.id);
  const acked = state.alarms
    .filter((alarm) => alarm.state === "acknowledged")
    .sort((a, b) => String(b.acked_at).localeCompare(String(a.acked_at)) || b.id - a.id)
    .slice(0, ACKED_SHOWN);
  return [...open, ...acked];
}

function who(actor) {
  const [role, ...name] = String(actor || "").split(":");
  if (!name.length) return esc(actor);
  return `${esc(name.join(":"))} (${esc((words.roles || {})[role] || role)})`;
}

function source(alarm) {
  const parts = [];
  if (alarm.band) parts.push(fill(words.source_band, { band: alarm.band }));
  else if (alarm.device) parts.push(fill(words.source_device, { device: alarm.device }));
  if (alarm.agent) parts.push(fill(words.source_agent, { agent: alarm.agent }));
  if (PLAN_ALARMS.has(alarm.kind)) parts.push(esc(words.source_plan));
  if (alarm.person) parts.push(fill(words.person, { person: alarm.person }));
  if (alarm.booking) parts.push(fill(words.booking, { booking: alarm.booking }));
  if (alarm.station) parts.push(fill(words.station, { station: alarm.station }));
  return parts.join(" · ");
}

function rowHtml(alarm) {
  const severity = (words.severities || {})[alarm.severity] || alarm.severity;
  const status = (words.states || {})[alarm.state] || alarm.state;
  const acked = alarm.acked_by
    ? `<p class="alarm-acked">✓ ${fill(words.acked, { who: "\u0000", time: stamp(alarm.acked_at, zone) }).replace("\u0000", who(alarm.acked_by))}` +
      `${alarm.ack_note ? ` — <q>${esc(alarm.ack_note)}</q>` : ""}</p>`
    : "";
  const button = alarm.state === "open"
    ? `<button type="button" class="ack-open" aria-label="${esc(words.acknowledge)} ${esc(kindWords(alarm.kind))}">${esc(words.acknowledge)}</button>`
    : "";
  return (
    `<div class="alarm-head"><span class="alarm-severity">${alarmIcon(alarm.severity)} ${esc(severity)}</span> ` +
    `<strong class="alarm-kind">${esc(kindWords(alarm.kind))}</strong>` +
    `${alarm.count > 1 ? ` <span class="alarm-count">×${esc(alarm.count)} (${fill(words.count, { count: alarm.count })})</span>` : ""}` +
    ` <span class="alarm-state">${esc(status)}</span></div>` +
    `<p class="alarm-source">${source(alarm)}</p>` +
    `<p class="alarm-time">${fill(words.raised, { time: stamp(alarm.raised_at, zone, true) })}</p>` +
    acked +
    button
  );
}

function signature(alarm) {
  return [alarm.state, alarm.count, alarm.acked_at, alarm.severity].join("|");
}

function draw() {
  if (!list) return;
  const alarms = ordered();
  const rows = new Map([...list.querySelectorAll("li[data-alarm-id]")].map((li) => [li.dataset.alarmId, li]));
  const wanted = [];
  for (const alarm of alarms) {
    const id = String(alarm.id);
    let li = rows.get(id);
    const sig = signature(alarm);
    if (!li || li.dataset.sig !== sig) {
      const fresh = document.createElement("li");
      fresh.dataset.alarmId = id;
      fresh.dataset.kind = alarm.kind;
      fresh.dataset.state = alarm.state;
      fresh.dataset.sig = sig;
      fresh.className = `alarm sev-${alarm.severity} state-${alarm.state}`;
      fresh.innerHTML = rowHtml(alarm);
      // A note being written stays while the alarm is still open.
      const form = li?.querySelector(".ack-form");
      if (form && alarm.state === "open") {
        fresh.querySelector(".ack-open")?.setAttribute("hidden", "");
        fresh.append(form);
      }
      li = fresh;
    }
    wanted.push(li);
  }
  // Put the rows in order, touching only those that moved (a new alarm: one insertion).
  let cursor = list.firstElementChild;
  for (const li of wanted) {
    if (li === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      list.insertBefore(li, cursor);
    }
  }
  while (cursor) {
    const next = cursor.nextElementSibling;
    cursor.remove();
    cursor = next;
  }
  const open = state.alarms.filter((alarm) => alarm.state === "open").length;
  if (counter) counter.textContent = fillText(words.open_count, { count: open });
  let note = panel?.querySelector(".alarms-empty");
  if (!alarms.length || state.failed) {
    if (!note) {
      note = document.createElement("p");
      note.className = "panel-note alarms-empty";
      list.after(note);
    }
    note.textContent = state.failed ? words.load_failed : words.none;
  } else {
    note?.remove();
  }
}

list?.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  const li = target?.closest("li[data-alarm-id]");
  if (!li) return;
  if (target.closest(".ack-open")) {
    const form = formTemplate.content.firstElementChild.cloneNode(true);
    target.closest(".ack-open").setAttribute("hidden", "");
    li.append(form);
    form.querySelector("textarea").focus();
  } else if (target.closest(".ack-cancel")) {
    li.querySelector(".ack-form")?.remove();
    li.querySelector(".ack-open")?.removeAttribute("hidden");
    li.querySelector(".ack-open")?.focus();
  }
});

list?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const li = form.closest("li[data-alarm-id]");
  const field = form.querySelector("textarea");
  const error = form.querySelector(".ack-error");
  const note = field.value.trim();
  if (!note) {
    error.textContent = words.note_needed;
    field.focus();
    return;
  }
  form.querySelector(".ack-submit").disabled = true;
  const answer = await api(`/api/v1/alarms/${encodeURIComponent(li.dataset.alarmId)}/ack`, {
    method: "POST",
    body: { note },
  });
  if (answer.ok || answer.status === 409) {
    // 409: someone else answered it first; the reload shows who.
    if (!answer.ok) error.textContent = fillText(words.failed, { reason: problemText(answer) });
    else form.remove();
    reload.request();
  } else {
    form.querySelector(".ack-submit").disabled = false;
    error.textContent = fillText(words.failed, { reason: problemText(answer) });
  }
});

// An optional beep on a new alarm: off until the duty officer turns it on (the browser allows
// sound only after a click anyway). A short tone made here: no sound file, nothing fetched.
let audio = null;
let soundOn = false;
try {
  soundOn = window.localStorage.getItem("precinct.wall.sound") === "on";
} catch {
  soundOn = false;
}
function showSound() {
  soundButton?.setAttribute("aria-pressed", String(soundOn));
}
function beep() {
  if (!soundOn) return;
  try {
    audio ??= new AudioContext();
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.3);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.3);
  } catch (error) {
    console.error(error);
  }
}
soundButton?.addEventListener("click", () => {
  soundOn = !soundOn;
  try {
    window.localStorage.setItem("precinct.wall.sound", soundOn ? "on" : "off");
  } catch {
    // a wall without storage just forgets the choice
  }
  showSound();
  if (soundOn) beep();
});
showSound();

/** Reload the panel's state over REST. */
export async function snapshot() {
  await reload.now();
}

/** Take a batch of stream events. @param {Array<{kind: string, body: object}>} events */
export function apply(events) {
  if (events.some((event) => ALARM_KINDS.has(event.kind))) reload.request();
}
