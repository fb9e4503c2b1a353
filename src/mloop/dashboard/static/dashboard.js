// mloop dashboard: live refresh, SVG charts, rollout commands. Our own ~220 lines
// (Apache-2.0 like mloop, see LICENSE): the pages need only lines, dashed thresholds and
// bars, so no charting library is vendored, and nothing loads from a CDN (works offline).
"use strict";
(function () {
  const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"];
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = Number(document.body.dataset.pollMs || 3000);

  function fmt(value, kind) {
    if (value === null || value === undefined || (typeof value === "number" && !isFinite(value))) return "–";
    if (kind === "text" || typeof value === "string") return String(value);
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (kind === "pct") return (value * 100).toFixed(1) + "%";
    if (kind === "percent") return value.toFixed(1) + "%";
    if (kind === "ms") return value.toFixed(1) + " ms";
    if (kind === "rate") return value.toFixed(2) + "/s";
    if (kind === "int") return String(Math.trunc(value));
    if (kind === "time") return new Date(value * 1000).toISOString().slice(0, 19).replace("T", " ");
    return Number(value.toPrecision(4)).toString();
  }

  function at(data, path) {
    return path.split(".").reduce((obj, key) => (obj === null || obj === undefined ? undefined : obj[key]), data);
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One chart: x labels, series of {name, values, dashed, color}; "bar" draws the first series as bars.
  function draw(slot, spec) {
    slot.replaceChildren();
    const series = spec.series.filter((s) => s.values.some((v) => v !== null && v !== undefined));
    if (!series.length) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = spec.empty || "Nothing to draw yet.";
      slot.append(p);
      return;
    }
    const W = 640, H = 220, L = 48, R = 12, T = 10, B = 28;
    const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
    let lo = Math.min(0, ...all), hi = Math.max(...all);
    if (hi === lo) hi = lo + 1;
    const n = spec.x.length;
    const x = (i) => L + (n <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "svg-chart", focusable: "false" });
    for (const v of [lo, (lo + hi) / 2, hi]) {
      svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      svg.append(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "axis" }, fmt(v)));
    }
    const step = Math.max(1, Math.ceil(n / 6));
    spec.x.forEach((label, i) => {
      if (i % step === 0 || i === n - 1) {
        const anchor = n > 1 && i === n - 1 ? "end" : n > 1 && i === 0 ? "start" : "middle";
        svg.append(el("text", { x: x(i), y: H - 8, "text-anchor": anchor, class: "axis" }, label));
      }
    });
    series.forEach((s, k) => {
      const color = s.color || PALETTE[k % PALETTE.length];
      if (spec.kind === "bar") {
        const w = Math.max(2, (W - L - R) / Math.max(n, 1) - 4);
        s.values.forEach((v, i) => {
          if (v === null || v === undefined) return;
          svg.append(el("rect", { x: x(i) - w / 2, y: y(v), width: w, height: y(lo) - y(v), fill: color }));
        });
        return;
      }
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
        const dot = el("circle", { cx: x(i), cy: y(v), r: 2.5, fill: color });
        dot.append(el("title", {}, `${s.name} @ ${spec.x[i]}: ${fmt(v)}`));
        svg.append(dot);
      });
      svg.append(el("path", { d, stroke: color, fill: "none", "stroke-width": 2, "stroke-dasharray": s.dashed ? "5 4" : "none" }));
    });
    slot.append(svg);
    const legend = document.createElement("ul");
    legend.className = "legend";
    series.forEach((s, k) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch" + (s.dashed ? " dashed" : "");
      swatch.style.borderColor = s.color || PALETTE[k % PALETTE.length];
      li.append(swatch, document.createTextNode(s.name));
      legend.append(li);
    });
    slot.append(legend);
  }

  const clock = (t) => new Date(t * 1000).toISOString().slice(11, 16);
  const clockSeconds = (t) => new Date(t * 1000).toISOString().slice(11, 19);

  // Chart specs per slot, from the page's JSON (the same data the server rendered).
  const CHARTS = {
    metrics: (d) => ({
      x: d.versions.map((v) => "v" + v.version),
      series: d.metric_names.map((m) => ({ name: m, values: d.versions.map((v) => v.metrics[m] ?? null) })),
    }),
    drift: (d) => {
      const series = [];
      Object.entries(d.series.features).forEach(([name, f], k) => {
        const color = PALETTE[k % PALETTE.length];
        series.push({ name, values: f.effect, color });
        series.push({ name: name + " threshold", values: f.threshold, color, dashed: true });
      });
      return { x: d.series.times.map(clock), series, empty: "No reference profile: drift needs one." };
    },
    predictions: (d) => ({
      x: d.series.times.map(clock),
      series: Object.entries(d.series.predictions).map(([name, values]) => ({ name, values })),
    }),
    performance: (d) => ({
      x: d.series.times.map(clock),
      series: Object.entries(d.series.performance).flatMap(([m, p], k) => [
        { name: m + " realized", values: p.realized, color: PALETTE[k % PALETTE.length] },
        { name: m + " estimated", values: p.estimated, color: PALETTE[k % PALETTE.length], dashed: true },
      ]),
      empty: "No labels and no estimate yet: send feedback with POST /feedback.",
    }),
    labels: (d) => ({ kind: "bar", x: d.series.times.map(clock), series: [{ name: "labels", values: d.series.labelled }] }),
    quality: (d) => ({
      x: d.series.times.map(clock),
      series: [
        { name: "missing rate", values: d.series.missing_rate },
        { name: "out-of-contract rate", values: d.series.out_of_contract_rate },
      ],
    }),
    // Stable blue, candidate orange, p99 dashed; an interval without answers is a gap.
    latency: (d) => {
      const l = d.latency;
      const label = l.step_s < 60 ? clockSeconds : clock;
      const sides = [["stable", PALETTE[0]], ["candidate", PALETTE[1]]];
      return {
        x: l.times.map(label),
        series: sides.flatMap(([role, color]) => [
          { name: `${role} v${l[role].version} p50`, values: l[role].p50_ms, color },
          { name: `${role} v${l[role].version} p99`, values: l[role].p99_ms, color, dashed: true },
        ]),
        empty: "No answered requests since the rollout started.",
      };
    },
  };

  function render(data) {
    document.querySelectorAll("[data-field]").forEach((node) => {
      const text = fmt(at(data, node.dataset.field), node.dataset.fmt);
      if (node.textContent !== text) node.textContent = text;
    });
    document.querySelectorAll("[data-chart]").forEach((slot) => {
      const build = CHARTS[slot.dataset.chart];
      if (build) draw(slot, build(data));
    });
  }

  function status(text) {
    const node = document.getElementById("live-status");
    if (node) node.textContent = text;
  }

  async function poll() {
    const api = document.body.dataset.api;
    if (!api) return;
    try {
      const response = await fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) { status("refresh failed: HTTP " + response.status); return; }
      render(await response.json());
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      status("live · updated " + new Date().toLocaleTimeString());
    } catch (err) {
      status("offline: " + err.message);
    }
  }

  async function command(button) {
    const cmd = button.dataset.command, model = button.dataset.model;
    if (!window.confirm(`${cmd} the rollout of ${model}?`)) return;
    const out = document.getElementById("command-result");
    const response = await fetch(`/ui/api/models/${encodeURIComponent(model)}/rollout/${cmd}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Mloop-UI": "1" },
      body: JSON.stringify({ reason: `${cmd} from the dashboard` }),
    });
    const body = await response.json();
    if (out) out.textContent = response.ok ? `${cmd}: ${body.rollout.phase}` : body.error.message;
    poll();
  }

  async function login(form) {
    const key = new FormData(form).get("api_key");
    const response = await fetch("/ui/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ api_key: key }),
    });
    if (response.ok) window.location.reload();
    else status((await response.json()).error.message);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-command]");
    if (button) command(button);
  });
  const form = document.getElementById("login");
  if (form) form.addEventListener("submit", (event) => { event.preventDefault(); login(form); });
  const initial = document.getElementById("page-data");
  if (initial) render(JSON.parse(initial.textContent));
  if (document.body.dataset.api) setInterval(poll, POLL_MS);
})();
