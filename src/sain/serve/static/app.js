// The sain page: upload a photo, POST /v1/compare, show original / SAIN / bicubic at the same bytes.
// Plain JS, no build step, no network beyond this server.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { file: null, result: null, zoom: 1, pos: 0.5, width: 0, height: 0, syncing: false };

function headers() {
  const t = $("token").value.trim();
  return t ? { Authorization: "Bearer " + t } : {};
}

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function loadModels() {
  const health = await (await fetch("/healthz")).json();
  $("token-row").hidden = !health.auth;
  $("token").value = localStorage.getItem("sain-token") || "";
  const r = await fetch("/v1/models", { headers: headers() });
  const body = await r.json();
  if (!r.ok) { setStatus(body.error || r.statusText, true); return; }
  $("model").innerHTML = "";
  for (const m of body.models) {
    const o = new Option(`${m.name} (x${m.scale})`, m.name, m.name === body.default, m.name === body.default);
    o.title = m.description;
    $("model").add(o);
  }
  $("format").innerHTML = "";
  for (const f of body.formats) $("format").add(new Option(f, f, f === "jpeg", f === "jpeg"));
}

function pickFile(file) {
  if (!file) return;
  state.file = file;
  $("drop-text").textContent = `${file.name} (${file.size.toLocaleString()} bytes)`;
  $("run").disabled = false;
  compare();
}

async function compare() {
  if (!state.file) return;
  localStorage.setItem("sain-token", $("token").value.trim());
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  form.append("model", $("model").value);
  form.append("format", $("format").value);
  form.append("quality", $("quality").value);
  $("run").disabled = true;
  setStatus("encoding, restoring and matching bicubic's bytes…");
  const t0 = performance.now();
  try {
    const r = await fetch("/v1/compare", { method: "POST", body: form, headers: headers() });
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) {
      const retry = r.headers.get("Retry-After");
      setStatus(`error ${r.status}: ${body.error}` + (retry ? ` (retry in ${retry} s)` : ""), true);
      return;
    }
    await show(body);
    setStatus(`done in ${((performance.now() - t0) / 1000).toFixed(2)} s: ${body.width}×${body.height}, ` +
      `x${body.scale}, ${body.format.toUpperCase()}`);
  } catch (e) {
    setStatus("error: " + e, true);
  } finally {
    $("run").disabled = false;
  }
}

function loaded(img, url) {
  return new Promise((ok, fail) => { img.onload = ok; img.onerror = () => fail(new Error("cannot load " + url)); img.src = url; });
}

const fmt = (v, d) => (v === null || v === undefined ? "–" : v.toFixed(d));

async function show(res) {
  state.result = res;
  state.width = res.width; state.height = res.height;
  $("result").hidden = false;
  await Promise.all([
    loaded($("img-original"), res.urls.original),
    loaded($("img-sain"), res.urls.sain),
    loaded($("img-bicubic"), res.urls.bicubic),
  ]);
  chooseSides();
  const tbody = $("metrics").tBodies[0];
  tbody.innerHTML = "";
  for (const [label, m] of [["SAIN (" + res.model + ")", res.sain], ["bicubic", res.bicubic]]) {
    const tr = tbody.insertRow();
    tr.dataset.method = m === res.sain ? "sain" : "bicubic";
    for (const v of [label, m.quality, m.bytes.toLocaleString(), fmt(m.bpp, 3), fmt(m.psnr_y, 2), fmt(m.ssim_y, 4)]) {
      tr.insertCell().textContent = v;
    }
  }
  $("cap-original").textContent = `${res.width}×${res.height}`;
  $("cap-sain").textContent = `${res.sain.bytes.toLocaleString()} B, ${fmt(res.sain.psnr_y, 2)} dB`;
  $("cap-bicubic").textContent = `${res.bicubic.bytes.toLocaleString()} B, ${fmt(res.bicubic.psnr_y, 2)} dB`;
  const stem = (state.file ? state.file.name.replace(/\.[^.]*$/, "") : "photo") || "photo";
  const ext = res.urls.thumbnail.split(".").pop();
  $("downloads").innerHTML = "";
  for (const [text, url, name] of [
    [`thumbnail (${res.thumbnail_bytes.toLocaleString()} B)`, res.urls.thumbnail, `${stem}.${ext}`],
    ["SAIN restored (PNG)", res.urls.sain, `${stem}.png`],
    ["bicubic restored (PNG)", res.urls.bicubic, `${stem}.bicubic.png`],
  ]) {
    const a = document.createElement("a");
    a.href = url; a.download = name; a.textContent = "⬇ " + text;
    $("downloads").append(a);
  }
  const fit = Math.floor(Math.min($("compare").clientWidth / res.width, $("compare").clientHeight / res.height));
  setZoom(Math.max(1, Math.min(8, fit)));
}

function chooseSides() {
  if (!state.result) return;
  const u = state.result.urls;
  const url = { original: u.original, sain: u.sain, bicubic: u.bicubic };
  $("img-left").src = url[$("left").value];
  $("img-right").src = url[$("right").value];
  $("tag-left").textContent = $("left").selectedOptions[0].textContent;
  $("tag-right").textContent = $("right").selectedOptions[0].textContent;
}

function setZoom(z) {
  state.zoom = z;
  $("zoom").value = z;
  $("zoom-value").textContent = z + "×";
  const w = state.width * z, h = state.height * z;
  for (const img of document.querySelectorAll("#stage img, .panel img")) {
    img.style.width = w + "px"; img.style.height = h + "px";
  }
  $("stage").style.width = w + "px"; $("stage").style.height = h + "px";
  document.body.classList.toggle("zoomed", z > 1);
  for (const v of document.querySelectorAll(".viewport")) v.classList.toggle("zoomed", z > 1);
  setPos(state.pos);
}

// the divider sits at a fraction of the visible area; the clip is in image coordinates
function setPos(p) {
  state.pos = Math.min(1, Math.max(0, p));
  $("slider").value = Math.round(state.pos * 100);
  const vp = $("compare");
  const shown = Math.min(vp.clientWidth, state.width * state.zoom);
  const x = state.pos * shown;
  $("divider").style.left = x + "px";
  const clip = ((vp.scrollLeft + x) / (state.width * state.zoom || 1)) * 100;
  $("img-right").style.setProperty("--pos", clip.toFixed(3) + "%");
}

function dragDivider(ev) {
  const vp = $("compare");
  const r = vp.getBoundingClientRect();
  const shown = Math.min(vp.clientWidth, state.width * state.zoom) || 1;
  setPos((ev.clientX - r.left) / shown);
}

// every viewport shows the same place of the image: scroll one, the others follow
function syncScroll(src) {
  if (state.syncing) return;
  state.syncing = true;
  for (const v of document.querySelectorAll(".viewport")) {
    if (v !== src) { v.scrollLeft = src.scrollLeft; v.scrollTop = src.scrollTop; }
  }
  setPos(state.pos);
  requestAnimationFrame(() => { state.syncing = false; });
}

function panOnDrag(vp) {
  let last = null;
  vp.addEventListener("pointerdown", (e) => { last = [e.clientX, e.clientY]; vp.setPointerCapture(e.pointerId); });
  vp.addEventListener("pointermove", (e) => {
    if (!last) return;
    vp.scrollLeft -= e.clientX - last[0]; vp.scrollTop -= e.clientY - last[1];
    last = [e.clientX, e.clientY];
  });
  vp.addEventListener("pointerup", () => { last = null; });
}

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", () => pickFile($("file").files[0]));
  for (const t of ["dragenter", "dragover"]) drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const t of ["dragleave", "drop"]) drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  drop.addEventListener("drop", (e) => pickFile(e.dataTransfer.files[0]));
  $("form").addEventListener("submit", (e) => { e.preventDefault(); compare(); });
  $("quality").addEventListener("input", () => { $("quality-value").textContent = $("quality").value; });
  $("left").addEventListener("change", chooseSides);
  $("right").addEventListener("change", chooseSides);
  $("zoom").addEventListener("input", () => setZoom(Number($("zoom").value)));
  $("slider").addEventListener("input", () => setPos(Number($("slider").value) / 100));
  const vp = $("compare");
  let dragging = false;
  vp.addEventListener("pointerdown", (e) => { dragging = true; vp.setPointerCapture(e.pointerId); dragDivider(e); });
  vp.addEventListener("pointermove", (e) => { if (dragging) dragDivider(e); });
  vp.addEventListener("pointerup", () => { dragging = false; });
  for (const v of document.querySelectorAll(".viewport")) v.addEventListener("scroll", () => syncScroll(v));
  for (const v of document.querySelectorAll(".panel")) panOnDrag(v);
  window.addEventListener("resize", () => setPos(state.pos));
  loadModels().catch((e) => setStatus("cannot reach the server: " + e, true));
}

init();
