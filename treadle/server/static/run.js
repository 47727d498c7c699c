// A run's page while the run is active: log lines arrive through the run's event stream
// and are appended under their block; when a status changes, the status, timeline and
// block table (#run-live) are fetched again.
"use strict";

(() => {
  const logs = document.getElementById("run-logs");
  if (!logs || logs.dataset.follow !== "1") return;

  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      htmx.trigger("#run-live", "run-changed");
    }, 150);
  };

  function logOf(block) {
    const details = [...logs.querySelectorAll("details")].find((d) => d.dataset.block === block);
    if (!details) {
      const [made, pre] = logBox("Log of " + block);
      made.dataset.block = block;
      logs.append(made);
      logs.querySelectorAll("p.empty").forEach((p) => p.remove());
      return pre;
    }
    let pre = details.querySelector("pre.log");
    if (!pre) {  // it said "Nothing logged." when the page was made
      details.querySelectorAll("p.nothing").forEach((p) => p.remove());
      pre = logBox("")[1];
      details.append(pre);
    }
    return pre;
  }

  function append(pre, line) {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(line + "\n");
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  followRun(logs.dataset.run, {
    onConnect: () => logs.querySelectorAll("pre.log").forEach((pre) => { pre.textContent = ""; }),
    onLog: (line) => append(logOf(line.block), line.line),
    onStatus: refresh,
    onEnd: (end) => {
      refresh();
      flash(`The run ${end.status}.`, end.status === "succeeded" ? "ok" : "error");
    },
    onLost: () => flash("Lost the connection to the run: reload the page to see where it is.", "error"),
  });
})();
