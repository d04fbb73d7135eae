// The page's one connection to GET /api/v1/stream: a snapshot, then ordered deltas.
//
// A page hands in `snapshot` (reload its state over REST) and `apply` (take a batch of events).
// The first `hello` and every `resync` (the client fell behind the kept feed) reload the snapshot;
// events that arrive meanwhile wait and are applied after it, so nothing between the snapshot
// and the stream is lost (applying an event the snapshot already shows must change nothing).
// The browser's own reconnect sends Last-Event-ID, and the centre resumes after it without loss,
// so a reconnect needs no reload. Events are handed over once per animation frame: a burst of
// a hundred alarms is one repaint, not a hundred.

/** Every event kind the centre's stream sends (an EventSource hears only named kinds). */
export const KINDS = Object.freeze([
  "hello", "resync", "room_state", "agent_online", "agent_offline", "device_online",
  "device_offline", "alarm_raised", "alarm_repeated", "alarm_acknowledged", "alarm_cleared",
  "plan_changed", "unassigned", "custody_level", "cancelled", "no_show", "plan_violation",
  "van_late", "arrived", "person_exited", "band_bound", "band_unbound", "person_room",
  "van_position",
]);

/**
 * @typedef {{id: number, at: string, kind: string, station: string|null, body: object}} LiveEvent
 * @typedef {"connecting"|"loading"|"live"|"reconnecting"|"closed"} LiveState
 * @param {{
 *   url?: string,
 *   snapshot: () => Promise<void>,
 *   apply: (events: LiveEvent[]) => void,
 *   status?: (state: LiveState) => void,
 * }} options
 * @returns {{close: () => void, lastId: () => number}}
 */
export function connectLive({ url = "/api/v1/stream", snapshot, apply, status = () => {} }) {
  const source = new EventSource(url, { withCredentials: true });
  /** @type {LiveEvent[]} */
  let pending = [];
  let loading = false;
  let reloadAgain = false;
  let frame = 0;
  let last = 0;

  const flush = () => {
    frame = 0;
    if (loading || pending.length === 0) return;
    const batch = pending;
    pending = [];
    apply(batch);
  };
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(flush);
  };
  const reload = async () => {
    if (loading) {
      reloadAgain = true;
      return;
    }
    loading = true;
    status("loading");
    try {
      do {
        reloadAgain = false;
        await snapshot();
      } while (reloadAgain);
    } finally {
      loading = false;
    }
    status(source.readyState === EventSource.OPEN ? "live" : "reconnecting");
    schedule();
  };

  let greeted = false;
  source.addEventListener("hello", () => {
    if (!greeted) {
      greeted = true;
      void reload();
    } else if (!loading) {
      status("live"); // resumed after the last event seen: nothing was missed
    }
  });
  source.addEventListener("resync", () => {
    pending = [];
    void reload();
  });
  for (const kind of KINDS) {
    if (kind === "hello" || kind === "resync") continue;
    source.addEventListener(kind, (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // not ours to crash on: the next snapshot shows the truth
      }
      last = Math.max(last, Number(message.lastEventId) || 0);
      pending.push(event);
      schedule();
    });
  }
  source.addEventListener("open", () => status(loading ? "loading" : "live"));
  source.addEventListener("error", () => {
    // CONNECTING: the browser retries by itself; CLOSED: refused (signed out, too many streams).
    status(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  });
  status("connecting");
  return {
    close: () => source.close(),
    lastId: () => last,
  };
}
