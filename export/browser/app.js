// The bundle page: opens the embedded ONNX model with onnxruntime-web (WebAssembly, one thread, no worker, every
// byte embedded in the page's scripts, so that it runs from file:// and offline), builds the form for the model's
// inputs and shows its answer. Exposes globalThis.modelyard for scripted use:
//   await modelyard.ready; await modelyard.predictTexts(["..."]); await modelyard.predictRows([[...13 numbers]]);
(function () {
  "use strict";
  const B = globalThis.MODELYARD_BUNDLE;
  const $ = (id) => document.getElementById(id);
  const tokenizer = B.preprocessing.kind === "multi_hot_text"
    ? globalThis.ModelyardTokenizer.createTokenizer(B.preprocessing, B.vocab) : null;

  function base64Bytes(b64) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64);
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  async function gunzipBase64(b64) {  // DecompressionStream and Response read memory: no fetch
    const stream = new Blob([base64Bytes(b64)]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  async function openSession() {
    const runtime = globalThis.MODELYARD_RUNTIME;
    ort.env.wasm.numThreads = 1;  // threads need a cross-origin-isolated page, which file:// cannot be
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmBinary = await gunzipBase64(runtime.wasm_gzip_base64);
    ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([runtime.glue], { type: "text/javascript" })) };
    const model = await gunzipBase64(globalThis.MODELYARD_MODEL.gzip_base64);
    return ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  }

  function interpret(y) {
    if (B.task === "binary_classification") {
      return { label: B.labels[y[0] >= B.threshold ? 1 : 0], probability: y[0], output: y };
    }
    if (B.task === "multiclass_classification") {
      const order = y.map((p, i) => i).sort((a, b) => y[b] - y[a]);
      const topics = order.slice(0, 5).map((i) => ({ label: B.labels[i], probability: y[i] }));
      return { label: topics[0].label, probability: topics[0].probability, topics, output: y };
    }
    return { value: y[0], output: y };
  }

  async function run(session, data, rows) {
    const width = data.length / rows;
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, [rows, width]) };
    const y = (await session.run(feeds))[session.outputNames[0]].data;
    const w = y.length / rows;
    return Array.from({ length: rows }, (_, r) => interpret(Array.from(y.subarray(r * w, (r + 1) * w))));
  }

  const fmt = (p) => (100 * p).toFixed(1) + "%";

  function show(result, note) {
    const out = $("output");
    out.replaceChildren();
    const main = document.createElement("p");
    main.className = "answer";
    if (B.task === "regression") {
      main.textContent = `$${(1000 * result.value).toLocaleString("en-US", { maximumFractionDigits: 0 })}`;
      out.append(main, Object.assign(document.createElement("p"), {
        className: "note", textContent: `model output ${result.value.toFixed(3)}: ${B.output_description}` }));
    } else if (B.task === "binary_classification") {
      main.textContent = result.label;
      out.append(main, Object.assign(document.createElement("p"), { className: "note",
        textContent: `${B.output_description}: ${fmt(result.probability)}; ${B.labels[1]} from ${B.threshold} ` +
          "(the serving threshold)" }));
    } else {
      main.textContent = result.label;
      const table = document.createElement("table");
      for (const t of result.topics) {
        const tr = table.insertRow();
        tr.insertCell().textContent = t.label;
        const bar = tr.insertCell();
        bar.className = "bar";
        bar.append(Object.assign(document.createElement("span"), { style: `width:${100 * t.probability}%` }));
        tr.insertCell().textContent = fmt(t.probability);
      }
      out.append(main, table);
    }
    if (note) out.append(Object.assign(document.createElement("p"), { className: "note", textContent: note }));
  }

  function buildTextForm(predict) {
    const box = Object.assign(document.createElement("textarea"), { id: "text", rows: 8, value: B.example_text });
    box.setAttribute("aria-label", B.input_label);
    const button = Object.assign(document.createElement("button"), { id: "predict", textContent: "Predict" });
    button.addEventListener("click", () => predict(box.value));
    $("input").append(Object.assign(document.createElement("label"), { htmlFor: "text", textContent: B.input_label }),
      box, button);
    return () => predict(box.value);
  }

  function buildFeatureForm(predict) {
    const form = Object.assign(document.createElement("form"), { id: "features" });
    for (const [i, name] of B.feature_names.entries()) {
      const input = Object.assign(document.createElement("input"), {
        id: `f-${name}`, name, type: "number", step: "any", required: true, value: B.feature_defaults[i] });
      const label = Object.assign(document.createElement("label"), { htmlFor: input.id });
      label.append(Object.assign(document.createElement("b"), { textContent: name }),
        " " + (B.feature_help[name] || ""), input);
      form.append(label);
    }
    form.append(Object.assign(document.createElement("p"), {
      className: "note", textContent: B.example_note }));
    form.append(Object.assign(document.createElement("button"), { id: "predict", type: "submit", textContent: "Predict" }));
    const read = () => B.feature_names.map((n) => Number(form.elements[n].value));
    form.addEventListener("submit", (e) => { e.preventDefault(); if (form.reportValidity()) predict(read()); });
    $("input").append(form);
    return () => predict(read());
  }

  function describe() {
    $("title").textContent = `${B.name} v${B.version} in the browser`;
    $("subtitle").textContent = `${B.variant} (${B.metric_name} ${B.metric_value.toFixed(4)} on the test set), ` +
      `run by onnxruntime-web ${B.ort_version} (WebAssembly) on this computer: nothing you type leaves the page.`;
  }

  async function main() {
    describe();
    const session = await openSession();
    const api = globalThis.modelyard;
    api.predictTexts = (texts) => run(session, tokenizer.multiHot(texts), texts.length);
    api.predictRows = (rows) => run(session, Float32Array.from(rows.flat()), rows.length);
    const predictOne = tokenizer
      ? async (text) => {
        const ids = tokenizer.ids(text).slice(1);
        const oov = ids.filter((i) => i === B.preprocessing.oov_char).length;
        show((await api.predictTexts([text]))[0],
          `${ids.length} words, ${ids.length ? fmt(oov / ids.length) : "0%"} outside the model's vocabulary`);
      }
      : async (row) => {
        if (!row.every(Number.isFinite)) { $("output").textContent = "Every feature must be a number."; return; }
        show((await api.predictRows([row]))[0]);
      };
    const first = tokenizer ? buildTextForm(predictOne) : buildFeatureForm(predictOne);
    await first();
    api.firstPredictionMs = performance.now();  // since the page's navigation started
    $("status").textContent = `Ready: model loaded and first prediction made ${Math.round(api.firstPredictionMs)} ms ` +
      "after the page started loading.";
  }

  globalThis.modelyard = { tokenizer, bundle: B };
  globalThis.modelyard.ready = main().catch((e) => {
    globalThis.modelyard.error = String(e && e.message ? e.message : e);
    $("status").textContent = `The model could not be started: ${globalThis.modelyard.error}`;
    $("status").className = "error";
    throw e;
  });
})();
