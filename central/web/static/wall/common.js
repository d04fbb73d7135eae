// What the rooms, custody and alarms panels share: times in the centre's zone, the API with the
// session cookie and the CSRF header, escaping, and a throttled reload. No text lives here: the
// words come from each panel's template.

/** Escape text for innerHTML (the API's values are data, never markup). */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Fill "{name}" placeholders of a translated template with escaped values. */
export function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (whole, key) => (key in values ? esc(values[key]) : whole));
}

/** The same for textContent (no escaping: the browser shows it as text). */
export function fillText(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

/** The words a panel's template passed in a JSON block. */
export function wordsOf(id) {
  const block = document.getElementById(id);
  try {
    return block ? JSON.parse(block.textContent || "{}") : {};
  } catch {
    return {};
  }
}

const formats = new Map();
function formatter(zone, options) {
  const key = `${zone}|${JSON.stringify(options)}`;
  let found = formats.get(key);
  if (!found) {
    found = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", ...options });
    formats.set(key, found);
  }
  return found;
}

function parts(date, zone) {
  const out = {};
  for (const part of formatter(zone, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(date)) {
    out[part.type] = part.value;
  }
  return out;
}

/** The centre's day of ``date``: "YYYY-MM-DD". */
export function localDay(date, zone) {
  const p = parts(date, zone);
  return `${p.year}-${p.month}-${p.day}`;
}

/** "HH:MM" (or "HH:MM:SS") in the centre's zone; "" for no time. */
export function clock(value, zone, seconds = false) {
  if (!value) return "";
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const p = parts(date, zone);
  return seconds ? `${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}`;
}

/** "YYYY-MM-DD HH:MM" in the centre's zone, the day left out when it is today. */
export function stamp(value, zone, seconds = false) {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const time = clock(date, zone, seconds);
  return localDay(date, zone) === localDay(new Date(), zone) ? time : `${localDay(date, zone)} ${time}`;
}

/** The zone's offset from UTC at ``date``, in milliseconds. */
function offsetMs(date, zone) {
  const p = parts(date, zone);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

/** The instant (ms) a centre's day "YYYY-MM-DD" starts. */
export function dayStart(day, zone) {
  const [y, m, d] = day.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  // Twice: the offset at the guess may differ from the offset at the day's start (DST).
  const first = guess - offsetMs(new Date(guess), zone);
  return guess - offsetMs(new Date(first), zone);
}

/** The API with the session cookie; non-GET requests carry the page's CSRF token. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await answer.json();
  } catch {
    data = null;
  }
  return { ok: answer.ok, status: answer.status, data };
}

/** A problem's words for a person: its detail, or the first field error. */
export function problemText(answer) {
  const data = answer.data;
  if (data && Array.isArray(data.errors) && data.errors.length) return String(data.errors[0].message ?? "");
  if (data && data.detail) return String(data.detail);
  return `HTTP ${answer.status}`;
}

/**
 * A reload that runs at most once per ``gapMs`` and never twice at once: a burst of events
 * makes one reload now (when the last is ``gapMs`` old) and at most one more after it.
 */
export function throttled(load, gapMs) {
  let running = null;
  let again = false;
  let timer = 0;
  let last = -Infinity;
  const run = async () => {
    timer = 0;
    if (running) {
      again = true;
      return running;
    }
    last = performance.now();
    running = (async () => {
      try {
        await load();
      } catch (error) {
        console.error(error);
      } finally {
        running = null;
      }
    })();
    await running;
    if (again) {
      again = false;
      request();
    }
    return undefined;
  };
  const request = () => {
    if (running) {
      again = true;
      return;
    }
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + gapMs - performance.now()));
  };
  return { request, now: run };
}

/** Call ``tick`` at the start of every minute of the clock. */
export function everyMinute(tick) {
  const arm = () => setTimeout(() => {
    tick();
    arm();
  }, 60_000 - (Date.now() % 60_000) + 50);
  arm();
}
