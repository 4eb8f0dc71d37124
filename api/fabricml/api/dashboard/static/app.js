// fabricml dashboard: buttons that call the API, and charts drawn with uPlot.
"use strict";

async function post(url) {
  const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  const body = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, body };
}

function show(text, ok) {
  const el = document.getElementById("result");
  el.textContent = text;
  el.className = ok ? "ok" : "bad";
}

const approve = document.getElementById("approve");
if (approve) {
  approve.addEventListener("click", async () => {
    approve.disabled = true;
    show("submitting the approval and waiting for it to commit…", true);
    const r = await post(approve.dataset.url);
    if (r.ok) {
      show(`approved: status is now ${r.body.status} with ${r.body.approvals.length} approval(s)`, true);
      document.getElementById("model-status").textContent = r.body.status;
      setTimeout(() => window.location.reload(), 500);
    } else {
      const tx = r.body.transactionId ? ` (transaction ${r.body.transactionId})` : "";
      show(`refused (${r.status}): ${r.body.detail}${tx}`, false);
      approve.disabled = false;
    }
  });
}

const verify = document.getElementById("verify");
if (verify) {
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    show("fetching every file and checking its digest…", true);
    const r = await post(verify.dataset.url);
    if (r.ok && r.body.ok) show(`verified: ${r.body.files} file(s) match weights digest ${r.body.weightsDigest.slice(0, 16)}…`, true);
    else if (r.ok) show(`does NOT match the ledger: ${r.body.problems.join("; ")}`, false);
    else show(`verification failed (${r.status}): ${r.body.detail}`, false);
    verify.disabled = false;
  });
}

const data = document.getElementById("chart-data");
const chart = document.getElementById("chart");
if (data && chart) {
  const spec = JSON.parse(data.textContent);
  if (!spec.x.length) {
    chart.textContent = spec.empty;
  } else {
    const colours = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00"];
    const opts = {
      width: Math.min(900, chart.clientWidth || 900), height: 280,
      scales: { x: { time: false } },
      axes: [{ label: spec.xLabel }, {}],
      series: [{ label: spec.xLabel }].concat(spec.series.map((s, i) => ({
        label: s.label, stroke: colours[i % colours.length], width: 2, points: { size: 6 },
      }))),
    };
    new uPlot(opts, [spec.x].concat(spec.series.map((s) => s.values)), chart);
  }
}
