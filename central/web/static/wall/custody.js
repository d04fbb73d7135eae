// The wall's custody panel (templates/wall/custody.html): every person inside, the nearest legal
// limit first. Each row says the clock's level in words with an icon (the colour only repeats
// it), the time left (counted down here every minute from the deadline), the limit and the
// projected end, the room, the band's heart rate and battery, and the person's open alarms.
import { api, clock, esc, everyMinute, fill, fillText, throttled, wordsOf } from "./common.js";
import { alarmIcon, kindWords } from "./alarms.js";

const LEVEL_ICONS = { green: "✓", yellow: "◔", orange: "◑", red: "⚠", black: "✖" };
const KINDS = new Set([
  "room_state", "custody_level", "person_room", "band_bound", "band_unbound", "person_exited", "arrived",
  "plan_changed", "unassigned", "cancelled", "no_show",
  "alarm_raised", "alarm_repeated", "alarm_acknowledged", "alarm_cleared",
]);

const panel = document.getElementById("custody-panel");
const body = document.getElementById("custody-rows");
const count = document.getElementById("custody-count");
const words = wordsOf("custody-words");
const zone = panel?.dataset.timezone || "UTC";
const seesPersons = panel?.dataset.seesPersons === "true";
const refreshMs = Math.max(500, Number(panel?.dataset.refreshSeconds || 30) * 1000);

/** @type {{persons: any[], failed: boolean}} */
const state = { persons: [], failed: false };

async function load() {
  if (!seesPersons) return;
  const answer = await api("/api/v1/persons?in_area=true");
  state.failed = !answer.ok;
  if (answer.ok) state.persons = answer.data;
  draw();
}

const reload = throttled(load, 1000);

function minutesLeft(person, now) {
  const deadline = person.custody ? Date.parse(person.custody.deadline) : NaN;
  return Number.isNaN(deadline) ? Infinity : Math.floor((deadline - now) / 60_000);
}

function timeLeft(minutes) {
  const size = Math.abs(minutes);
  const values = { h: Math.floor(size / 60), m: String(size % 60).padStart(2, "0") };
  return fill(minutes >= 0 ? words.left : words.over, values);
}

function row(person, now) {
  const custody = person.custody;
  const level = custody ? custody.level : "none";
  const levelWords = custody ? (words.levels || {})[level] || level : words.no_limit;
  const icon = LEVEL_ICONS[level] || "–";
  const minutes = minutesLeft(person, now);
  const band = person.band;
  const session = person.planned_session;
  const room = band && band.room
    ? fill(words.heard_in, { room: band.room })
    : band ? esc(words.not_heard) : "";
  const planned = session ? fill(words.planned_in, { room: session.room }) : "";
  const bandText = band
    ? [
        `<span class="band-id">${esc(band.band)}</span>`,
        band.heart_rate != null ? `<span class="band-hr">♥ ${fill(words.heart_rate, { bpm: band.heart_rate })}</span>` : "",
        band.battery != null ? `<span class="band-battery">▮ ${fill(words.battery, { percent: band.battery })}</span>` : "",
        band.last_heard ? `<span class="band-heard">${esc(clock(band.last_heard, zone))}</span>` : "",
      ].join(" ")
    : esc(words.no_band);
  const alarms = (person.alarms || []).map(
    (alarm) => `<li class="person-alarm sev-${esc(alarm.severity)}" data-kind="${esc(alarm.kind)}">` +
      `${alarmIcon(alarm.severity)} ${esc(kindWords(alarm.kind))}${alarm.count > 1 ? ` ×${alarm.count}` : ""}</li>`,
  );
  const role = (words.roles || {})[person.role] || person.role;
  return (
    `<tr class="custody-row level-${esc(level)}" data-booking="${esc(person.booking)}" data-person="${esc(person.person)}" data-level="${esc(level)}">` +
    `<td class="clock-level"><span class="level-icon" aria-hidden="true">${icon}</span> ${esc(levelWords)}</td>` +
    `<td class="who"><strong>${esc(person.person)}</strong> ${esc(role)}${person.minor ? ` · ${esc(words.minor)}` : ""}` +
    `<br><small>${esc(person.booking)} · ${esc(person.station)}</small>` +
    `${alarms.length ? `<ul class="alarms">${alarms.join("")}</ul>` : ""}</td>` +
    `<td><span class="time-left" data-deadline="${esc(custody ? custody.deadline : "")}">${custody ? timeLeft(minutes) : "–"}</span>` +
    `${custody ? `<br><small class="limit">${fill(words.limit_at, { time: clock(custody.deadline, zone) })}</small>` : ""}` +
    `${custody && custody.projected_end ? `<br><small class="projected">${fill(words.projected, { time: clock(custody.projected_end, zone) })}</small>` : ""}</td>` +
    `<td><span class="room">${room}</span>${planned ? `<small class="planned">${planned}</small>` : ""}` +
    `<span class="band">${bandText}</span></td>` +
    "</tr>"
  );
}

function draw() {
  if (!body) return;
  const now = Date.now();
  const persons = [...state.persons].sort(
    (a, b) => minutesLeft(a, now) - minutesLeft(b, now) || a.person.localeCompare(b.person),
  );
  body.innerHTML = persons.length
    ? persons.map((person) => row(person, now)).join("")
    : `<tr><td colspan="4" class="panel-note">${esc(state.failed ? words.load_failed : words.nobody)}</td></tr>`;
  if (count) count.textContent = fillText(words.count, { count: persons.length });
}

/** Reload the panel's state over REST. */
export async function snapshot() {
  await reload.now();
}

/** Take a batch of stream events. @param {Array<{kind: string, body: object}>} events */
export function apply(events) {
  if (seesPersons && events.some((event) => KINDS.has(event.kind))) reload.request();
}

if (seesPersons) {
  // The time left counts down here; the level comes from the centre (custody_level events).
  everyMinute(draw);
  // Entering the area is told to no one by the feed: a person walking in shows at the refresh.
  setInterval(() => reload.request(), refreshMs);
}
