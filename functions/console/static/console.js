// Progressive enhancement only: every page and action works without this file.
// Action forms ask once more in a dialog before posting (the server still requires the checkbox), and a
// submitted form disables its button so a double click cannot post twice (the idempotency key would
// make the second post a no-op anyway).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.classList.contains("action")) return;
  if (form.dataset.sent) { event.preventDefault(); return; }
  if (!window.confirm(`${form.dataset.confirm}?`)) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; });
});
