// The wall: one live connection for all its panels. Each panel module exports
//   snapshot(): Promise<void>   reload the panel's state over REST (first connect, resync)
//   apply(events): void         take a batch of stream events (once per animation frame)
// and ignores the kinds it does not show. The connection state is shown in #live-state as text
// and an icon, never colour alone.
import { connectLive } from "../live.js";
import * as rooms from "./rooms.js";
import * as custody from "./custody.js";
import * as alarms from "./alarms.js";
import * as vans from "./vans.js";
import * as health from "./health.js";

const panels = [rooms, custody, alarms, vans, health];
const stateLabel = document.getElementById("live-state");

connectLive({
  snapshot: () => Promise.all(panels.map((panel) => panel.snapshot())).then(() => undefined),
  apply: (events) => {
    for (const panel of panels) {
      try {
        panel.apply(events);
      } catch (error) {
        console.error(error); // one panel's bug must not stop the others
      }
    }
  },
  status: (state) => {
    if (stateLabel) {
      stateLabel.dataset.state = state;
      stateLabel.textContent = stateLabel.dataset[`label${state[0].toUpperCase()}${state.slice(1)}`] ?? state;
    }
    if (state === "closed") window.location.assign("/signin");
  },
});
