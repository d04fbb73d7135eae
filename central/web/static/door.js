// The fast-lane door (templates/door.html): the keyboard moves to the next step, the arrival →
// entry timer counts, and the stream keeps the arrivals list and the open card's people fresh.
//
// The card and the list are server-rendered fragments; this module only asks for them again.
// It writes no words: every text comes from the templates (the live state's labels are data
// attributes of #live-state).
import { connectLive } from "./live.js";

const card = document.getElementById("card");
const code = document.getElementById("code");
const stateLabel = document.getElementById("live-state");

// Events after which the arrivals list may have changed, and those that change what an open
// card shows of its people (alarm events name the alarm, not the booking: any of them counts).
const ARRIVAL_KINDS = new Set(["van_position", "van_late", "arrived", "plan_changed", "cancelled",
  "no_show"]);
const CARD_KINDS = new Set(["alarm_raised", "alarm_repeated", "alarm_acknowledged", "alarm_cleared",
  "band_bound", "band_unbound", "person_room", "custody_level", "plan_changed", "unassigned",
  "person_exited", "arrived"]);
// Vans report every second each: the list is asked for at most this often.
const ARRIVALS_EVERY_MS = 2000;
const CARD_EVERY_MS = 1000;

// htmx does not swap 4xx answers by default; the door's refusals are the card again, with the
// reason beside the field that caused it.
const SHOWN = new Set([404, 409, 422, 429]);
document.body.addEventListener("htmx:beforeSwap", (event) => {
  if (SHOWN.has(event.detail.xhr.status)) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

/** Put the keyboard on the card's next step, or back on the code field for the next unit. */
function focusNext() {
  const next = card.querySelector("[data-focus]");
  const target = next ?? code;
  target.focus();
  if (target instanceof HTMLInputElement) target.select();
}

document.body.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.target !== card) return;
  const path = event.detail.pathInfo?.requestPath ?? "";
  if (path.endsWith("/persons")) return; // a live refresh: leave the keyboard where it is
  startTimer();
  focusNext();
});

// --- the arrival → entry timer ------------------------------------------------------------
// The server gives the seconds since arrival when it drew the card; the page counts on with
// its monotonic clock, so a desk PC whose wall clock is off still shows the right time.
let timer = null;
let base = 0;
let since = 0;

function format(seconds) {
  const s = String(seconds % 60).padStart(2, "0");
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${String(m).padStart(2, "0")}:${s}`;
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}`;
}

function tick() {
  if (!timer || !timer.isConnected) return;
  const seconds = base + Math.floor((performance.now() - since) / 1000);
  const text = format(seconds);
  if (timer.textContent !== text) timer.textContent = text;
}

function startTimer() {
  timer = document.getElementById("timer");
  base = Number(timer?.dataset.elapsed) || 0;
  since = performance.now();
  tick();
}

setInterval(tick, 250);
startTimer();
if (card.querySelector("#booking-card")) focusNext();

// --- live ---------------------------------------------------------------------------------
/** Run `job` at most once per `every` ms, and once more after the last call. */
function throttled(job, every) {
  let last = -Infinity;
  let waiting = 0;
  return () => {
    if (waiting) return;
    waiting = setTimeout(async () => {
      last = performance.now();
      try {
        await job();
      } finally {
        waiting = 0;
      }
    }, Math.max(0, last + every - performance.now()));
  };
}

function reloadArrivals() {
  return window.htmx.ajax("GET", "/door/arrivals", { target: "#arrivals", swap: "innerHTML" });
}

function reloadCard() {
  const booking = card.querySelector("#booking-card")?.dataset.booking;
  if (!booking) return Promise.resolve();
  // Out of band only: each person's clock, band and alarms; the fields keep what is typed.
  return window.htmx.ajax("GET", `/door/bookings/${booking}/persons`, { target: "#card", swap: "none" });
}

const arrivalsSoon = throttled(reloadArrivals, ARRIVALS_EVERY_MS);
const cardSoon = throttled(reloadCard, CARD_EVERY_MS);

connectLive({
  snapshot: () => Promise.all([reloadArrivals(), reloadCard()]).then(() => undefined),
  apply: (events) => {
    if (events.some((e) => ARRIVAL_KINDS.has(e.kind))) arrivalsSoon();
    if (events.some((e) => CARD_KINDS.has(e.kind))) cardSoon();
  },
  status: (state) => {
    if (stateLabel) {
      stateLabel.dataset.state = state;
      const key = `label${state[0].toUpperCase()}${state.slice(1)}`;
      stateLabel.textContent = stateLabel.dataset[key] ?? state;
    }
    if (state === "closed") window.location.assign("/signin");
  },
});
