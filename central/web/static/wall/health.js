// The wall's health panel (templates/wall/health.html): every edge agent and device, online
// or offline in words and an icon, last seen relative and as a time in the centre's zone, a
// band's battery and an agent's missing messages. agent_*/device_* events change the state at
// once; the lists are read again every minute so that "last seen" keeps up with quiet readings
// (the stream tells changes of state, not every message). Operations get no reading bodies:
// without one a battery shows as "—".
import { fill, getJson, parseTime, timeFormats } from "./when.js";

const REFRESH_MS = 60_000;
const RELATIVE_MS = 10_000;
const LOW_BATTERY = 20;

const configNode = document.getElementById("health-config");
const agentsBody = document.querySelector("#health-agents tbody");
const devicesBody = document.querySelector("#health-devices tbody");
const config = configNode && agentsBody && devicesBody ? JSON.parse(configNode.textContent) : null;
const formats = config ? timeFormats(config.timezone) : null;

/** @type {Map<string, any>} */
const agents = new Map();
/** @type {Map<string, any>} */
const devices = new Map();
let reloading = null;
let timers = false;

function stateWord(online) {
  if (online === true) return ["online", config.text.online];
  if (online === false) return ["offline", config.text.offline];
  return ["unknown", config.text.unknown]; // no availability report (a band is heard, not polled)
}

function stateCell(online) {
  const [state, word] = stateWord(online);
  const badge = document.createElement("span");
  badge.className = "health-state";
  badge.dataset.state = state;
  badge.textContent = word;
  return badge;
}

function seenCell(text) {
  const date = parseTime(text);
  if (!date) return document.createTextNode(config.text.never);
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  time.className = "seen";
  const ago = document.createElement("span");
  ago.className = "ago";
  ago.textContent = formats.ago(date);
  const at = document.createElement("span");
  at.className = "at";
  at.textContent = formats.short(date);
  time.title = formats.stamp(date);
  time.append(ago, at);
  return time;
}

function row(key, cells, online) {
  const tr = document.createElement("tr");
  tr.dataset.key = key;
  tr.dataset.state = stateWord(online)[0];
  for (const content of cells) {
    const td = document.createElement("td");
    td.append(content);
    tr.append(td);
  }
  return tr;
}

function battery(device) {
  const entry = device.state && device.state.battery;
  const percent = entry && entry.body && entry.body.percent;
  if (typeof percent !== "number") return document.createTextNode("—");
  const span = document.createElement("span");
  span.className = "battery";
  if (percent < LOW_BATTERY) span.dataset.low = "true";
  span.textContent = `${percent}%`;
  return span;
}

/** A band reports no class of its own (its scanner does): it is known by its readings. */
function kindOf(device) {
  const text = config.text;
  if (device.class) return text[device.class] || device.class;
  const kinds = Object.keys(device.state || {});
  if (kinds.some((k) => k === "battery" || k === "heart_rate" || k === "custody")) return text.band;
  return "—";
}

function draw() {
  const text = config.text;
  const agentRows = [...agents.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((a) =>
      row(
        a.id,
        [
          a.id,
          a.station || "—",
          stateCell(a.online),
          seenCell(a.last_seen),
          a.missing ? fill(text.missing, { count: a.missing }) : text.complete,
        ],
        a.online,
      ),
    );
  agentsBody.replaceChildren(...agentRows);
  const deviceRows = [...devices.values()]
    .sort((a, b) => a.agent.localeCompare(b.agent) || a.id.localeCompare(b.id))
    .map((d) =>
      row(
        `${d.agent}/${d.id}`,
        [d.id, kindOf(d), stateCell(d.online), seenCell(d.last_seen), battery(d)],
        d.online,
      ),
    );
  devicesBody.replaceChildren(...deviceRows);
}

async function load() {
  const [agentList, deviceList] = await Promise.all([getJson("/api/v1/agents"), getJson("/api/v1/devices")]);
  agents.clear();
  for (const a of agentList) agents.set(a.id, a);
  devices.clear();
  for (const d of deviceList) devices.set(`${d.agent}/${d.id}`, d);
  draw();
}

function refreshAgo() {
  for (const time of document.querySelectorAll("#health-panel time.seen")) {
    const ago = time.querySelector(".ago");
    if (ago) ago.textContent = formats.ago(new Date(time.dateTime));
  }
}

/** Reload the panel's state over REST. */
export async function snapshot() {
  if (!config) return;
  if (!timers) {
    timers = true; // the page lives as long as the wall: these timers end with it
    setInterval(refreshAgo, RELATIVE_MS);
    setInterval(() => void snapshot().catch((error) => console.error(error)), REFRESH_MS);
  }
  if (!reloading) reloading = load().finally(() => (reloading = null));
  await reloading;
}

/** Take a batch of stream events. @param {Array<{kind: string, at: string, body: object}>} events */
export function apply(events) {
  if (!config) return;
  let changed = false;
  let unknown = false;
  for (const event of events) {
    const body = event.body || {};
    if (event.kind === "agent_online" || event.kind === "agent_offline") {
      const agent = agents.get(body.agent);
      if (!agent) {
        unknown = true;
        continue;
      }
      agent.online = event.kind === "agent_online";
      if (agent.online) agent.last_seen = event.at;
      changed = true;
    } else if (event.kind === "device_online" || event.kind === "device_offline") {
      const device = devices.get(`${body.agent}/${body.device}`);
      if (!device) {
        unknown = true;
        continue;
      }
      device.online = event.kind === "device_online";
      if (device.online) device.last_seen = event.at;
      changed = true;
    }
  }
  if (changed) draw();
  if (unknown) void snapshot().catch((error) => console.error(error));
}
