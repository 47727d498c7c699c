// Connections, secrets, files and settings: each control calls the JSON API and reloads
// (or says what went wrong in #flash).
"use strict";

async function thenReload(work) {
  try {
    await work();
    window.location.reload();
  } catch (error) {
    flash(error.message, "error");
  }
}

function each(selector, handler) {
  document.querySelectorAll(selector).forEach((element) => handler(element));
}

each(".test-connection", (button) => {
  button.addEventListener("click", async () => {
    const row = button.closest("tr");
    const result = row.querySelector(".result");
    result.textContent = "testing…";
    try {
      const answer = await api("POST", `/connections/${row.dataset.profile}/test`, {});
      result.textContent = answer.ok ? `ok: ${answer.where} (${answer.millis} ms)` : `failed: ${answer.error}`;
      result.className = "result " + (answer.ok ? "ok" : "error");
    } catch (error) {
      result.textContent = error.message;
      result.className = "result error";
    }
  });
});

on("new-secret", "submit", (event) => {
  event.preventDefault();
  const form = event.target;
  thenReload(() => api("PUT", `/secrets/${encodeURIComponent(form.name.value.trim())}`, { value: form.value.value }));
});
each(".delete-secret", (button) => button.addEventListener("click", () => {
  const name = button.closest("tr").dataset.secret;
  if (confirm(`Delete the secret ${name}? Profiles that use it stop working.`)) {
    thenReload(() => api("DELETE", `/secrets/${encodeURIComponent(name)}`));
  }
}));

on("new-token", "submit", async (event) => {
  event.preventDefault();
  try {
    const made = await api("POST", "/tokens", { name: event.target.name.value.trim() });
    document.getElementById("token-value").textContent = made.token;
    document.getElementById("token-made").hidden = false;
  } catch (error) {
    flash(error.message, "error");
  }
});
each(".revoke-token", (button) => button.addEventListener("click", () => {
  thenReload(() => api("DELETE", `/tokens/${button.closest("tr").dataset.token}`));
}));

on("new-user", "submit", (event) => {
  event.preventDefault();
  const form = event.target;
  thenReload(() => api("POST", "/users", { name: form.name.value.trim(), role: form.role.value, password: form.password.value }));
});
each(".user-role", (select) => select.addEventListener("change", () => {
  thenReload(() => api("PATCH", `/users/${select.closest("tr").dataset.user}`, { role: select.value }));
}));
each(".delete-user", (button) => button.addEventListener("click", () => {
  const name = button.closest("tr").dataset.user;
  if (confirm(`Delete ${name} with their tokens?`)) thenReload(() => api("DELETE", `/users/${name}`));
}));

const fileText = document.getElementById("file-text");
if (fileText) {
  const modes = { python: "python", sql: "text/x-sql", yaml: "yaml" };
  const editor = CodeMirror.fromTextArea(fileText, {
    mode: modes[fileText.dataset.mode] || null, lineNumbers: true, readOnly: fileText.readOnly,
  });
  editor.getInputField().setAttribute("aria-label", `Contents of ${fileText.dataset.path}`);
  const state = document.querySelector(".file .state");
  let dirty = false;
  editor.on("change", () => { dirty = true; if (state) state.textContent = "unsaved changes"; });
  window.addEventListener("beforeunload", (event) => { if (dirty) { event.preventDefault(); event.returnValue = ""; } });
  async function saveFile() {
    try {
      await api("PUT", "/files/content", { path: fileText.dataset.path, text: editor.getValue() });
      dirty = false;
      state.textContent = "saved";
    } catch (error) {
      state.textContent = "";
      flash(error.message, "error");
    }
  }
  editor.setOption("extraKeys", {
    "Ctrl-S": saveFile, "Cmd-S": saveFile, Esc: (cm) => cm.getInputField().blur(),
  });
  const button = document.getElementById("save-file");
  if (button) button.addEventListener("click", saveFile);
}
