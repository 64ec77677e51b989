// The lab page: each scenario's form starts a run through POST /api/runs/ and opens its page.

function csrfToken(form) {
  const input = form.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

// A number box as the run gets it: {} when empty (the scenario's default), {value}, or {error}
// in the words the server uses. A browser reports what it cannot read as a number ("1e", "--5")
// as an empty value, so only `validity.badInput` tells it apart from an empty box; letters it
// drops without a trace (see noteDroppedKeys).
function readNumber(input, integer) {
  if (input.validity.badInput || input.dataset.dropped === "true") {
    return { error: integer ? "must be an integer" : "must be a number" };
  }
  const text = input.value.trim();
  if (text === "") return {};
  const value = Number(text);
  // JSON has no Infinity: 1e999 would be sent as null, so the server judges the text instead.
  return { value: Number.isFinite(value) ? value : text };
}

// The form's parameters, and a message per field the browser could not read.
function readParams(form) {
  const params = {};
  const errors = {};
  for (const input of form.querySelectorAll("[data-param]")) {
    const name = input.dataset.param;
    switch (input.dataset.type) {
      case "bool":
        params[name] = input.checked;
        break;
      case "int":
      case "float": {
        const number = readNumber(input, input.dataset.type === "int");
        if (number.error) errors[name] = [number.error];
        else if ("value" in number) params[name] = number.value;
        break;
      }
      default:
        params[name] = input.value;
    }
  }
  return { params, errors };
}

// Chromium drops what a number cannot hold ("abc") before it reaches the box: the value stays as
// it was and validity.badInput stays false. Remember the dropped keys until the box changes, so
// "abc" is refused rather than read as an empty box, which would start the run with the default.
function noteDroppedKeys(input) {
  input.addEventListener("beforeinput", (event) => {
    if (event.data && /[^0-9eE+\-.,\s]/.test(event.data)) input.dataset.dropped = "true";
  });
  input.addEventListener("input", () => delete input.dataset.dropped);
}

function clearErrors(form) {
  for (const el of form.querySelectorAll("[data-error-for]")) {
    el.textContent = "";
    el.hidden = true;
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showError(form, field, messages) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
  const text = [].concat(messages).join(" ");
  if (slot && field !== "__all__") {
    slot.textContent = text;
    slot.hidden = false;
    const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
    return;
  }
  const all = form.querySelector('[data-error-for="__all__"]');
  const p = document.createElement("p");
  p.textContent = field === "__all__" ? text : `${field}: ${text}`;
  all.append(p);
  all.hidden = false;
}

function showErrors(form, body) {
  for (const [field, messages] of Object.entries(body || {})) {
    if (field === "params" && messages && !Array.isArray(messages) && typeof messages === "object") {
      for (const [param, paramMessages] of Object.entries(messages)) showError(form, param, paramMessages);
    } else if (field === "detail" || field === "non_field_errors") {
      showError(form, "__all__", messages);
    } else {
      showError(form, field, messages);
    }
  }
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  const pending = form.querySelector("[data-role=pending]");
  clearErrors(form);
  const { params, errors } = readParams(form);
  const body = {
    lab: form.dataset.lab,
    scenario: form.dataset.scenario,
    params,
    speed: Number(form.elements.speed.value),
  };
  const seed = readNumber(form.elements.seed, true);
  if (seed.error) errors.seed = [seed.error];
  else if ("value" in seed) body.seed = seed.value;
  if (form.elements.keep && form.elements.keep.checked) body.keep = true;
  // What the browser could not read is refused here: sent, it would be an empty box, the default.
  if (Object.keys(errors).length) {
    showErrors(form, errors);
    return;
  }

  button.disabled = true;
  pending.textContent = "Starting…";
  try {
    const response = await fetch(form.dataset.api, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken(form) },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 201 && answer.url) {
      pending.textContent = `Run ${answer.id} queued, opening it…`;
      window.location.assign(answer.url);
      return;
    }
    if (response.status === 400) showErrors(form, answer);
    else if (answer.detail) showError(form, "__all__", answer.detail);
    else showError(form, "__all__", `The server answered ${response.status}.`);
  } catch (error) {
    showError(form, "__all__", `Could not reach the server: ${error.message}`);
  }
  pending.textContent = "";
  button.disabled = false;
}

async function post(form, body) {
  const response = await fetch(form.dataset.api, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken(form) },
    body: JSON.stringify(body),
  });
  return { response, answer: await response.json().catch(() => ({})) };
}

// The compare form starts two scenarios with the same seed and parameters, then opens the
// compare page on both runs.
async function submitCompare(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  const pending = form.querySelector("[data-role=pending]");
  clearErrors(form);
  const { params, errors } = readParams(form);
  const typed = readNumber(form.elements.seed, true);
  if (typed.error) errors.seed = [typed.error];
  if (Object.keys(errors).length) {
    showErrors(form, errors);
    return;
  }
  // One seed for both runs, drawn here when none is given, so the two runs make the same choices.
  const seed = "value" in typed ? typed.value : Math.floor(Math.random() * 2 ** 31);
  button.disabled = true;
  const ids = [];
  try {
    for (const side of ["a", "b"]) {
      const scenario = form.dataset[side];
      // A side may add parameters of its own scenario (data-a-params, data-b-params).
      const own = JSON.parse(form.dataset[`${side}Params`] || "{}");
      pending.textContent = `Starting ${scenario}…`;
      const body = { lab: form.dataset.lab, scenario, params: { ...params, ...own }, seed, speed: 2 };
      const { response, answer } = await post(form, body);
      if (response.status !== 201) {
        if (response.status === 400) showErrors(form, answer);
        else showError(form, "__all__", answer.detail || `The server answered ${response.status} for ${scenario}.`);
        break;
      }
      ids.push(answer.id);
    }
    if (ids.length === 2) {
      pending.textContent = `Runs ${ids[0]} and ${ids[1]} queued, opening the comparison…`;
      window.location.assign(`${form.dataset.compare}?a=${ids[0]}&b=${ids[1]}`);
      return;
    }
  } catch (error) {
    showError(form, "__all__", `Could not reach the server: ${error.message}`);
  }
  pending.textContent = ids.length ? `Run ${ids[0]} started; the second did not.` : "";
  button.disabled = false;
}

for (const form of document.querySelectorAll("form.run-form")) {
  for (const input of form.querySelectorAll("input[type=number]")) noteDroppedKeys(input);
  form.addEventListener("submit", form.classList.contains("compare-form") ? submitCompare : submit);
}
