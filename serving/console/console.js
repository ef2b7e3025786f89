// The modelyard console: polls /ui/api/models, shows each model's versions, variants, live figures and
// stakeholder report, and answers a try-it form per model through the V2 REST API. Plain ES module, no build.

const POLL_MS = 2000;
const API = new URL("api/", document.baseURI);
const ROOT = new URL("../", document.baseURI);  // the server's root: /ui/../
const previous = new Map();  // model -> {t, live}: the last poll, to turn cumulative counts into rates
const keyInput = document.getElementById("api-key");
keyInput.value = sessionStorage.getItem("modelyard-api-key") || "";
keyInput.addEventListener("change", () => { sessionStorage.setItem("modelyard-api-key", keyInput.value); poll(); });

function headers(extra = {}) {
  return keyInput.value ? { ...extra, "X-API-Key": keyInput.value } : extra;
}

async function call(url, options = {}) {
  const r = await fetch(url, { ...options, headers: headers(options.headers) });
  if (!r.ok) {
    let message = `${r.status} ${r.statusText}`;
    try { message = (await r.json()).error || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return r;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", { class: r.class || "" }, r.cells.map((c) => el("td", {}, c))))));
}

const fmt = (x, digits = 4) => (x === null || x === undefined ? "" : Number(x).toFixed(digits));
const kib = (bytes) => (bytes / 1024).toFixed(1);

// ------------------------------------------------------------------ live figures
function quantile(q, buckets) {
  // Prometheus' histogram_quantile over [[le, count]] cumulative buckets (le "+Inf" last)
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const [le, count] of buckets) {
    const upper = le === "+Inf" ? Infinity : Number(le);
    if (count >= rank) {
      if (upper === Infinity) return lower;
      return lower + (upper - lower) * (count > below ? (rank - below) / (count - below) : 0);
    }
    lower = upper; below = count;
  }
  return lower;
}

function liveFigures(name, live) {
  const now = performance.now();
  const last = previous.get(name);
  previous.set(name, { t: now, live });
  if (!last) return null;
  const seconds = (now - last.t) / 1000;
  const before = new Map(last.live.latency_buckets.map(([le, n]) => [le, n]));
  const window = live.latency_buckets.map(([le, n]) => [le, n - (before.get(le) || 0)]);
  const batches = live.batches - last.live.batches;
  return {
    rate: (live.requests - last.live.requests) / seconds,
    errors: (live.errors - last.live.errors) / seconds,
    p99: quantile(0.99, window),
    batch: batches > 0 ? (live.batch_rows - last.live.batch_rows) / batches : null,
  };
}

function qualityBox(quality) {
  // the prediction log's live quality (needs --prediction-log and ground truth sent to /feedback)
  return quality.map((q) => el("div", { "data-live": "quality" },
    el("b", {}, q.accuracy !== undefined ? `${(q.accuracy * 100).toFixed(1)}%` : `${q.mae.toFixed(2)} MAE`),
    `live ${q.accuracy !== undefined ? "accuracy" : "error"}, v${q.version} ${q.variant} (${q.labelled} labelled)`));
}

function liveBox(fig) {
  const v = (x, unit, digits) => (x === null || x === undefined ? "–" : `${x.toFixed(digits)}${unit}`);
  return [
    el("div", { "data-live": "rate" }, el("b", {}, v(fig && fig.rate, "/s", 1)), "requests"),
    el("div", { "data-live": "p99" }, el("b", {}, v(fig && fig.p99 !== null ? fig.p99 * 1000 : null, " ms", 2)), "p99 latency"),
    el("div", { "data-live": "batch" }, el("b", {}, v(fig && fig.batch, " rows", 1)), "mean batch size"),
    el("div", { "data-live": "errors" }, el("b", {}, v(fig && fig.errors, "/s", 1)), "refused or failed"),
  ];
}

// ------------------------------------------------------------------ versions, variants, reports
function versionsTable(m) {
  return table(["version", "state", "served variants", "trained", "test metrics", "stakeholder report"],
    m.versions.map((v) => ({
      cells: [v.version, el("span", { class: `state-${v.state.replace(" ", "-")}`, title: v.reason }, v.state + (v.reason ? `: ${v.reason}` : "")),
        v.served_variants.join(", "), (v.created_at || "").slice(0, 16).replace("T", " "),
        Object.entries(v.test_metrics).map(([k, x]) => `${k} ${fmt(x)}`).join(", "),
        v.report ? reportCell(m, v) : "none (modelyard report " + m.name + ")"],
    })));
}

function reportCell(m, v) {
  const s = v.report.summary || {};
  let note = "";
  if (m.threshold !== null && s.threshold !== undefined && s.threshold !== null && s.threshold !== m.threshold) {
    note = ` (made at threshold ${s.threshold}; the server uses ${m.threshold})`;
  }
  return el("span", {}, el("button", { type: "button", class: "report", onclick: () => showReport(m.name, v) }, "view"),
    " ", el("a", { href: v.report.url, target: "_blank" }, "open"), note);
}

function variantsTable(v) {
  return table(["variant", "format", "metric", "value", "change vs Keras", "KiB", "gzip KiB", "ms b1", "ms b64", "status"],
    v.variants.map((r) => ({
      class: r.status === "rejected" ? "rejected" : "",
      cells: [r.name, r.format, r.metric, fmt(r.value), fmt(r.delta), kib(r.size_bytes), kib(r.gzip_bytes),
        fmt(r.latency_ms_b1, 3), fmt(r.latency_ms_b64, 3), r.status + (r.reason ? `: ${r.reason}` : "")],
    })));
}

async function showReport(name, v) {
  // fetched with the key (a link could not send it); images become blob: URLs inside the frame
  const dialog = document.getElementById("report-dialog");
  const base = new URL(v.report.url, document.baseURI);
  const doc = new DOMParser().parseFromString(await (await call(base)).text(), "text/html");
  for (const img of doc.querySelectorAll("img")) {
    const blob = await (await call(new URL(img.getAttribute("src"), base))).blob();
    img.src = URL.createObjectURL(blob);
  }
  document.getElementById("report-title").textContent = `${name} v${v.version}: stakeholder report`;
  document.getElementById("report-frame").srcdoc = "<!doctype html>" + doc.documentElement.outerHTML;
  dialog.showModal();
}
document.getElementById("report-close").addEventListener("click", () => document.getElementById("report-dialog").close());

// ------------------------------------------------------------------ try it
function tryForm(m) {
  const answer = el("div", { class: "answer", "aria-live": "polite" });
  const fields = m.input.kind === "text"
    ? [el("textarea", { name: "text", "aria-label": `text for ${m.name}` },
      m.name === "imdb" ? "A wonderful film: the acting was superb and the story moving." : "The company said its quarterly profit rose and it will raise the dividend.")]
    : [el("p", { class: "facts" }, "prefilled with the training set's mean of each feature"), el("div", { class: "features" }, m.input.feature_names.map((f, i) => el("label", {}, f + " ",
      el("input", { name: f, type: "number", step: "any", value: m.input.example[i], required: "" }))))];
  const form = el("form", { class: "try", "data-model": m.name }, el("h3", {}, "Try it"), fields,
    el("p", {}, el("button", { type: "submit" }, `Ask ${m.name}`)), answer);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    answer.className = "answer";
    answer.textContent = "asking…";
    try {
      const t0 = performance.now();
      const r = await call(new URL(`v2/models/${encodeURIComponent(m.name)}/infer`, ROOT), {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(inferRequest(m, form)),
      });
      const body = await r.json();
      answer.replaceChildren(...describe(m, body), el("div", { class: "facts" },
        `version ${body.model_version}, variant ${body.parameters.variant}, ${(performance.now() - t0).toFixed(1)} ms`));
    } catch (err) {
      answer.className = "answer error";
      answer.textContent = err.message;
    }
  });
  return form;
}

function inferRequest(m, form) {
  if (m.input.kind === "text") {
    const req = { inputs: [{ name: "text", shape: [1], datatype: "BYTES", data: [form.elements.text.value] }] };
    if (m.task === "multiclass_classification") req.parameters = { top_k: 5 };
    return req;
  }
  const row = m.input.feature_names.map((f) => Number(form.elements[f].value));
  return { inputs: [{ name: m.input.tensor, shape: [1, row.length], datatype: "FP32", data: row }] };
}

function describe(m, body) {
  const out = Object.fromEntries(body.outputs.map((o) => [o.name, o.data]));
  if (m.task === "binary_classification") {
    const p = body.outputs.find((o) => o.datatype === "FP32" && o.name !== "label_probability").data[0];
    return [el("p", {}, el("b", { class: "label" }, out.label[0]), ` (probability positive ${p.toFixed(4)}; `,
      `labelled positive from ${m.threshold})`)];
  }
  if (m.task === "multiclass_classification") {
    return [el("ol", { class: "topics" }, out.top_k_labels.map((label, i) => el("li", {},
      el("span", { class: "bar", style: `width:${(out.top_k_probabilities[i] * 10).toFixed(2)}em` }),
      el("b", { class: "label" }, label), ` ${(out.top_k_probabilities[i] * 100).toFixed(1)}%`)))];
  }
  const price = body.outputs[0].data[0];
  return [el("p", {}, "predicted median price ", el("b", { class: "label" }, `$${Math.round(price * 1000).toLocaleString("en-US")}`))];
}

// ------------------------------------------------------------------ page
const sections = new Map();  // model -> {section, live, versions, variants}

function modelSection(m) {
  const parts = { live: el("div", { class: "live" }, liveBox(null)), versions: el("div"), variants: el("div"), facts: el("p", { class: "facts" }) };
  const section = el("section", { class: "model", id: `model-${m.name}` }, el("h2", {}, m.name), parts.facts, parts.live,
    el("div", { class: "columns" }, el("div", {}, el("h3", {}, "Versions"), parts.versions),
      m.input ? tryForm(m) : el("p", {}, "no version with a manifest yet")),
    el("h3", {}, "Variants of the newest version (export validation on the full test set)"), parts.variants);
  return { section, ...parts };
}

function update(m) {
  let s = sections.get(m.name);
  if (!s) {
    s = modelSection(m);
    sections.set(m.name, s);
    document.getElementById("models").append(s.section);
  }
  s.facts.textContent = [m.task, `default variant ${m.default_variant}`,
    m.threshold !== null ? `decision threshold ${m.threshold} (serving config)` : null,
    m.unloaded ? "unloaded" : null].filter(Boolean).join(" · ");
  s.live.replaceChildren(...liveBox(liveFigures(m.name, m.live)), ...qualityBox(m.live.quality));
  s.versions.replaceChildren(versionsTable(m));
  s.variants.replaceChildren(m.versions.length ? variantsTable(m.versions[0]) : "");
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const { models } = await (await call(new URL("models", API))).json();
    models.forEach(update);
    status.className = "";
    status.textContent = `${models.length} models · updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    status.className = "error";
    status.textContent = `cannot read the models: ${err.message}`;
  }
}

poll();
setInterval(poll, POLL_MS);
