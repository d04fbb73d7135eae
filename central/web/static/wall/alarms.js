// The wall's alarms panel (templates/wall/alarms.html).

/** Reload the panel's state over REST. */
export async function snapshot() {}

/** Take a batch of stream events. @param {Array<{kind: string, body: object}>} events */
export function apply(events) {
  void events;
}
