// The try-it page: plain JavaScript against the service's own API (no build step, no CDN).
"use strict";

const $ = (id) => document.getElementById(id);
let impressionId = null;

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function label(item) {
  return (item.title || "(no title)") + " — #" + item.item_id;
}

async function loadUsers() {
  const body = await api("/users?limit=50");
  const list = $("known-users");
  for (const id of body.users) {
    const option = document.createElement("option");
    option.value = id;
    list.appendChild(option);
  }
  if (!$("user").value && body.users.length) $("user").value = body.users[0];
}

async function refreshCtr() {
  const model = await api("/model");
  const rows = $("ctr").querySelector("tbody");
  rows.replaceChildren();
  for (const [version, ctr] of Object.entries(model.ctr_by_version)) {
    const row = document.createElement("tr");
    row.dataset.version = version;
    const shown = model.impressions_by_version[version] || 0;
    for (const text of [version, String(shown), ctr.toFixed(3)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    rows.appendChild(row);
  }
}

async function click(item, button) {
  try {
    const body = await api("/feedback", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ impression_id: impressionId, clicks: [item.item_id] }),
    });
    button.classList.add("clicked");
    setStatus(body.accepted ? "click recorded for model " + body.model_version
                            : "already clicked: counted once", false);
    await refreshCtr();
  } catch (error) {
    setStatus("feedback refused: " + error.message, true);
  }
}

async function recommend(event) {
  event.preventDefault();
  const user = $("user").value.trim();
  const k = $("k").value || "10";
  if (!/^\d+$/.test(user)) {
    setStatus("a user id is a non-negative whole number", true);
    return;
  }
  try {
    const [history, recs] = await Promise.all([
      api("/users/" + user + "/history?n=10"),
      api("/recommendations/" + user + "?k=" + encodeURIComponent(k)),
    ]);
    $("history").replaceChildren(...history.items.map((item) => {
      const li = document.createElement("li");
      li.textContent = label(item);
      return li;
    }));
    if (!history.known) setStatus("unknown user: cold start (popular items)", false);
    else setStatus("", false);
    impressionId = recs.impression_id;
    $("served-by").textContent = "model " + recs.model_version + " · " + recs.source;
    $("recommendations").replaceChildren(...recs.items.map((item) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "item";
      button.dataset.itemId = item.item_id;
      button.textContent = label(item);
      button.addEventListener("click", () => click(item, button));
      li.appendChild(button);
      return li;
    }));
    await refreshCtr();
  } catch (error) {
    setStatus(error.message, true);
  }
}

$("pick").addEventListener("submit", recommend);
loadUsers().then(refreshCtr).catch((error) => setStatus(error.message, true));
