// The wall's vans panel (templates/wall/vans.html): a Leaflet map of each van's recent track,
// the centre's and the stations' geofences and a scale bar, with no basemap unless the centre
// configured its own tile server; beside it a list with each van's speed, ETA and state in
// words. With map_crs "gcj02" every position drawn is shifted to that datum (../datum.js).
//
// Leaflet is the vendored classic script the template loads before this module (window.L).
// Positions arrive as van_position events (the centre sends at most one per van per second);
// a van_late, arrived or a change of the plan reloads the list, since it changes the ETA or
// which van carries which unit.
import { toMapDatum } from "../datum.js";
import { fill, getJson, parseTime, timeFormats } from "./when.js";

const RELOAD_KINDS = new Set(["van_late", "arrived", "plan_changed", "cancelled", "no_show"]);
const EARTH_RADIUS_M = 6371008.8;

const configNode = document.getElementById("vans-config");
const mapNode = document.getElementById("vans-map");
const listBody = document.querySelector("#vans-list tbody");
const emptyNote = document.getElementById("vans-empty");
/** @type {any} */
const L = window.L;
const config = configNode && mapNode && L ? JSON.parse(configNode.textContent) : null;

/** @type {Map<string, {van: any, marker: any, line: any, row: HTMLTableRowElement}>} */
const shown = new Map();
let map = null;
let fitted = false;
let reloading = null;

const keyOf = (agent, device) => `${agent}/${device}`;

function distanceM(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Attribution is the operator's plain text; Leaflet would take it as HTML. */
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function setUp() {
  const settings = config.map;
  const text = config.text;
  const toMap = toMapDatum(settings.crs);
  L.Icon.Default.imagePath = config.images; // nothing is fetched from Leaflet's default place
  map = L.map(mapNode, { zoomControl: false, attributionControl: false, keyboard: true });
  L.control.zoom({ zoomInTitle: text.zoom_in, zoomOutTitle: text.zoom_out }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  if (settings.tile_url) {
    // The force's own GIS server, never a public one (a setting, checked at start-up).
    L.tileLayer(settings.tile_url, {
      maxZoom: 19,
      attribution: escapeHtml(settings.attribution || ""),
    }).addTo(map);
    if (settings.attribution) L.control.attribution({ prefix: false }).addTo(map);
  }
  // A Leaflet circle needs the map's view before it is drawn: set it from the fences first.
  const fences = [];
  if (settings.centre) {
    const c = settings.centre;
    fences.push({ lat: c.lat, lon: c.lon, radius: c.radius_m, label: text.centre, kind: "centre" });
  }
  for (const s of settings.stations) {
    fences.push({ lat: s.lat, lon: s.lon, radius: s.radius_m, label: s.station, kind: "station" });
  }
  if (fences.length) {
    const bounds = L.latLngBounds(fences.map((f) => L.latLng(toMap(f.lat, f.lon)).toBounds(2 * f.radius)));
    map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15 });
  } else {
    map.setView([35.0, 105.0], 4); // nothing to show yet: China; the first fix refits
  }
  for (const f of fences) {
    L.circle(toMap(f.lat, f.lon), {
      radius: f.radius,
      className: `geofence geofence-${f.kind}`,
      weight: 2,
      fillOpacity: 0.08,
      dashArray: f.kind === "station" ? "6 4" : null,
    })
      .bindTooltip(f.label, {
        permanent: true,
        // The van's own label is on its right: a station's goes left, where it set off from.
        direction: f.kind === "station" ? "left" : "top",
        className: `fence-label fence-${f.kind}`,
      })
      .addTo(map);
  }
  return toMap;
}

const toMap = config ? setUp() : null;
const formats = config ? timeFormats(config.map.timezone) : null;

function stateOf(van) {
  if (!van.fix) return "no_fix";
  const centre = config.map.centre;
  if (centre && distanceM(van.fix, centre) <= centre.radius_m) return "arrived";
  if (van.booking && van.booking.late) return "late";
  if (van.booking) return "en_route";
  return "idle";
}

function cell(row, index, text) {
  row.cells[index].textContent = text;
}

/** The ETA cell: the time (and the planned one when late), the distance on a second line. */
function etaCell(td, booking) {
  const eta = booking && parseTime(booking.eta);
  const planned = booking && parseTime(booking.planned);
  const when = document.createElement("span");
  when.className = "eta";
  const parts = [];
  if (eta) parts.push(formats.clock(eta));
  if (booking && booking.late && planned) {
    parts.push(fill(config.text.planned, { time: formats.clock(planned) }));
  }
  when.textContent = parts.length ? parts.join(" · ") : "—";
  if (eta) td.title = formats.stamp(eta);
  else td.removeAttribute("title");
  const spans = [when];
  if (booking && typeof booking.distance_m === "number") {
    const away = document.createElement("span");
    away.className = "away";
    away.textContent = fill(config.text.distance, { km: (booking.distance_m / 1000).toFixed(1) });
    spans.push(away);
  }
  td.replaceChildren(...spans);
}

function render(entry) {
  const { van, marker, line, row } = entry;
  const state = stateOf(van);
  const text = config.text;
  const word = text[state];
  row.dataset.state = state;
  cell(row, 0, van.device);
  cell(row, 1, (van.booking && van.booking.station) || van.station || "—");
  const speed = van.fix && typeof van.fix.speed_mps === "number" ? van.fix.speed_mps * 3.6 : null;
  cell(row, 2, speed === null ? "—" : fill(text.speed, { speed: speed.toFixed(0) }));
  etaCell(row.cells[3], van.booking);
  const badge = row.cells[4].querySelector(".van-state") || document.createElement("span");
  badge.className = "van-state";
  badge.dataset.state = state;
  badge.textContent = van.online === false ? `${word} · ${text.offline}` : word;
  row.cells[4].replaceChildren(badge);
  row.dataset.trackPoints = String(van.track.length);
  if (van.fix) {
    const [lat, lon] = toMap(van.fix.lat, van.fix.lon);
    row.dataset.lat = String(van.fix.lat);
    row.dataset.lon = String(van.fix.lon);
    row.dataset.mapLat = String(lat);
    row.dataset.mapLon = String(lon);
    marker.setLatLng([lat, lon]);
    if (!map.hasLayer(marker)) marker.addTo(map);
    marker.setTooltipContent(`${van.device} · ${word}`);
    const path = marker.getElement();
    if (path) path.setAttribute("class", `leaflet-interactive van-marker van-${state}`);
  } else if (map.hasLayer(marker)) {
    marker.remove();
  }
  line.setLatLngs(van.track.map((p) => toMap(p.lat, p.lon)));
}

function add(van) {
  const row = document.createElement("tr");
  row.dataset.device = van.device;
  row.dataset.agent = van.agent;
  for (let i = 0; i < 5; i += 1) row.append(document.createElement("td"));
  const line = L.polyline([], { className: "van-track", weight: 3, opacity: 0.8 }).addTo(map);
  const marker = L.circleMarker([0, 0], { radius: 9, weight: 3, fillOpacity: 0.9, className: "van-marker" })
    .bindTooltip(van.device, { permanent: true, direction: "right", className: "van-label" });
  const entry = { van, marker, line, row };
  shown.set(keyOf(van.agent, van.device), entry);
  return entry;
}

function drop(key) {
  const entry = shown.get(key);
  entry.marker.remove();
  entry.line.remove();
  entry.row.remove();
  shown.delete(key);
}

function sortRows() {
  const rows = [...shown.values()].map((e) => e.row);
  rows.sort((a, b) => a.dataset.device.localeCompare(b.dataset.device));
  listBody.replaceChildren(...rows);
  emptyNote.hidden = rows.length > 0;
}

function fitOnce() {
  if (fitted) return;
  const points = [];
  for (const { van } of shown.values()) {
    for (const p of van.track) points.push(toMap(p.lat, p.lon));
    if (van.fix) points.push(toMap(van.fix.lat, van.fix.lon));
  }
  const centre = config.map.centre;
  if (centre) points.push(toMap(centre.lat, centre.lon));
  for (const s of config.map.stations) points.push(toMap(s.lat, s.lon));
  if (points.length < 2 || !shown.size) return;
  fitted = true; // once: after that the duty officer's pan and zoom stay
  map.fitBounds(L.latLngBounds(points), { padding: [32, 32], maxZoom: 16 });
}

async function load() {
  const vans = await getJson(`/api/v1/vans?minutes=${config.map.track_minutes}`);
  const seen = new Set();
  for (const van of vans) {
    const key = keyOf(van.agent, van.device);
    seen.add(key);
    const entry = shown.get(key) || add(van);
    entry.van = van;
    render(entry);
  }
  for (const key of [...shown.keys()]) if (!seen.has(key)) drop(key);
  sortRows();
  fitOnce();
}

/** Reload the panel's state over REST. */
export async function snapshot() {
  if (!config) return;
  if (!reloading) reloading = load().finally(() => (reloading = null));
  await reloading;
}

function move(entry, body) {
  const van = entry.van;
  const previous = van.fix && parseTime(van.fix.time);
  const moment = parseTime(body.time);
  if (!moment) return;
  // At most one position per van per second, and never back in time.
  if (previous && Math.floor(moment / 1000) <= Math.floor(previous / 1000)) return;
  van.fix = { time: body.time, lat: body.lat, lon: body.lon, speed_mps: body.speed_mps, course: body.course };
  van.track.push({ time: body.time, lat: body.lat, lon: body.lon });
  const oldest = moment.getTime() - config.map.track_minutes * 60000;
  while (van.track.length && (parseTime(van.track[0].time) || moment) < oldest) van.track.shift();
  render(entry);
}

/** Take a batch of stream events. @param {Array<{kind: string, body: object}>} events */
export function apply(events) {
  if (!config) return;
  let reload = false;
  for (const event of events) {
    if (event.kind === "van_position") {
      const body = event.body || {};
      if (typeof body.lat !== "number" || typeof body.lon !== "number") continue;
      const entry = shown.get(keyOf(body.agent, body.device));
      if (entry) move(entry, body);
      else reload = true; // a van not seen before: the list says which station it is
    } else if (RELOAD_KINDS.has(event.kind)) {
      reload = true;
    }
  }
  if (reload) void snapshot().catch((error) => console.error(error));
  else fitOnce();
}
