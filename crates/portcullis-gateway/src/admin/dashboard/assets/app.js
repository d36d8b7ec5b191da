// The Portcullis dashboard. Polls /dashboard/api/summary and draws it. Every value from the
// server is written with textContent, never parsed as HTML.
"use strict";

(function () {
  if (document.body.classList.contains("login")) {
    if (location.search.indexOf("failed") >= 0) {
      document.getElementById("failed").hidden = false;
    }
    return;
  }

  const POLL_MS = 2000;
  const charts = {};
  const $ = (id) => document.getElementById(id);

  function fmt(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 2 : digits });
  }
  function pct(n) { return fmt(n * 100, 1) + "%"; }
  function time(s) { return new Date(s * 1000).toLocaleTimeString(); }

  function fill(tableId, rows) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren();
    for (const cells of rows) {
      const tr = document.createElement("tr");
      for (const cell of cells) {
        const td = document.createElement("td");
        const value = typeof cell === "object" && cell !== null ? cell.text : cell;
        td.textContent = value === undefined || value === null ? "" : String(value);
        if (typeof cell === "object" && cell !== null && cell.cls) td.className = cell.cls;
        if (typeof value === "number") td.classList.add("num");
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      td.className = "muted";
      td.textContent = "none";
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  // One uPlot chart per element; rebuilt when its series change, else fed new data.
  function chart(id, names, data) {
    const el = $(id);
    const key = names.join("\u0000");
    const width = Math.max(300, el.clientWidth || 500);
    if (!charts[id] || charts[id].key !== key) {
      if (charts[id]) charts[id].plot.destroy();
      const palette = ["#2f6fde", "#d9482b", "#7a4cc2", "#1b8a5a", "#c28a00", "#0f8fa8", "#b8407a", "#5a6b2f", "#444"];
      const series = [{}].concat(names.map((name, i) => ({ label: name, stroke: palette[i % palette.length], width: 2 })));
      const plot = new uPlot({ width: width, height: 220, series: series, axes: [{}, {}], legend: { show: true } }, data, el);
      charts[id] = { plot: plot, key: key };
    } else {
      charts[id].plot.setData(data);
    }
    el.dataset.points = String(data[0].length);
    el.dataset.total = String(data.slice(1).reduce((sum, s) => sum + s.reduce((a, b) => a + (b || 0), 0), 0));
  }

  function draw(s) {
    const series = s.series;
    const last = series.slice(-6);
    const avg = (f) => last.reduce((a, p) => a + f(p), 0) / Math.max(1, last.length);
    $("rps").textContent = fmt(avg((p) => p.requests_per_s), 1);
    $("errors").textContent = pct(avg((p) => p.error_ratio));
    $("refusals").textContent = pct(avg((p) => p.refusal_ratio));
    $("p99").textContent = fmt(Math.max.apply(null, last.map((p) => p.p99_ms).concat([0])), 1) + " ms";
    $("ttft").textContent = fmt(avg((p) => p.ttft_p50_ms), 1) + " ms";
    const firing = s.alerts.filter((a) => a.state === "firing");
    $("firing").textContent = String(firing.length);
    $("firing").className = "value" + (firing.length ? " firing" : "");
    $("updated").textContent = "updated " + time(s.now);

    const x = series.map((p) => p.at);
    chart("chart-traffic", ["requests/s", "error ratio", "refusal ratio"],
      [x, series.map((p) => p.requests_per_s), series.map((p) => p.error_ratio), series.map((p) => p.refusal_ratio)]);
    chart("chart-latency", ["p50", "p95", "p99", "TTFT p50", "TTFT p99"],
      [x, series.map((p) => p.p50_ms), series.map((p) => p.p95_ms), series.map((p) => p.p99_ms),
        series.map((p) => p.ttft_p50_ms), series.map((p) => p.ttft_p99_ms)]);
    const tenants = s.tenants.series;
    const minutes = tenants.length ? tenants[0].points.map((p) => p[0]) : [];
    chart("chart-tokens", tenants.map((t) => t.tenant), [minutes].concat(tenants.map((t) => t.points.map((p) => p[1]))));
    chart("chart-cost", tenants.map((t) => t.tenant), [minutes].concat(tenants.map((t) => t.points.map((p) => p[2]))));

    fill("alerts", s.alerts.map((a) => [a.rule, a.subject, { text: a.state, cls: a.state === "firing" ? "firing" : "" }, fmt(a.value), a.since]));
    $("matching").textContent = "(" + s.tenants.matching + " matching)";
    fill("top", s.tenants.top.map((t) => [t.tenant, t.requests, t.tokens, "$" + fmt(t.cost, 6)]));
    fill("models", s.models.map((m) => [m.model || "(none)", m.requests, m.tokens, "$" + fmt(m.cost, 6)]));
    fill("refused", s.refusals.map((r) => [time(r.at), r.tenant || "–", r.endpoint, r.status, r.code]));
    fill("findings", s.findings.map((f) => [f.rule, f.count]));
    fill("addresses", s.new_addresses.map((a) => [time(a.at), a.tenant, a.key_id, a.ip]));
    fill("threats", s.threats.verdicts.map((v) => [
      v.kind + ":" + v.id, v.tenant, { text: fmt(v.risk, 3), cls: v.flagged ? "firing" : "" }, v.requests,
      v.cluster ? v.cluster + " (" + v.cluster_size + ")" : "–", (v.reasons || [])[0] || ""]));
    fill("threat-actions", s.threats.actions.map((a) => [new Date(a.time).toLocaleTimeString(), a.subject, a.action, fmt(a.risk, 3)]));
    fill("upstreams", s.upstreams.map((u) => [u.name, { text: u.healthy ? "healthy" : "unhealthy", cls: u.healthy ? "healthy" : "unhealthy" }, u.in_flight + " / " + u.capacity]));
    fill("limits", [[s.limits.backend, { text: s.limits.healthy ? "ok" : "unavailable", cls: s.limits.healthy ? "healthy" : "unhealthy" }, s.limits.outage_decisions]]);
  }

  async function poll() {
    const params = new URLSearchParams({ minutes: $("minutes").value });
    const tenant = $("tenant").value.trim();
    if (tenant) params.set("tenant", tenant);
    try {
      const reply = await fetch("/dashboard/api/summary?" + params.toString(), { credentials: "same-origin" });
      if (reply.status === 401) { location.reload(); return; }
      if (reply.ok) draw(await reply.json());
    } catch (e) {
      $("updated").textContent = "cannot reach the gateway";
    }
  }

  $("minutes").addEventListener("change", poll);
  $("tenant").addEventListener("input", poll);
  poll();
  setInterval(poll, POLL_MS);
})();
