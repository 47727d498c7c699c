// The backfills page: preview how many runs a backfill makes, then confirm; cancel.
"use strict";

function backfillBody(form) {
  return {
    pipeline: form.pipeline.value,
    start: form.start.value,
    end: form.end.value,
    every: form.every.value.trim() || "1d",
    concurrency: Number(form.concurrency.value) || 1,
  };
}

const backfillForm = document.getElementById("new-backfill");
if (backfillForm) {
  backfillForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const preview = await api("POST", "/backfills/preview", backfillBody(backfillForm));
      document.getElementById("b-summary").textContent =
        `${preview.total} runs of ${preview.pipeline}, from ${preview.first} to ${preview.last}.`;
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

document.querySelectorAll(".backfill-cancel, .backfill-retry").forEach((button) => {
  button.addEventListener("click", async () => {
    const id = button.closest("tr").dataset.backfill;
    const action = button.classList.contains("backfill-retry") ? "retry" : "cancel";
    try {
      await api("POST", `/backfills/${id}/${action}`, {});
      window.location.reload();
    } catch (error) {
      flash(error.message, "error");
    }
  });
});
