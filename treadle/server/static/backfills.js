// The backfills page: preview how many runs a backfill makes, then confirm; cancel.
"use strict";

// An ISO time as short as it can be said: the day alone at midnight UTC, no milliseconds.
function shortTime(iso) {
  return (iso || "").replace(/\.000Z$/, "Z").replace(/T00:00:00Z$/, "");
}

function backfillBody(form) {
  const text = form.variables.value.trim();
  let variables = {};
  try {
    variables = text ? JSON.parse(text) : {};
  } catch (error) {
    throw new Error("the variables are not JSON: " + error.message);
  }
  return {
    pipeline: form.pipeline.value,
    start: form.start.value,
    end: form.end.value,
    every: form.every.value.trim() || "1d",
    concurrency: Number(form.concurrency.value) || 1,
    variables,
  };
}

const backfillForm = document.getElementById("new-backfill");
if (backfillForm) {
  backfillForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const preview = await api("POST", "/backfills/preview", backfillBody(backfillForm));
      const more = preview.total > preview.first_dates.length ? ", …" : "";
      const dates = preview.first_dates.map(shortTime).join(", ");
      document.getElementById("b-summary").textContent =
        `${preview.total} runs of ${preview.pipeline}, from ${shortTime(preview.first)} to ` +
        `${shortTime(preview.last)}` + (preview.total ? `: ${dates}${more}` : "") + ".";
      document.getElementById("b-confirm").hidden = false;
    } catch (error) {
      flash(error.message, "error", backfillForm);
    }
  });
  document.getElementById("b-create").addEventListener("click", async () => {
    try {
      await api("POST", "/backfills", backfillBody(backfillForm));
      window.location.reload();
    } catch (error) {
      flash(error.message, "error", backfillForm);
    }
  });
}

// One listener for the whole page: the list is swapped in anew while backfills run.
document.body.addEventListener("click", async (event) => {
  const button = event.target.closest(".backfill-cancel, .backfill-retry");
  if (!button) return;
  const id = button.closest("tr").dataset.backfill;
  const action = button.classList.contains("backfill-retry") ? "retry" : "cancel";
  try {
    await api("POST", `/backfills/${id}/${action}`, {});
    window.location.reload();
  } catch (error) {
    flash(error.message, "error");
  }
});
