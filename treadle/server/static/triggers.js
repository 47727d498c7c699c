// The triggers page: enable/disable, new API tokens, and a new trigger whose next five
// fire times are previewed (by the server, as creating it would check it) as you type.
"use strict";

function triggerBody(form) {
  const body = { name: form.name.value.trim() || "preview" };
  if (form.kind.value === "api") return { ...body, type: "api" };
  const schedule = form.schedule.value.trim();
  // "every 15m" is an interval; anything else ("0 6 * * *", "@daily", "every day at 6") is
  // checked as a cron or a preset, so a mistake is explained in cron's terms.
  const interval = schedule.match(/^every\s+(\d.*)$/i);
  if (interval) body.every = interval[1];
  else body.schedule = schedule;
  if (form.timezone.value.trim()) body.timezone = form.timezone.value.trim();
  if (form.start.value.trim()) body.start = form.start.value.trim();
  return body;
}

// The trigger's other keys (variables, catchup, end …) are kept; the form's replace theirs.
function editedBody(form) {
  const kept = JSON.parse(form.dataset.spec || "{}");
  const changed = triggerBody(form);
  delete kept.schedule;
  delete kept.every;
  delete kept.start;
  return { ...kept, ...changed };
}

let previewTimer = null;
async function preview(form) {
  const list = document.getElementById("t-preview");
  if (form.kind.value === "api") {
    list.innerHTML = "<li>an API trigger fires when called</li>";
    return;
  }
  try {
    const path = `/pipelines/${form.pipeline.value}/triggers/preview?count=5`;
    const answer = await api("POST", path, triggerBody(form));
    list.innerHTML = "";
    answer.fire_times.forEach((time) => {
      const item = document.createElement("li");
      item.textContent = time;
      list.appendChild(item);
    });
  } catch (error) {
    list.innerHTML = "";
    const item = document.createElement("li");
    item.className = "error";
    item.textContent = error.message;
    list.appendChild(item);
  }
}

const triggerForm = document.getElementById("new-trigger");

// Editing fills the form with the trigger's keys; saving then replaces it (PUT).
document.querySelectorAll(".trigger-edit").forEach((button) => {
  button.addEventListener("click", () => {
    const row = button.closest("tr");
    const spec = JSON.parse(row.dataset.spec);
    triggerForm.pipeline.value = row.dataset.pipeline;
    triggerForm.name.value = row.dataset.trigger;
    triggerForm.name.readOnly = true;
    triggerForm.kind.value = "schedule";
    triggerForm.schedule.value = spec.schedule || (spec.every ? `every ${spec.every}` : "");
    triggerForm.timezone.value = spec.timezone || "UTC";
    triggerForm.start.value = spec.start || "";
    triggerForm.dataset.editing = row.dataset.trigger;
    triggerForm.dataset.spec = row.dataset.spec;
    triggerForm.querySelector("button[type=submit]").textContent = "Save trigger";
    document.getElementById("t-cancel-edit").hidden = false;
    document.getElementById("trigger-form-title").textContent = `Edit ${row.dataset.trigger}`;
    preview(triggerForm);
    triggerForm.scrollIntoView();
  });
});

on("t-cancel-edit", "click", () => window.location.reload());  // the form as it was

if (triggerForm) {
  triggerForm.addEventListener("input", () => {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => preview(triggerForm), 250);
  });
  preview(triggerForm);
  triggerForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const editing = triggerForm.dataset.editing;
    const base = `/pipelines/${triggerForm.pipeline.value}/triggers`;
    try {
      if (editing) await api("PUT", `${base}/${editing}`, editedBody(triggerForm));
      else await api("POST", base, triggerBody(triggerForm));
      const name = editing || triggerForm.name.value.trim();
      flashAfterReload(`Trigger ${name} of ${triggerForm.pipeline.value} ${editing ? "saved" : "added"}.`);
    } catch (error) {
      flash(error.message, "error", triggerForm);
    }
  });
}

document.querySelectorAll(".trigger-action").forEach((button) => {
  button.addEventListener("click", async () => {
    const row = button.closest("tr");
    const base = `/pipelines/${row.dataset.pipeline}/triggers/${row.dataset.trigger}`;
    try {
      if (button.dataset.action === "delete") {
        if (!confirm(`Delete trigger ${row.dataset.trigger} of ${row.dataset.pipeline}? It is removed from its triggers.yaml.`)) return;
        await api("DELETE", base);
        window.location.reload();
      } else if (button.dataset.action === "token") {
        const made = await api("POST", base + "/token", {});
        document.getElementById("token-curl").textContent =
          `curl -X POST -H "Authorization: Bearer ${made.token}" -H "Content-Type: application/json" -d '{"variables": {}}' ${made.url}`;
        document.getElementById("token-box").hidden = false;
      } else {
        await api("POST", `${base}/${button.dataset.action}`, {});
        window.location.reload();
      }
    } catch (error) {
      flash(error.message, "error");
    }
  });
});
