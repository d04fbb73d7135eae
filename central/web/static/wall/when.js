// Times on the wall in the centre's zone (the page passes it: the server's `timezone`), never
// the browser's: a wall PC set to another zone must still show the centre's clock.

/** The page's language, as the server chose it (<html lang>). */
export const LANG = document.documentElement.lang || "zh-CN";

/**
 * Formatters for one zone: `clock` (HH:MM), `stamp` (YYYY-MM-DD HH:MM:SS) and `ago`
 * ("3 minutes ago", in the page's language by the browser's own Intl data).
 * @param {string} timeZone an IANA zone such as Asia/Shanghai
 */
export function timeFormats(timeZone) {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  const relative = new Intl.RelativeTimeFormat(LANG, { numeric: "auto" });
  const fields = (date) =>
    Object.fromEntries(parts.formatToParts(date).map((part) => [part.type, part.value]));
  return {
    /** @param {Date} date */
    clock: (date) => {
      const f = fields(date);
      return `${f.hour}:${f.minute}`;
    },
    /** @param {Date} date */
    stamp: (date) => {
      const f = fields(date);
      return `${f.year}-${f.month}-${f.day} ${f.hour}:${f.minute}:${f.second}`;
    },
    /** MM-DD HH:MM:SS, for a narrow column (the full stamp goes in its title). */
    short: (date) => {
      const f = fields(date);
      return `${f.month}-${f.day} ${f.hour}:${f.minute}:${f.second}`;
    },
    /** @param {Date} date @param {number} now milliseconds */
    ago: (date, now = Date.now()) => {
      const seconds = Math.round((date.getTime() - now) / 1000);
      const abs = Math.abs(seconds);
      if (abs < 60) return relative.format(seconds, "second");
      if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
      if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
      return relative.format(Math.round(seconds / 86400), "day");
    },
  };
}

/** A stored time (`2026-12-05T01:35:00.000000Z`) as a Date; null for anything else. */
export function parseTime(text) {
  if (typeof text !== "string") return null;
  const date = new Date(text.replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Fill "{name}" placeholders of a translated string passed from the template. */
export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** A REST read with the session cookie (a GET needs no CSRF header). */
export async function getJson(url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!answer.ok) {
    const error = new Error(`${url}: ${answer.status}`);
    error.status = answer.status;
    throw error;
  }
  return answer.json();
}
