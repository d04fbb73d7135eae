// The wall's rooms panel (templates/wall/rooms.html): today's timeline per room in the centre's
// zone, planned bars against actual ones, a now-line moved every minute, and a room's
// out-of-order toggle with a reason.
//
// The whole timeline is built as one HTML string and set once (a 650-person day is a few
// thousand bars: one innerHTML, not thousands of DOM calls). Bars are positioned in percent of
// the hours shown, so the browser lays them out at any width (1366 to 1920 px).
import { api, clock, dayStart, esc, everyMinute, fillText, localDay, problemText, throttled, wordsOf } from "./common.js";

const HOUR = 3_600_000;
// Hours always shown around the working day, widened to what the day holds and to now.
const FIRST_HOUR = 7;
const LAST_HOUR = 22;
const MAX_LANES = 8; // overlapping bars in one room stack into lanes, at most this many
const PLAN_KINDS = new Set(["plan_changed", "unassigned", "cancelled", "no_show", "arrived", "person_exited"]);

const panel = document.getElementById("rooms-panel");
const timeline = document.getElementById("rooms-timeline");
const words = wordsOf("rooms-words");
const zone = panel?.dataset.timezone || "UTC";
const canEdit = panel?.dataset.canEdit === "true";
const seesPersons = panel?.dataset.seesPersons === "true";
const refreshMs = Math.max(500, Number(panel?.dataset.refreshSeconds || 30) * 1000);

/** @type {{rooms: any[], entries: any[], reasons: Map<string, string>, day: string, failed: boolean}} */
const state = { rooms: [], entries: [], reasons: new Map(), day: "", failed: false };

async function loadRooms() {
  const answer = await api("/api/v1/rooms");
  if (!answer.ok) throw new Error(`rooms: ${answer.status}`);
  const rooms = answer.data;
  // The list leaves out each room's history: the reason of a room out of order is in its own.
  const reasons = new Map();
  await Promise.all(
    rooms
      .filter((room) => room.state === "out_of_order")
      .map(async (room) => {
        const one = await api(`/api/v1/rooms/${encodeURIComponent(room.id)}`);
        const history = (one.ok && one.data.history) || [];
        const last = [...history].reverse().find((change) => change.after === "out_of_order");
        if (last) reasons.set(room.id, last.reason || "");
      }),
  );
  // I-2 before I-10: rooms in the order people count them.
  state.rooms = rooms.sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
  state.reasons = reasons;
}

async function loadSchedule() {
  state.day = localDay(new Date(), zone);
  if (!seesPersons) return;
  const answer = await api(`/api/v1/schedule?date=${state.day}`);
  state.failed = !answer.ok;
  if (answer.ok) state.entries = answer.data;
}

const scheduleReload = throttled(async () => {
  await loadSchedule();
  draw();
}, 1000);
const fullReload = throttled(async () => {
  await Promise.all([loadRooms(), loadSchedule()]);
  draw();
}, 1000);

/** Greedy lanes: each bar in the first lane whose last bar ended before it starts. */
function lanesOf(bars) {
  const ends = [];
  for (const bar of bars) {
    let lane = ends.findIndex((end) => end <= bar.from);
    if (lane < 0) lane = ends.length < MAX_LANES ? ends.length : MAX_LANES - 1;
    ends[lane] = Math.max(ends[lane] ?? -Infinity, bar.to);
    bar.lane = lane;
  }
  return Math.max(1, ends.length);
}

function span(entries, start, now) {
  let from = start + FIRST_HOUR * HOUR;
  let to = start + LAST_HOUR * HOUR;
  const dayEnd = start + 24 * HOUR;
  for (const entry of entries) {
    from = Math.min(from, Date.parse(entry.actual_start || entry.start));
    to = Math.max(to, Date.parse(entry.actual_end || entry.end));
  }
  if (now >= start && now < dayEnd) {
    from = Math.min(from, now - HOUR);
    to = Math.max(to, now + HOUR);
  }
  from = Math.max(start, Math.floor((from - start) / HOUR) * HOUR + start);
  to = Math.min(dayEnd, Math.ceil((to - start) / HOUR) * HOUR + start);
  return [from, Math.max(to, from + HOUR)];
}

function describe(entry, label, from, to) {
  return [
    label,
    `${words.person || ""} ${entry.person}`,
    `${words.booking || ""} ${entry.booking}`,
    `${words.station || ""} ${entry.station}`,
    `${clock(from, zone)}–${to ? clock(to, zone) : words.running || ""}`,
  ].join(" · ");
}

function draw() {
  if (!timeline) return;
  const started = performance.now();
  const now = Date.now();
  const start = dayStart(state.day || localDay(new Date(now), zone), zone);
  const [from, to] = span(state.entries, start, now);
  const width = to - from;
  const pct = (t) => (((Math.min(Math.max(t, from), to) - from) / width) * 100).toFixed(3);
  const wide = (a, b) => ((Math.max(0, Math.min(b, to) - Math.max(a, from)) / width) * 100).toFixed(3);

  const byRoom = new Map(state.rooms.map((room) => [room.id, []]));
  for (const entry of state.entries) {
    if (!byRoom.has(entry.room)) byRoom.set(entry.room, []);
    byRoom.get(entry.room).push({ entry, from: Date.parse(entry.start), to: Date.parse(entry.end) });
  }
  const known = new Map(state.rooms.map((room) => [room.id, room]));
  const html = ['<div class="tl-body">'];
  // The hours across the top.
  html.push('<div class="tl-row tl-hours" aria-hidden="true"><div class="tl-label"></div><div class="tl-track">');
  for (let t = from; t <= to; t += HOUR) {
    html.push(`<span class="tl-hour" style="left:${pct(t)}%">${clock(new Date(t), zone)}</span>`);
  }
  html.push("</div></div>");
  if (byRoom.size === 0) html.push(`<p class="panel-note">${esc(words.no_rooms)}</p>`);
  for (const [roomId, bars] of byRoom) {
    const room = known.get(roomId) || { id: roomId, type: "", state: "in_service" };
    bars.sort((a, b) => a.from - b.from);
    const lanes = lanesOf(bars);
    const session = room.type !== "waiting";
    const laneHeight = session ? 36 : 20;
    const out = room.state === "out_of_order";
    const typeWords = (words.room_types || {})[room.type] || room.type;
    html.push(
      `<div class="tl-row${out ? " room-out" : ""}" data-room="${esc(room.id)}" data-state="${esc(room.state)}">`,
      `<div class="tl-label"><span class="room-id">${esc(room.id)}</span> <span class="room-type">${esc(typeWords)}</span>`,
    );
    if (out) {
      html.push(
        `<span class="room-state" data-reason="${esc(state.reasons.get(room.id) || "")}">⚠ ${esc(words.out_of_order)}`,
        `${state.reasons.get(room.id) ? `: ${esc(state.reasons.get(room.id))}` : ""}</span>`,
      );
    } else if (room.state === "cleaning") {
      html.push(`<span class="room-state">◌ ${esc(words.cleaning)}</span>`);
    }
    if (canEdit && known.has(roomId)) {
      html.push(
        out
          ? `<button type="button" class="room-toggle" data-room="${esc(room.id)}" data-to="in_service">✓ ${esc(words.put_back)}</button>`
          : `<button type="button" class="room-toggle" data-room="${esc(room.id)}" data-to="out_of_order">⚠ ${esc(words.take_out)}</button>`,
      );
    }
    html.push(`</div><div class="tl-track" style="height:${lanes * laneHeight + 4}px">`);
    if (out) html.push(`<div class="tl-out" aria-hidden="true"></div>`);
    for (const bar of bars) {
      const { entry } = bar;
      const top = bar.lane * laneHeight + 2;
      const kind = entry.kind === "waiting" ? "bar-waiting" : "bar-planned";
      const planned = entry.kind === "waiting" ? words.waiting : words.planned;
      const title = esc(describe(entry, planned, bar.from, bar.to));
      html.push(
        `<div class="bar ${kind}" data-booking="${esc(entry.booking)}" data-person="${esc(entry.person)}" `,
        `style="left:${pct(bar.from)}%;width:${wide(bar.from, bar.to)}%;top:${top}px" title="${title}">`,
        `<span>${esc(entry.person)}</span></div>`,
      );
      if (entry.kind === "session" && entry.actual_start) {
        const a = Date.parse(entry.actual_start);
        const b = entry.actual_end ? Date.parse(entry.actual_end) : now;
        const running = entry.actual_end ? "" : " bar-running";
        html.push(
          `<div class="bar bar-actual${running}" data-booking="${esc(entry.booking)}" data-person="${esc(entry.person)}" `,
          `style="left:${pct(a)}%;width:${wide(a, b)}%;top:${top + 17}px" `,
          `title="${esc(describe(entry, words.actual, a, entry.actual_end ? b : null))}">`,
          `<span>▶ ${esc(words.actual)} ${esc(entry.person)}</span></div>`,
        );
      }
    }
    html.push("</div></div>");
  }
  if (seesPersons && state.entries.length === 0 && byRoom.size > 0) {
    html.push(`<p class="panel-note">${esc(state.failed ? words.load_failed : words.no_entries)}</p>`);
  }
  const nowShown = now >= from && now <= to;
  html.push(
    `<div class="tl-now-layer" aria-hidden="true"><div class="tl-now" id="rooms-now" style="left:${pct(now)}%${nowShown ? "" : ";display:none"}">`,
    `<span>${esc(words.now)} ${clock(new Date(now), zone)}</span></div></div></div>`,
  );
  timeline.innerHTML = html.join("");
  const dayLabel = document.getElementById("rooms-day");
  if (dayLabel) {
    dayLabel.textContent = `${fillText(words.day, { day: state.day })} · ${fillText(words.rows, {
      rooms: byRoom.size,
      entries: state.entries.length,
    })}`;
  }
  // For the wall's own measurements (docs/web.md): when the timeline was last drawn, in the
  // page's clock (milliseconds since navigation), and how long building it took.
  timeline.getBoundingClientRect(); // the layout, inside the measured time
  const ended = performance.now();
  timeline.dataset.drawnAt = ended.toFixed(1);
  timeline.dataset.renderMs = (ended - started).toFixed(1);
  timeline.dataset.entries = String(state.entries.length);
}

// The out-of-order form: one dialog for every room.
const dialog = document.getElementById("room-form-dialog");
const form = document.getElementById("room-form");
const reason = document.getElementById("room-reason");
const formError = document.getElementById("room-form-error");
let formRoom = "";

async function setState(roomId, to, why) {
  const body = { state: to };
  if (why) body.reason = why;
  const answer = await api(`/api/v1/rooms/${encodeURIComponent(roomId)}`, { method: "PATCH", body });
  if (answer.ok) fullReload.request();
  return answer;
}

timeline?.addEventListener("click", async (event) => {
  const button = event.target instanceof Element ? event.target.closest(".room-toggle") : null;
  if (!button) return;
  const roomId = button.dataset.room || "";
  if (button.dataset.to === "out_of_order") {
    formRoom = roomId;
    document.getElementById("room-form-title").textContent = fillText(words.form_title, { room: roomId });
    reason.value = "";
    formError.textContent = "";
    dialog.showModal();
    reason.focus();
    return;
  }
  button.disabled = true;
  const answer = await setState(roomId, "in_service", "");
  if (!answer.ok) {
    button.disabled = false;
    button.title = fillText(words.failed, { reason: problemText(answer) });
  }
});

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const why = reason.value.trim();
  if (!why) {
    formError.textContent = words.reason_needed;
    reason.focus();
    return;
  }
  const answer = await setState(formRoom, "out_of_order", why);
  if (answer.ok) {
    dialog.close();
  } else {
    formError.textContent = fillText(words.failed, { reason: problemText(answer) });
  }
});
document.getElementById("room-form-cancel")?.addEventListener("click", () => dialog.close());

/** Reload the panel's state over REST. */
export async function snapshot() {
  await fullReload.now();
}

/** Take a batch of stream events. @param {Array<{kind: string, body: object}>} events */
export function apply(events) {
  if (events.some((event) => event.kind === "room_state")) {
    fullReload.request(); // a room out of order also moves the persons planned into it
  } else if (seesPersons && events.some((event) => PLAN_KINDS.has(event.kind))) {
    scheduleReload.request();
  }
}

// The now-line and the running sessions move every minute; the day turns at midnight; and a
// new booking (told to no one by the feed) shows at the next refresh.
everyMinute(() => (localDay(new Date(), zone) !== state.day ? fullReload.request() : draw()));
setInterval(() => scheduleReload.request(), refreshMs);
