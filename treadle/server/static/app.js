// Treadle's pages: the few behaviours htmx does not give. Changes go through the JSON API
// with the session's CSRF token; errors are shown in #flash with the API's own message.
"use strict";

const csrf = document.body.dataset.csrf || "";

async function api(method, path, body) {
  const answer = await fetch("/api/v1" + path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  const data = text ? JSON.parse(text) : null;
  if (!answer.ok) {
    const error = new Error(errorText(data, answer.status));
    error.data = data;
    throw error;
  }
  return data;
}

// What went wrong, for a person: the message and its hint; for a refused project change,
// each problem with its hint and the file and line it is in.
function errorText(data, status) {
  if (!data) return `the server answered ${status}`;
  const problems = data.problems || [];
  if (!problems.length) return data.message + (data.hint ? "\n→ " + data.hint : "");
  const lines = problems.map((p) => {
    const where = p.file ? ` (${p.file}${p.line ? ":" + p.line : ""})` : "";
    return `• ${p.message}${p.hint ? " → " + p.hint : ""}${where}`;
  });
  const count = problems.length === 1 ? "a problem" : `${problems.length} problems`;
  return [`Refused, because of ${count}:`, ...lines].join("\n");
}

// Follows a run's Server-Sent Events (GET /api/v1/runs/{id}/logs/stream): `onLog` for each
// new log line, `onStatus` when the run or a block changes status, `onEnd` once the run has
// finished. The stream sends a run's logs from their start each time it (re)connects, so
// `onConnect` is where a page clears the lines it shows.
function followRun(runId, handlers) {
  const noop = () => {};
  const { onConnect = noop, onLog = noop, onStatus = noop, onEnd = noop, onLost = noop } = handlers;
  const source = new EventSource(`/api/v1/runs/${encodeURIComponent(runId)}/logs/stream`);
  source.addEventListener("open", () => onConnect());
  source.addEventListener("log", (event) => onLog(JSON.parse(event.data)));
  source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
  source.addEventListener("end", (event) => {
    source.close();
    onEnd(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) onLost();  // refused: not retried
  });
  return source;
}

// Tells the outcome of an action: next to `near` (the form or controls it came from) when
// given, so it is seen where the user is looking; else in the banner at the top.
// A block's log, in a <details> with this summary: a <pre> reachable by keyboard (it
// scrolls), not read aloud line by line as it grows. Returns [details, pre].
function logBox(summary, text = "", open = true) {
  const details = document.createElement("details");
  details.open = open;
  const title = document.createElement("summary");
  title.textContent = summary;
  const pre = document.createElement("pre");
  pre.className = "log";
  pre.tabIndex = 0;
  pre.setAttribute("aria-live", "off");
  pre.textContent = text;
  details.append(title, pre);
  return [details, pre];
}

function flash(message, kind = "ok", near = null) {
  const top = document.getElementById("flash");
  if (near) {
    if (top) top.textContent = "";
    const box = noticeAfter(near);
    box.textContent = message;
    box.className = `notice ${kind}`;
    box.scrollIntoView({ block: "nearest" });
    return;
  }
  if (!top) return;
  top.textContent = message;
  top.className = kind;
}

// A message for the page that comes after a reload (a change made, then the page shown anew).
function flashAfterReload(message) {
  sessionStorage.setItem("treadle-flash", message);
  window.location.reload();
}

window.addEventListener("DOMContentLoaded", () => {
  const message = sessionStorage.getItem("treadle-flash");
  if (message) {
    sessionStorage.removeItem("treadle-flash");
    flash(message);
  }
});

function noticeAfter(element) {
  const next = element.nextElementSibling;
  if (next && next.classList.contains("notice")) return next;
  const box = document.createElement("p");
  box.setAttribute("role", "alert");
  element.after(box);
  return box;
}

function on(id, event, handler) {
  const element = document.getElementById(id);
  if (element) element.addEventListener(event, handler);
}

on("login-form", "submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await api("POST", "/session", { name: form.name.value, password: form.password.value });
    window.location.href = form.dataset.next || "/pipelines";
  } catch (error) {
    document.getElementById("login-error").textContent = error.message;
  }
});

on("sign-out", "click", async () => {
  await api("DELETE", "/session");
  window.location.href = "/login";
});

on("new-pipeline", "submit", async (event) => {
  event.preventDefault();
  const name = event.target.name.value.trim();
  const copyOf = event.target.copy_of.value;
  try {
    await api("POST", "/pipelines", copyOf ? { name, copy_of: copyOf } : { name });
    window.location.href = "/pipelines/" + encodeURIComponent(name);
  } catch (error) {
    flash(error.message, "error", event.target);
  }
});

on("pipeline-search", "input", (event) => {
  const wanted = event.target.value.toLowerCase();
  document.querySelectorAll("#pipelines tbody tr").forEach((row) => {
    row.hidden = !row.dataset.name.toLowerCase().includes(wanted);
  });
});

document.body.addEventListener("click", async (event) => {
  const button = event.target.closest(".run-action");
  if (!button) return;
  {
    const run = button.closest("[data-run]").dataset.run;
    try {
      const body = button.dataset.block ? { from_block: button.dataset.block } : {};
      const result = await api("POST", `/runs/${run}/${button.dataset.action}`, body);
      if (button.dataset.action === "cancel") {  // the page follows the run: no reload
        button.disabled = true;
        flash(result.message, "ok", button.parentElement);
        return;
      }
      flash(result.message || `${button.dataset.action}: done`);
      setTimeout(() => window.location.reload(), 500);
    } catch (error) {
      flash(error.message, "error");
    }
  }
});

// A table or log that scrolls sideways (a narrow window) is reachable by keyboard.
function focusableWhenScrolling() {
  document.querySelectorAll("table.list, pre").forEach((element) => {
    if (element.scrollWidth > element.clientWidth + 1) element.tabIndex = 0;
  });
}
window.addEventListener("load", focusableWhenScrolling);
window.addEventListener("resize", focusableWhenScrolling);
document.body.addEventListener("htmx:afterSwap", focusableWhenScrolling);
