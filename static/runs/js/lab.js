// The lab page: each scenario's form starts a run through POST /api/runs/ and opens its page.

function csrfToken(form) {
  const input = form.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function readParams(form) {
  const params = {};
  for (const input of form.querySelectorAll("[data-param]")) {
    const name = input.dataset.param;
    switch (input.dataset.type) {
      case "bool":
        params[name] = input.checked;
        break;
      case "int":
      case "float":
        // An empty box takes the scenario's default; anything else goes to the server to judge.
        if (input.value.trim() !== "") params[name] = Number(input.value);
        break;
      default:
        params[name] = input.value;
    }
  }
  return params;
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
  const body = {
    lab: form.dataset.lab,
    scenario: form.dataset.scenario,
    params: readParams(form),
    speed: Number(form.elements.speed.value),
  };
  const seed = form.elements.seed.value.trim();
  if (seed !== "") body.seed = Number(seed);

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
  const typed = form.elements.seed.value.trim();
  // One seed for both runs, drawn here when none is given, so the two runs make the same choices.
  const seed = typed === "" ? Math.floor(Math.random() * 2 ** 31) : Number(typed);
  const params = readParams(form);
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
  form.addEventListener("submit", form.classList.contains("compare-form") ? submitCompare : submit);
}
