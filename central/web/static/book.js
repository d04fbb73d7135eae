// The booking form: add and remove person rows, and after each answer take the keyboard to it.
// Rows come from the <template id="person-template"> the page rendered (every word in it is
// from the catalogs); their fields are named persons.N.field and renumbered 0..n-1 after each
// change, so that the server's error locations (persons.1.sex) name the row on screen.

const ROW = "[data-person-row]";
const NUMBERED = /persons\.(\d+|__i__)\./g;

/** @param {HTMLFormElement} form */
function renumber(form) {
  const rows = [...form.querySelectorAll(ROW)];
  rows.forEach((row, index) => {
    for (const element of [row, ...row.querySelectorAll("*")]) {
      for (const name of ["name", "id", "for", "aria-describedby"]) {
        const value = element.getAttribute(name);
        if (value && value.includes("persons.")) {
          element.setAttribute(name, value.replace(NUMBERED, `persons.${index}.`));
        }
      }
    }
    const number = row.querySelector(".person-number");
    if (number) number.textContent = String(index + 1);
    const remove = row.querySelector("[data-remove-person]");
    if (remove) remove.hidden = rows.length === 1;
  });
  const add = form.querySelector("[data-add-person]");
  if (add) add.disabled = rows.length >= Number(form.dataset.maxPersons || 20);
}

document.addEventListener("click", (event) => {
  const target = /** @type {HTMLElement} */ (event.target);
  const form = /** @type {HTMLFormElement|null} */ (target.closest("#book-form"));
  if (!form) return;
  if (target.closest("[data-add-person]")) {
    const template = /** @type {HTMLTemplateElement|null} */ (form.querySelector("#person-template"));
    const rows = form.querySelector("[data-person-rows]");
    const row = template?.content.querySelector(ROW)?.cloneNode(true);
    if (!rows || !(row instanceof HTMLElement)) return;
    rows.append(row);
    renumber(form);
    row.querySelector("input, select")?.focus();
  } else if (target.closest("[data-remove-person]")) {
    const row = target.closest(ROW);
    const rows = [...form.querySelectorAll(ROW)];
    if (!row || rows.length < 2) return;
    const next = rows[rows.indexOf(row) + 1] ?? rows[rows.indexOf(row) - 1];
    row.remove();
    renumber(form);
    /** @type {HTMLElement|null} */ (next.querySelector("input, select"))?.focus();
  }
});

// htmx replaced the form with the answer: the keyboard goes to the answer's heading (the
// success, the refusal, or the list of fields to correct, whose links lead to each field).
document.body.addEventListener("htmx:afterSettle", (event) => {
  const form = /** @type {HTMLElement} */ (event.target).closest?.("#book-form");
  if (!form) return;
  renumber(/** @type {HTMLFormElement} */ (form));
  /** @type {HTMLElement|null} */ (form.querySelector("#answer [data-focus]"))?.focus();
});

const initial = /** @type {HTMLFormElement|null} */ (document.getElementById("book-form"));
if (initial) renumber(initial);
