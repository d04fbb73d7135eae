// My bookings, live: its own connection to the stream (live.js). When the centre changes a
// shown booking (a re-plan, a late van, an arrival, a cancellation, a no-show) the booking's
// card is reloaded from the server and what moved is shown on it in words (old -> new), until
// the officer marks it seen. Every word shown comes from the page (#my-bookings-text and the
// #change-note-template), none is written here.
import { connectLive } from "./live.js";

const WATCHED = new Set(["plan_changed", "unassigned", "cancelled", "no_show", "van_late", "arrived"]);
const list = /** @type {HTMLElement} */ (document.getElementById("my-bookings"));
const words = JSON.parse(document.getElementById("my-bookings-text")?.textContent ?? "{}");
const noteTemplate = /** @type {HTMLTemplateElement} */ (document.getElementById("change-note-template"));
const stateLabel = document.getElementById("live-state");
const clock = new Intl.DateTimeFormat("zh-CN", {
  timeZone: list.dataset.timezone || "UTC", hour: "2-digit", minute: "2-digit", hour12: false,
});
/** One reload at a time per booking, in the order the events came. */
const queues = new Map();

/** @param {string} path */
async function fragment(path) {
  // HX-Request: a dead session answers 401 (not a redirect that fetch would follow).
  const answer = await fetch(path, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
  if (answer.status === 401) {
    window.location.assign("/signin");
    return null;
  }
  if (!answer.ok) return null;
  const holder = document.createElement("template");
  holder.innerHTML = await answer.text();
  return holder.content;
}

/** What a card shows that a change can move: status, the van's ETA, each person's place. */
function shown(card) {
  const persons = new Map();
  for (const row of card.querySelectorAll("tr[data-person]")) {
    const room = row.dataset.room ?? "";
    persons.set(row.dataset.person, room ? `${room} ${row.dataset.when ?? ""}`.trim() : words.unplaced);
  }
  return { status: card.dataset.statusText ?? "", eta: card.dataset.eta ?? "", persons };
}

function differences(before, after) {
  const lines = [];
  if (before.status !== after.status) lines.push([words.status, before.status, after.status]);
  if (before.eta !== after.eta) lines.push([words.eta, before.eta || words.none, after.eta || words.none]);
  for (const [person, now] of after.persons) {
    const was = before.persons.get(person);
    if (was !== undefined && was !== now) lines.push([person, was, now]);
  }
  return lines;
}

function note(card, lines, causes, at) {
  let box = card.querySelector(".change-note");
  if (!box) {
    box = /** @type {HTMLElement} */ (noteTemplate.content.firstElementChild.cloneNode(true));
    card.querySelector(".change-slot")?.append(box);
  }
  const when = box.querySelector(".change-when");
  if (when && at) when.textContent = clock.format(new Date(at));
  const cause = box.querySelector(".change-cause");
  const named = [...causes].map((c) => words.causes?.[c]).filter(Boolean);
  if (cause && named.length) cause.textContent = `(${named.join(", ")})`;
  const ul = box.querySelector(".change-lines");
  for (const [what, was, now] of lines) {
    const li = document.createElement("li");
    const del = document.createElement("del");
    const ins = document.createElement("ins");
    del.textContent = was;
    ins.textContent = now;
    li.append(`${what}: `, del, " → ", ins);
    ul?.append(li);
  }
  card.classList.add("changed");
}

async function reloadCard(id, causes, at) {
  const card = list.querySelector(`[data-booking="${CSS.escape(id)}"]`);
  if (!card) return;
  const content = await fragment(`/bookings/mine/${encodeURIComponent(id)}/card`);
  const fresh = content?.querySelector("[data-booking]");
  if (!fresh) return;
  const lines = differences(shown(card), shown(fresh));
  // A note not yet seen stays, with what moved before.
  const kept = card.querySelector(".change-note");
  if (kept) {
    fresh.querySelector(".change-slot")?.append(kept);
    fresh.classList.add("changed");
  }
  if (lines.length) note(fresh, lines, causes, at);
  card.replaceWith(fresh);
}

async function snapshot() {
  const content = await fragment("/bookings/mine/list");
  if (!content) return;
  for (const kept of list.querySelectorAll(".change-note")) {
    const id = kept.closest("[data-booking]")?.getAttribute("data-booking");
    const card = id && content.querySelector(`[data-booking="${CSS.escape(id)}"]`);
    if (card) {
      card.querySelector(".change-slot")?.append(kept);
      card.classList.add("changed");
    }
  }
  list.replaceChildren(content);
}

function apply(events) {
  /** @type {Map<string, {causes: Set<string>, at: string}>} */
  const touched = new Map();
  let unknown = false;
  for (const event of events) {
    const id = event.body?.booking;
    if (!WATCHED.has(event.kind) || typeof id !== "string") continue;
    if (!list.querySelector(`[data-booking="${CSS.escape(id)}"]`)) {
      unknown = true;
      continue;
    }
    const entry = touched.get(id) ?? { causes: new Set(), at: event.at };
    entry.causes.add(event.body?.detail?.cause ?? event.kind);
    entry.at = event.at;
    touched.set(id, entry);
  }
  for (const [id, { causes, at }] of touched) {
    const previous = queues.get(id) ?? Promise.resolve();
    const next = previous.then(() => reloadCard(id, causes, at)).catch(console.error);
    queues.set(id, next);
  }
  if (unknown) void snapshot().catch(console.error);
}

list.addEventListener("click", (event) => {
  const ack = /** @type {HTMLElement} */ (event.target).closest("[data-ack]");
  if (!ack) return;
  const card = ack.closest("[data-booking]");
  ack.closest(".change-note")?.remove();
  card?.classList.remove("changed");
  card?.querySelector("h2")?.setAttribute("tabindex", "-1");
  /** @type {HTMLElement|null} */ (card?.querySelector("h2"))?.focus();
});

connectLive({
  snapshot,
  apply,
  status: (state) => {
    if (stateLabel) {
      stateLabel.dataset.state = state;
      stateLabel.textContent = stateLabel.dataset[`label${state[0].toUpperCase()}${state.slice(1)}`] ?? state;
    }
    if (state === "closed") window.location.assign("/signin");
  },
});
