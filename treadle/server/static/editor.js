// The pipeline editor: a CodeMirror editor per block, Ctrl/Cmd-S saves, "Run block" shows
// the output under the block, and the forms add blocks, connect and run the pipeline.
"use strict";

const editors = new Map();
let unsaved = 0;

function markDirty(block, dirty) {
  const was = block.dataset.dirty === "1";
  block.dataset.dirty = dirty ? "1" : "0";
  unsaved += (dirty ? 1 : 0) - (was ? 1 : 0);
  const state = block.querySelector(".state");
  if (state) state.textContent = dirty ? "unsaved changes" : "";
}

window.addEventListener("beforeunload", (event) => {
  if (unsaved > 0) {
    event.preventDefault();
    event.returnValue = "";
  }
});

async function save(block) {
  const editor = mount(block);
  const path = `/pipelines/${block.dataset.pipeline}/blocks/${block.dataset.block}/file`;
  try {
    await api("PUT", path, { text: editor.getValue() });
    markDirty(block, false);
    markProblemLines(block, []);
    const shown = block.querySelector(".output pre.error");
    if (shown && shown.dataset.fromSave) block.querySelector(".output").innerHTML = "";
    block.querySelectorAll(".block-problem").forEach((p) => p.remove());
    block.querySelector(".state").textContent = "saved";
    return true;
  } catch (error) {
    block.querySelector(".state").textContent = "not saved";
    const problems = (error.data && error.data.problems) || [];
    markProblemLines(block, problems.filter((p) => p.file === block.dataset.file).map((p) => p.line));
    showError(block, error.message).dataset.fromSave = "1";
    return false;
  }
}

// Highlights these lines (1-based) of the block's code, and only these.
function markProblemLines(block, lines) {
  const editor = editors.get(block.dataset.block);
  if (!editor) return;
  editor.eachLine((handle) => editor.removeLineClass(handle, "background", "cm-problem-line"));
  lines.filter(Boolean).forEach((line) => editor.addLineClass(line - 1, "background", "cm-problem-line"));
}

function showError(block, message) {
  const out = block.querySelector(".output");
  out.innerHTML = "";
  const pre = document.createElement("pre");
  pre.className = "error";
  pre.textContent = message;
  out.appendChild(pre);
  return pre;
}

function table(output) {
  const element = document.createElement("table");
  element.className = "list preview";
  element.tabIndex = 0;  // scrolls sideways: reachable by keyboard
  const head = element.createTHead().insertRow();
  output.columns.forEach((column) => {
    const th = document.createElement("th");
    th.textContent = column.name;
    const type = document.createElement("small");
    type.textContent = " " + column.type;
    th.appendChild(type);
    head.appendChild(th);
  });
  const body = element.createTBody();
  output.rows.forEach((row) => {
    const tr = body.insertRow();
    output.columns.forEach((column) => {
      const value = Array.isArray(row) ? row[output.columns.indexOf(column)] : row[column.name];
      tr.insertCell().textContent = value === null || value === undefined ? "" : String(value);
    });
  });
  return element;
}

const NUMERIC = /^(int|uint|float|double|decimal|number)/i;

const ID_LIKE = /(^|_)id$|ID$|Id$/;

// A bar chart of the first numeric column that is not an id, over the preview's rows
// (when there are 2+).
function chart(output) {
  const column = output.columns.find((c) => NUMERIC.test(c.type) && !ID_LIKE.test(c.name));
  if (!column || output.rows.length < 2) return null;
  const index = output.columns.indexOf(column);
  const values = output.rows.map((row) => Number(Array.isArray(row) ? row[index] : row[column.name]));
  if (values.some((v) => !Number.isFinite(v))) return null;
  const width = 24, height = 80, top = Math.max(...values.map(Math.abs), 1e-9);
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", values.length * width);
  svg.setAttribute("height", height + 16);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${column.name} over the first ${values.length} rows`);
  values.forEach((value, i) => {
    const bar = document.createElementNS(svgNS, "rect");
    const h = Math.max((Math.abs(value) / top) * height, 1);
    bar.setAttribute("x", i * width + 3);
    bar.setAttribute("y", height - h);
    bar.setAttribute("width", width - 6);
    bar.setAttribute("height", h);
    const title = document.createElementNS(svgNS, "title");
    title.textContent = `${column.name}: ${value}`;
    bar.appendChild(title);
    svg.appendChild(bar);
  });
  const label = document.createElementNS(svgNS, "text");
  label.setAttribute("x", 0);
  label.setAttribute("y", height + 13);
  label.textContent = column.name;
  svg.appendChild(label);
  return svg;
}

// The line of `file` (relative to the project) where a traceback last passed, if it did.
function lineInFile(traceback, file) {
  let line = null;
  for (const frame of (traceback || "").matchAll(/File "([^"]+)", line (\d+)/g)) {
    if (frame[1] === file || frame[1].endsWith("/" + file)) line = Number(frame[2]);
  }
  return line;
}

function showResult(block, result) {
  const out = block.querySelector(".output");
  out.innerHTML = "";
  const status = document.createElement("p");
  status.innerHTML = `<span class="status ${result.status}">${result.status}</span>`;
  if (result.duration !== null) status.append(` in ${result.duration.toFixed(2)} s`);
  if (result.output && result.output.row_count !== null) {
    status.append(` · ${result.output.row_count} rows, ${result.output.columns.length} columns`);
  }
  out.appendChild(status);
  const line = result.error ? lineInFile(result.error.traceback, block.dataset.file) : null;
  markProblemLines(block, line ? [line] : []);
  if (result.error) {
    const pre = document.createElement("pre");
    pre.className = "error";
    const where = line ? ` (line ${line} of ${block.dataset.file})` : "";
    pre.textContent = `${result.error.type}: ${result.error.message}${where}`;
    out.appendChild(pre);
  }
  if (result.output && result.output.columns.length) {
    out.appendChild(table(result.output));
    const drawn = chart(result.output);
    if (drawn) out.appendChild(drawn);
  }
  else if (result.output && result.output.value !== null) {
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(result.output.value, null, 2);
    out.appendChild(pre);
  }
  if (result.logs) {
    out.appendChild(logBox("Log", result.logs, false)[0]);
  }
}

// Runs the block without waiting for it: its log streams under the block while it runs,
// then its result (status, table, chart, log) replaces the log.
async function runBlock(block) {
  if (block.dataset.dirty === "1" && !(await save(block))) return;
  const state = block.querySelector(".state");
  const button = block.querySelector("button.run");
  const path = `/pipelines/${block.dataset.pipeline}/blocks/${block.dataset.block}`;
  const finish = (show) => {
    state.textContent = "";
    button.disabled = false;
    show();
    if (document.activeElement === document.body) button.focus();  // disabling lost it
  };
  state.textContent = "starting…";
  button.disabled = true;
  let started;
  try {
    started = await api("POST", path + "/run", { wait: false });
  } catch (error) {
    finish(() => showError(block, error.message));
    return;
  }
  if (started.status !== "running") {
    finish(() => showResult(block, started));
    return;
  }
  state.textContent = "running…";
  const log = liveLog(block);
  followRun(started.run_id, {
    onConnect: () => { log.textContent = ""; },
    onLog: (line) => {
      if (line.block === block.dataset.block) log.append(line.line + "\n");
    },
    onStatus: (change) => {
      if (change.block === block.dataset.block) state.textContent = change.status + "…";
    },
    onEnd: async () => {
      try {
        const result = await api("GET", `${path}/runs/${started.run_id}`);
        finish(() => showResult(block, result));
      } catch (error) {
        finish(() => showError(block, error.message));
      }
    },
    onLost: () => finish(() => showError(block, "Lost the connection to the run; see it in Runs.")),
  });
}

// An empty, open log under the block, for the lines of a run in progress.
function liveLog(block) {
  const [details, pre] = logBox("Log (live)");
  block.querySelector(".output").replaceChildren(details);
  return pre;
}

// A block's CodeMirror editor is made when the block comes near the screen: a pipeline of
// hundreds of blocks opens at once, and the editors appear as one scrolls.
function mount(block) {
  if (editors.has(block.dataset.block)) return editors.get(block.dataset.block);
  const area = block.querySelector("textarea.code");
  const editor = CodeMirror.fromTextArea(area, {
    mode: block.dataset.language === "sql" ? "text/x-sql" : "python",
    lineNumbers: true,
    readOnly: area.readOnly,
    indentUnit: 4,
    viewportMargin: Infinity,
    extraKeys: {
      "Ctrl-S": () => save(block),
      "Cmd-S": () => save(block),
      Tab: (cm) => cm.replaceSelection("    "),
      Esc: (cm) => cm.getInputField().blur(),  // Tab indents: Esc, then Tab, moves on
    },
  });
  editors.set(block.dataset.block, editor);
  editor.getInputField().setAttribute(
    "aria-label", `Code of block ${block.dataset.block} (Tab indents; Esc, then Tab, moves on)`,
  );
  markProblemLines(block, JSON.parse(block.dataset.problemLines || "[]"));
  editor.on("change", () => markDirty(block, true));
  return editor;
}

const nearScreen = new IntersectionObserver(
  (entries) => entries.forEach((entry) => {
    if (entry.isIntersecting) {
      mount(entry.target);
      nearScreen.unobserve(entry.target);
    }
  }),
  { rootMargin: "600px 0px" },
);

document.querySelectorAll("article.block").forEach((block) => {
  nearScreen.observe(block);
  const saveButton = block.querySelector("button.save");
  if (saveButton) saveButton.addEventListener("click", () => save(block));
  const runButton = block.querySelector("button.run");
  if (runButton) runButton.addEventListener("click", () => runBlock(block));
});

document.querySelectorAll("button.rename").forEach((button) => {
  button.addEventListener("click", async () => {
    const block = button.closest("article");
    const name = prompt(`New name for ${block.dataset.block} (its file stays where it is):`, block.dataset.block);
    if (!name || name.trim() === block.dataset.block) return;
    try {
      await api("POST", `/pipelines/${block.dataset.pipeline}/blocks/${block.dataset.block}/rename`, { name: name.trim() });
      window.location.hash = "block-" + name.trim();
      window.location.reload();
    } catch (error) {
      flash(error.message, "error", button.parentElement);
    }
  });
});

document.querySelectorAll("button.remove").forEach((button) => {
  button.addEventListener("click", async () => {
    const block = button.closest("article");
    const shared = button.dataset.shared;
    const warning = shared
      ? `The file is also used by: ${shared}. It is kept; only this pipeline stops using it.`
      : "The block's file is kept in the project.";
    if (!confirm(`Remove ${block.dataset.block} from this pipeline? ${warning}`)) return;
    try {
      await api("DELETE", `/pipelines/${block.dataset.pipeline}/blocks/${block.dataset.block}`);
      window.location.reload();
    } catch (error) {
      flash(error.message, "error", button.parentElement);
    }
  });
});

document.querySelectorAll("button.disconnect").forEach((button) => {
  button.addEventListener("click", async () => {
    const pipeline = button.closest("article").dataset.pipeline;
    const { from, to } = button.dataset;
    if (!confirm(`Disconnect ${from} → ${to}?`)) return;
    try {
      await api("DELETE", `/pipelines/${pipeline}/edges`, { from, to });
      window.location.reload();
    } catch (error) {
      flash(error.message, "error", button.closest("header"));
    }
  });
});

on("add-block", "submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const upstream = form.upstream.value ? [form.upstream.value] : [];
  try {
    await api("POST", `/pipelines/${form.dataset.pipeline}/blocks`, {
      name: form.name.value.trim(), template: form.template.value, upstream,
    });
    window.location.hash = "block-" + form.name.value.trim();
    window.location.reload();
  } catch (error) {
    flash(error.message, "error", form);
  }
});

on("connect", "submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await api("POST", `/pipelines/${form.dataset.pipeline}/edges`, { from: form.from.value, to: form.to.value });
    window.location.reload();
  } catch (error) {
    flash(error.message, "error", form);
  }
});

// Runs the pipeline as saved: blocks with unsaved changes are saved first (as "Run block"
// does), and nothing runs when one of them cannot be saved.
on("run-pipeline", "submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  let variables = {};
  try {
    variables = form.variables.value.trim() ? JSON.parse(form.variables.value) : {};
  } catch (error) {
    flash("the variables are not JSON: " + error.message, "error", form);
    return;
  }
  for (const block of document.querySelectorAll('article.block[data-dirty="1"]')) {
    if (!(await save(block))) {
      flash(`Not run: ${block.dataset.block} could not be saved (see the block).`, "error", form);
      return;
    }
  }
  try {
    const run = await api("POST", "/runs", { pipeline: form.dataset.pipeline, variables });
    window.location.href = "/runs/" + run.run_id;
  } catch (error) {
    flash(error.message, "error", form);
  }
});

// The graph: drag from a block's port (the dot on its right) onto another block to connect
// them; click an edge to disconnect it. The form and the × on upstream chips do the same
// with the keyboard.
(() => {
  const svg = document.getElementById("dag");
  if (!svg || !svg.querySelector("circle.port")) return;
  const pipeline = svg.dataset.pipeline;
  const change = async (method, from, to) => {
    try {
      await api(method, `/pipelines/${pipeline}/edges`, { from, to });
      window.location.reload();
    } catch (error) {
      flash(error.message, "error", svg.parentElement);
    }
  };
  const point = (event) => {
    const at = svg.createSVGPoint();
    at.x = event.clientX;
    at.y = event.clientY;
    return at.matrixTransform(svg.getScreenCTM().inverse());
  };
  const nodeAt = (event) => document.elementFromPoint(event.clientX, event.clientY)?.closest("g.node");
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    const port = event.target.closest("circle.port");
    if (!port) return;
    event.preventDefault();
    const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
    line.setAttribute("class", "dragging");
    line.setAttribute("x1", port.getAttribute("cx"));
    line.setAttribute("y1", port.getAttribute("cy"));
    line.setAttribute("x2", port.getAttribute("cx"));
    line.setAttribute("y2", port.getAttribute("cy"));
    svg.appendChild(line);
    svg.setPointerCapture(event.pointerId);  // the drag's moves come here, even off the graph
    drag = { from: port.dataset.block, line, over: null };
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const at = point(event);
    drag.line.setAttribute("x2", at.x);
    drag.line.setAttribute("y2", at.y);
    const node = nodeAt(event);
    if (drag.over && drag.over !== node) drag.over.classList.remove("target");
    drag.over = node && node.dataset.block !== drag.from ? node : null;
    if (drag.over) drag.over.classList.add("target");
  });
  const endDrag = () => {
    const ended = drag;
    drag = null;
    ended.line.remove();
    if (ended.over) ended.over.classList.remove("target");
    return ended;
  };
  svg.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const { from } = endDrag();
    const node = nodeAt(event);
    if (node && node.dataset.block !== from) change("POST", from, node.dataset.block);
  });
  svg.addEventListener("pointercancel", () => { if (drag) endDrag(); });  // e.g. a scroll
  svg.querySelectorAll("path.edge-hit").forEach((edge) => {
    edge.addEventListener("click", () => {
      const { from, to } = edge.dataset;
      if (confirm(`Disconnect ${from} → ${to}?`)) change("DELETE", from, to);
    });
  });
})();

// A block reached from the graph (its #block-… link) gets the focus, so the keyboard and a
// screen reader continue from there.
function focusLinkedBlock() {
  const target = window.location.hash && document.getElementById(window.location.hash.slice(1));
  if (target && target.matches("article.block")) target.focus({ preventScroll: true });
}
window.addEventListener("hashchange", focusLinkedBlock);
