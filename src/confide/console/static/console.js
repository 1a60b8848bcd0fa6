// confide console: upload progress and live task states. Plain JS, no build step.
"use strict";

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

function setupUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("upload-file");
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    if (file.size > Number(form.dataset.max)) {
      status.textContent = "The file is larger than the console accepts.";
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/files/upload");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    bar.hidden = false;
    bar.value = 0;
    status.textContent = "Sending " + file.name + " to the console…";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        bar.value = Math.round((100 * e.loaded) / e.total);
        if (e.loaded === e.total) {
          status.textContent = "Encrypting " + file.name + " and uploading the ciphertext…";
        }
      }
    });
    xhr.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = {error: xhr.statusText}; }
      if (xhr.status === 200) {
        bar.value = 100;
        status.textContent = "Uploaded " + data.name + " as " + data.data_id + ".";
        status.dataset.dataId = data.data_id;
        window.setTimeout(() => window.location.assign("/files"), 800);
      } else {
        status.textContent = "Refused: " + (data.error || xhr.status);
      }
    });
    xhr.addEventListener("error", () => { status.textContent = "The upload failed."; });
    xhr.send(file);
  });
}

function setCell(row, field, text) {
  const cell = row.querySelector('[data-field="' + field + '"]');
  if (cell && cell.textContent !== text) cell.textContent = text;
}

function pollTasks() {
  const table = document.querySelector("table[data-live]");
  if (!table) return;
  const tick = async () => {
    try {
      const response = await fetch(table.dataset.live, {headers: {Accept: "application/json"}});
      if (response.ok) {
        for (const t of await response.json()) {
          const row = table.querySelector('tr[data-task="' + t.task_id + '"]');
          if (!row) continue;
          setCell(row, "status", t.status);
          row.querySelector('[data-field="status"]').className = "state state-" + t.status;
          setCell(row, "waiting_for", t.waiting_for.join(", "));
          setCell(row, "result", t.ok === true ? t.result : (t.ok === false ? t.reason : ""));
        }
      }
    } catch (e) { /* the console stopped: keep the last state */ }
    window.setTimeout(tick, 2000);
  };
  window.setTimeout(tick, 2000);
}

function pollTask() {
  const state = document.querySelector("#state[data-live]");
  if (!state) return;
  const initial = state.textContent;
  const tick = async () => {
    let again = true;
    try {
      const response = await fetch(state.dataset.live, {headers: {Accept: "application/json"}});
      if (response.ok) {
        const t = await response.json();
        state.textContent = t.status;
        state.className = "state state-" + t.status;
        if (t.final && t.status !== initial) {
          window.location.reload();  // the review shows the result, log and outputs
          again = false;
        } else if (t.final) {
          again = false;
        }
      }
    } catch (e) { /* keep the last state */ }
    if (again) window.setTimeout(tick, 1500);
  };
  window.setTimeout(tick, 1500);
}

document.addEventListener("DOMContentLoaded", () => {
  setupUpload();
  pollTasks();
  pollTask();
});
