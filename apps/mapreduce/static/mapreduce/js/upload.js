// The MapReduce lab page: a scenario form's file input uploads the file (POST
// /api/mapreduce/uploads/), then fills the scenario's `upload` parameter with the token and sets
// `input` to "upload", so the next Run reads that file.

import { formatBytes } from "./bytes.js";

function csrfToken(form) {
  const input = form.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function setStatus(field, text) {
  const status = field.querySelector("[data-role=upload-status]");
  status.textContent = text;
  status.hidden = !text;
}

function setError(field, text) {
  const slot = field.querySelector('[data-error-for="file"]');
  slot.textContent = text;
  slot.hidden = !text;
  const input = field.querySelector("input[type=file]");
  if (text) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

async function upload(event) {
  const input = event.currentTarget;
  const field = input.closest(".mr-upload");
  const form = input.closest("form");
  const file = input.files[0];
  setError(field, "");
  if (!file) {
    setStatus(field, "");
    return;
  }
  const tokenInput = form.querySelector('[data-param="upload"]');
  const choice = form.querySelector('[data-param="input"]');
  const button = form.querySelector("button[type=submit]");
  const body = new FormData();
  body.append("file", file, file.name);
  setStatus(field, `Uploading ${file.name}…`);
  button.disabled = true;
  try {
    const response = await fetch(field.dataset.uploadApi, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken(form) },
      body,
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 201) {
      if (tokenInput) tokenInput.value = answer.token;
      if (choice) choice.value = "upload";
      for (const el of [tokenInput, choice]) if (el) el.dispatchEvent(new Event("change", { bubbles: true }));
      setStatus(field, `Uploaded ${answer.name}: ${formatBytes(answer.bytes)}, ${answer.lines.toLocaleString("en")} lines. Input is set to this file.`);
    } else {
      const message = (answer.file && [].concat(answer.file).join(" ")) || answer.detail || `The server answered ${response.status}.`;
      setStatus(field, "");
      setError(field, message);
    }
  } catch (error) {
    setStatus(field, "");
    setError(field, `Could not reach the server: ${error.message}`);
  }
  button.disabled = false;
}

for (const input of document.querySelectorAll(".mr-upload input[type=file]")) {
  input.addEventListener("change", upload);
}
