// The review page: polls the session's state and posts the reviewer's decisions.
// Every server text is shown with textContent (never parsed as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
let shownProposal = null;   // id of the proposal on screen
let shownGenes = "";        // genes in the edit menu
let lastDecisions = -1;
let lastStory = -1;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function setButtons(enabled) {
  for (const id of ["approve", "reject", "edit", "stop"]) $(id).disabled = !enabled;
}

function renderProposal(p) {
  const list = $("hypotheses");
  list.replaceChildren();
  if (!p) {
    $("proposal-title").textContent = "no proposal waiting";
    $("proposal-reason").textContent = "";
    $("open-questions").textContent = "";
    return;
  }
  $("proposal-title").textContent =
    `[${p.step}] ${p.kind} ${p.gene} × ${p.replicates} replicates (cost ${p.cost.toFixed(2)})`;
  $("proposal-reason").textContent = `why: ${p.reason}`;
  $("open-questions").textContent = `open edge questions: ${p.open_questions}`;
  $("hypotheses-heading").textContent = `What the literature says about ${p.gene}`;
  if (p.hypotheses.length === 0) {
    list.append(el("li", `no literature retrieved about ${p.gene}`, "empty"));
  }
  for (const h of p.hypotheses) {
    const item = el("li", undefined, "hypothesis");
    item.append(el("strong", h.text));
    const kind = h.status.startsWith("rejected") ? "rejected" : h.status.startsWith("confirmed") ? "confirmed" : "";
    item.append(el("span", h.status, `status ${kind}`));
    item.append(el("span", ` confidence ${h.confidence.toFixed(2)}`, "confidence"));
    for (const text of h.passages) item.append(el("p", text, "passage supports"));
    for (const text of h.contradicting) item.append(el("p", text, "passage contradicts"));
    list.append(item);
  }
  $("edit-gene").value = p.gene;
  $("edit-kind").value = p.kind === "knockout" ? "overexpress" : "knockout";
}

function renderMenus(genes, kinds) {
  const key = genes.join(",");
  if (key === shownGenes) return;
  shownGenes = key;
  $("edit-gene").replaceChildren(...genes.map((g) => { const o = el("option", g); o.value = g; return o; }));
  $("edit-kind").replaceChildren(...kinds.map((k) => { const o = el("option", k); o.value = k; return o; }));
}

function renderDecisions(entries) {
  if (entries.length === lastDecisions) return;
  lastDecisions = entries.length;
  const body = $("decisions").tBodies[0];
  body.replaceChildren(...entries.map((d) => {
    const row = el("tr");
    row.dataset.action = d.action;
    for (const cell of [d.step, d.proposed, d.action, d.experiment, d.note]) row.append(el("td", String(cell)));
    return row;
  }));
}

function renderResult(state) {
  const panel = $("result-panel");
  if (!state.result) { panel.hidden = true; return; }
  panel.hidden = false;
  const r = state.result;
  const reached = r.experiments_to_target === null
    ? `did not reach F1 ≥ ${r.target_f1} within ${r.experiments} experiments`
    : `reached F1 ≥ ${r.target_f1} after ${r.experiments_to_target} experiments`;
  $("result").textContent = `${r.experiments} experiments; ${reached}; final edge F1 ${r.f1.toFixed(2)} ` +
    `(precision ${r.precision.toFixed(2)}, recall ${r.recall.toFixed(2)})`;
  $("outputs").replaceChildren(...Object.entries(state.outputs).map(([k, v]) => el("li", `${k}: ${v}`)));
}

function render(state) {
  $("seed").textContent = `(world seed ${state.seed})`;
  $("phase").textContent = state.phase;
  $("phase").className = `phase ${state.phase}`;
  $("message").textContent = state.message;
  $("split-help").textContent = state.split_score_help;
  renderMenus(state.genes, state.kinds);
  const id = state.proposal ? state.proposal.id : null;
  if (id !== shownProposal) {
    shownProposal = id;
    renderProposal(state.proposal);
  }
  setButtons(id !== null);
  renderDecisions(state.decisions);
  if (state.story.length !== lastStory) {
    lastStory = state.story.length;
    $("story").textContent = state.story.join("\n");
    $("story").scrollTop = $("story").scrollHeight;
  }
  renderResult(state);
}

async function poll() {
  try {
    const response = await fetch("/api/state", { cache: "no-store" });
    if (response.ok) render(await response.json());
  } catch (err) {
    $("phase").textContent = "disconnected";
    $("phase").className = "phase failed";
  }
  setTimeout(poll, 600);
}

async function decide(action) {
  if (shownProposal === null) return;
  const body = { proposal_id: shownProposal, action: action };
  const note = $("note").value.trim();
  if (note && action !== "approve") body.note = note;
  if (action === "edit") { body.gene = $("edit-gene").value; body.kind = $("edit-kind").value; }
  setButtons(false);
  const response = await fetch("/api/decision", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  $("feedback").textContent = response.ok ? `last decision: ${answer.status}` : `refused: ${JSON.stringify(answer.detail)}`;
  if (response.ok) $("note").value = "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("approve").addEventListener("click", () => decide("approve"));
  $("reject").addEventListener("click", () => decide("reject"));
  $("edit").addEventListener("click", () => decide("edit"));
  $("stop").addEventListener("click", () => decide("stop"));
  poll();
});
