// The clinic portal's upload (issue #20): DICOM files, a folder or zip archives, each file sent
// to STOW-RS on its own (PS3.18 §10.5), so that every file gets its own answer; three at a
// time. Zip archives are read here (central directory, stored or deflated entries, with the
// browser's DecompressionStream); what cannot be read is said per archive.
(() => {
  "use strict";
  const root = document.getElementById("upload");
  if (!root) return;
  const words = JSON.parse(root.dataset.words || "{}");
  const w = (k) => words[k] || k;
  const csrf = root.dataset.csrf || "";
  const filesInput = document.getElementById("up-files");
  const folderInput = document.getElementById("up-folder");
  const start = document.getElementById("up-start");
  const chosen = document.getElementById("up-chosen");
  const progress = document.getElementById("up-progress");
  const count = document.getElementById("up-count");
  const summary = document.getElementById("up-summary");
  const table = document.getElementById("up-results");
  const tbody = table.querySelector("tbody");
  let picked = [];

  const pick = (input) => {
    picked = picked.concat(Array.from(input.files || []));
    chosen.textContent = picked.map((f) => f.webkitRelativePath || f.name).join(", ");
    start.disabled = picked.length === 0;
  };
  filesInput.addEventListener("change", () => pick(filesInput));
  folderInput.addEventListener("change", () => pick(folderInput));

  const isZip = (f) => /\.zip$/i.test(f.name) || f.type === "application/zip" || f.type === "application/x-zip-compressed";

  // A zip's entries from its central directory (APPNOTE 4.3.12, 4.3.16); zip64 and encrypted
  // archives are refused.
  async function zipEntries(file) {
    const buf = new DataView(await file.arrayBuffer());
    const n = buf.byteLength;
    let eocd = -1;
    for (let i = n - 22; i >= Math.max(0, n - 22 - 65535); i--) {
      if (buf.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
    }
    if (eocd < 0) throw new Error("no end of central directory");
    const total = buf.getUint16(eocd + 10, true);
    let p = buf.getUint32(eocd + 16, true);
    if (total === 0xffff || p === 0xffffffff) throw new Error("zip64");
    const out = [];
    for (let k = 0; k < total; k++) {
      if (p + 46 > n || buf.getUint32(p, true) !== 0x02014b50) throw new Error("bad central directory");
      const flags = buf.getUint16(p + 8, true);
      const method = buf.getUint16(p + 10, true);
      const size = buf.getUint32(p + 20, true);
      const nameLen = buf.getUint16(p + 28, true);
      const extraLen = buf.getUint16(p + 30, true);
      const commentLen = buf.getUint16(p + 32, true);
      const local = buf.getUint32(p + 42, true);
      const name = new TextDecoder((flags & 0x800) ? "utf-8" : "gbk", { fatal: false })
        .decode(new Uint8Array(buf.buffer, buf.byteOffset + p + 46, nameLen));
      p += 46 + nameLen + extraLen + commentLen;
      if (name.endsWith("/")) continue;
      if (flags & 0x1) throw new Error("encrypted");
      if (local + 30 > n || buf.getUint32(local, true) !== 0x04034b50) throw new Error("bad local header");
      const dataStart = local + 30 + buf.getUint16(local + 26, true) + buf.getUint16(local + 28, true);
      const raw = file.slice(dataStart, dataStart + size);
      if (method === 0) {
        out.push({ name: file.name + "/" + name, blob: () => Promise.resolve(raw) });
      } else if (method === 8) {
        out.push({
          name: file.name + "/" + name,
          blob: () => new Response(raw.stream().pipeThrough(new DecompressionStream("deflate-raw"))).blob(),
        });
      } else {
        throw new Error("compression method " + method);
      }
    }
    return out;
  }

  function row(name, state, text) {
    const tr = document.createElement("tr");
    tr.className = state;
    const a = document.createElement("td");
    a.textContent = name;
    const b = document.createElement("td");
    const s = document.createElement("strong");
    s.textContent = w(state === "stored" ? "up_stored" : state === "warned" ? "up_stored_warning" : state === "skipped" ? "up_skipped" : "up_refused");
    b.appendChild(s);
    if (text) b.appendChild(document.createTextNode(" — " + text));
    tr.append(a, b);
    tbody.appendChild(tr);
    table.hidden = false;
  }

  const reason = (code) => {
    const hex = code.toString(16).padStart(4, "0");
    return words["up_reason_" + hex] || w("up_reason_other") + " 0x" + hex.toUpperCase();
  };

  // One file through STOW-RS: its answer, or the problem the request met.
  async function send(blob) {
    const boundary = "huren-" + Math.random().toString(36).slice(2);
    const body = new Blob([
      "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n", blob,
      "\r\n--" + boundary + "--\r\n",
    ]);
    let r;
    try {
      r = await fetch("/dicom-web/studies", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": 'multipart/related; type="application/dicom"; boundary=' + boundary,
          Accept: "application/dicom+json",
          "X-CSRF-Token": csrf,
        },
        body,
      });
    } catch (e) {
      return { state: "refused", text: w("up_network") };
    }
    let json = null;
    try { json = await r.json(); } catch (e) { json = null; }
    if (json && json["00081199"]) {
      const item = json["00081199"].Value[0] || {};
      return { state: item["00081196"] ? "warned" : "stored", text: "" };
    }
    if (json && json["00081198"]) {
      const item = json["00081198"].Value[0] || {};
      const code = item["00081197"] ? item["00081197"].Value[0] : 0x0110;
      return { state: "refused", text: reason(code) };
    }
    // A problem+json answer (RFC 9457): the request as a whole was refused.
    return { state: "refused", text: (json && (json.detail || json.title)) || ("HTTP " + r.status) };
  }

  start.addEventListener("click", async () => {
    start.disabled = true;
    filesInput.disabled = folderInput.disabled = true;
    tbody.textContent = "";
    const queue = [];
    for (const f of picked) {
      const name = f.webkitRelativePath || f.name;
      if (isZip(f)) {
        try {
          for (const e of await zipEntries(f)) queue.push(e);
        } catch (e) {
          row(name, "refused", w("up_zip_bad"));
        }
      } else if (/(^|\/)DICOMDIR$/i.test(name)) {
        row(name, "skipped", w("up_dicomdir"));
      } else {
        queue.push({ name, blob: () => Promise.resolve(f) });
      }
    }
    const total = queue.length;
    let done = 0, stored = 0, refused = tbody.querySelectorAll("tr.refused").length;
    progress.max = Math.max(total, 1);
    const show = () => {
      progress.value = done;
      count.textContent = done + " / " + total;
    };
    show();
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        let res;
        try {
          res = await send(await item.blob());
        } catch (e) {
          res = { state: "refused", text: w("up_zip_bad") };
        }
        row(item.name, res.state, res.text);
        if (res.state === "refused") refused++; else stored++;
        done++;
        show();
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    summary.textContent = w("up_summary_stored") + " " + stored + " · " + w("up_summary_refused") + " " + refused;
    root.dataset.done = "1";
    picked = [];
    filesInput.value = folderInput.value = "";
    filesInput.disabled = folderInput.disabled = false;
  });
})();
