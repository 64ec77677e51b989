// The run history's compare picker: once one run is chosen, the other list offers only runs of the
// same lab (the compare page refuses two labs), and Compare waits until two different runs are chosen.

const form = document.querySelector(".compare-pick");
const a = form.querySelector("#compare-a");
const b = form.querySelector("#compare-b");
const open = form.querySelector("[data-testid=compare-open]");
const hint = form.querySelector("[data-role=hint]");

function labOf(select) {
  return select.selectedOptions[0]?.dataset.lab || "";
}

// Grey out, in `other`, the runs that cannot go with the one chosen in `chosen`.
function narrow(chosen, other) {
  const lab = labOf(chosen);
  for (const option of other.querySelectorAll("option[data-lab]")) {
    option.disabled = Boolean(lab) && (option.dataset.lab !== lab || option.value === chosen.value);
  }
  if (other.selectedOptions[0]?.disabled) other.value = "";
}

function update(changed) {
  narrow(changed, changed === a ? b : a);
  const ready = a.value && b.value;
  open.disabled = !ready;
  hint.textContent = ready
    ? `Run #${a.value} and run #${b.value} (${labOf(a)}), side by side.`
    : labOf(a) || labOf(b)
      ? `Now a second ${labOf(a) || labOf(b)} run.`
      : "Two runs of the same lab, side by side, each live while it runs.";
}

a.addEventListener("change", () => update(a));
b.addEventListener("change", () => update(b));
open.disabled = !(a.value && b.value);
