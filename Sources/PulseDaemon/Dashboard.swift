/// The live dashboard: one self-contained page (no external scripts, styles or fonts, so it works
/// offline and behind strict proxies) that polls the query API every two seconds.
///
/// Shows the top entities by engagement, virality and negative share (brands or subjects) with
/// sparklines, and the alert timeline: each alert's explanation, authenticity assessment and signals, and
/// a sparkline of the entity's negative share. A bearer token, when the API needs one, is read from the
/// URL fragment (`/#token=…`) and never sent anywhere but the API.
enum Dashboard {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>CrowdPulse</title>
        <style>
          :root { --bg:#0f1419; --panel:#182029; --line:#2a3542; --text:#e6edf3; --muted:#8b98a5;
                  --crit:#f85149; --warn:#d29922; --ok:#3fb950; --coord:#a371f7; --accent:#58a6ff; }
          * { box-sizing: border-box; }
          body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
                 background:var(--bg); color:var(--text); }
          header { display:flex; align-items:baseline; gap:24px; padding:12px 20px; border-bottom:1px solid var(--line); }
          header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
          header .stat { color:var(--muted); } header .stat b { color:var(--text); font-weight:600; }
          main { display:grid; grid-template-columns: minmax(420px, 1.1fr) 1fr; gap:16px; padding:16px 20px; }
          section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
          h2 { font-size:14px; margin:0 0 10px; color:var(--muted); text-transform:uppercase; letter-spacing:1px; }
          .alert { border-left:4px solid var(--warn); background:#1d2631; border-radius:6px; padding:10px 12px; margin-bottom:10px; }
          .alert.critical { border-color:var(--crit); } .alert.resolved { border-color:var(--muted); opacity:.75; }
          .alert .top { display:flex; justify-content:space-between; gap:8px; align-items:center; }
          .alert .summary { font-weight:600; }
          .badge { display:inline-block; padding:1px 7px; border-radius:10px; font-size:12px; margin-left:4px; background:#2d3845; }
          .badge.critical { background:var(--crit); color:#fff; } .badge.warning { background:var(--warn); color:#111; }
          .badge.organic { background:var(--ok); color:#0b1a0e; } .badge.mixed { background:var(--warn); color:#111; }
          .badge.suspected_coordinated { background:var(--coord); color:#fff; }
          .badge.resolved { background:var(--muted); color:#111; }
          .desc { color:var(--muted); margin:6px 0; }
          .signals { display:grid; grid-template-columns: repeat(3, 1fr); gap:2px 12px; font-size:12px; color:var(--muted); }
          .signals b { color:var(--text); font-weight:500; }
          .timeline { font-size:12px; color:var(--muted); margin-top:6px; }
          table { width:100%; border-collapse:collapse; }
          td, th { padding:4px 6px; text-align:left; border-bottom:1px solid var(--line); font-size:13px; }
          th { color:var(--muted); font-weight:500; } td.num { text-align:right; font-variant-numeric: tabular-nums; }
          .tabs button { background:#243040; color:var(--text); border:1px solid var(--line); border-radius:5px;
                         padding:3px 10px; cursor:pointer; } .tabs button.on { background:var(--accent); color:#04101f; }
          .grid3 { display:grid; grid-template-columns: 1fr; gap:14px; }
          .empty { color:var(--muted); font-style:italic; }
          svg.spark { vertical-align:middle; }
          #error { color:var(--crit); }
        </style>
        </head>
        <body data-updates="0">
        <header>
          <h1>CrowdPulse</h1>
          <span class="stat">events <b id="events">–</b></span>
          <span class="stat">rate <b id="rate">–</b>/s</span>
          <span class="stat">firing <b id="firing">–</b></span>
          <span class="stat">consumer lag <b id="lag">–</b></span>
          <span class="stat">partitions <b id="partitions">–</b></span>
          <span id="error"></span>
        </header>
        <main>
          <section>
            <h2>Alerts</h2>
            <div id="alerts"><p class="empty">No alerts yet.</p></div>
          </section>
          <section>
            <h2>Top entities <span class="tabs"><button data-level="brand" class="on">brands</button>
              <button data-level="subject">subjects</button></span></h2>
            <div class="grid3">
              <div><h2>Engagement (weighted, last window)</h2><table id="top-engagement"><tbody></tbody></table></div>
              <div><h2>Virality (shares per minute)</h2><table id="top-virality"><tbody></tbody></table></div>
              <div><h2>Negative share</h2><table id="top-negative_share"><tbody></tbody></table></div>
            </div>
          </section>
        </main>
        <script>
        "use strict";
        const token = new URLSearchParams(location.hash.slice(1)).get("token");
        const headers = token ? { Authorization: "Bearer " + token } : {};
        let level = "brand", lastEvents = null, lastTime = null;

        function el(tag, attrs, ...children) {
          const node = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) {
            if (k === "class") node.className = v; else node.setAttribute(k, v);
          }
          for (const child of children) {
            if (child == null) continue;
            node.append(child instanceof Node ? child : document.createTextNode(String(child)));
          }
          return node;
        }

        function spark(values, color, max) {
          const w = 110, h = 24, ns = "http://www.w3.org/2000/svg";
          const svg = document.createElementNS(ns, "svg");
          svg.setAttribute("class", "spark"); svg.setAttribute("width", w); svg.setAttribute("height", h);
          const points = values.map((v, i) => [i, v]).filter(p => p[1] != null);
          if (points.length === 0) return svg;
          const top = max != null ? max : Math.max(...points.map(p => p[1]), 1e-9);
          const n = Math.max(values.length - 1, 1);
          const line = document.createElementNS(ns, "polyline");
          line.setAttribute("fill", "none"); line.setAttribute("stroke", color); line.setAttribute("stroke-width", "1.5");
          line.setAttribute("points", points.map(([i, v]) =>
            (i * (w - 2) / n + 1).toFixed(1) + "," + (h - 2 - (v / top) * (h - 4)).toFixed(1)).join(" "));
          svg.append(line);
          return svg;
        }

        async function get(path) {
          const response = await fetch(path, { headers, cache: "no-store" });
          if (!response.ok) throw new Error(path + ": " + response.status);
          return response.json();
        }

        const pct = x => x == null ? "–" : (100 * x).toFixed(1) + "%";
        const num = x => x == null ? "–" : (Math.abs(x) >= 100 ? Math.round(x).toLocaleString() : (+x).toFixed(2));

        function alertCard(item) {
          const a = item.alert.alert, t = item.alert.timeline, an = a.annotations, l = a.labels;
          const resolved = a.status === "resolved";
          const card = el("div", { class: "alert " + (resolved ? "resolved" : l.severity), "data-fingerprint": a.fingerprint },
            el("div", { class: "top" },
              el("span", { class: "summary" }, an.summary),
              el("span", {},
                el("span", { class: "badge " + (resolved ? "resolved" : l.severity) }, resolved ? "resolved" : l.severity),
                el("span", { class: "badge " + an.assessment }, an.assessment.replace("_", " ")))),
            el("div", { class: "desc" }, an.description),
            el("div", { class: "signals" },
              el("span", {}, "negative ", el("b", {}, an.observed_negative), " vs ", el("b", {}, an.expected_negative)),
              el("span", {}, "z ", el("b", {}, an.z)),
              el("span", {}, "share ", el("b", {}, pct(+an.negative_share)), " vs ", el("b", {}, pct(+an.baseline_negative_share))),
              el("span", {}, "coordinated ", el("b", {}, pct(+an.coordinated_share))),
              el("span", {}, "new accounts ", el("b", {}, pct(+an.new_account_share))),
              el("span", {}, "duplicate text ", el("b", {}, pct(+an.duplicate_text_share))),
              el("span", {}, "top-10 authors ", el("b", {}, pct(+an.top10_author_share))),
              el("span", {}, "verified customers ", el("b", {}, pct(+an.verified_customer_share))),
              el("span", {}, "burst synchrony ", el("b", {}, pct(+an.burst_synchrony)))),
            an.top_negative_terms ? el("div", { class: "desc" }, "terms: " + an.top_negative_terms) : null,
            an.top_subjects ? el("div", { class: "desc" }, "subjects: " + an.top_subjects) : null,
            el("div", { class: "desc" }, "negative share ", spark(item.history.map(p => p.negative_share), "#f85149", 1),
              "  samples: " + an.sample_event_ids),
            el("div", { class: "timeline" }, t.map(s => s.change + " " + s.severity + " @ " + s.at.slice(11, 19)).join(" → ")));
          return card;
        }

        function topTable(id, data, format) {
          const body = document.querySelector("#" + id + " tbody");
          body.replaceChildren();
          if (data.entities.length === 0) {
            body.append(el("tr", {}, el("td", { class: "empty" }, "no data yet")));
            return;
          }
          const key = data.metric;
          for (const row of data.entities) {
            const series = row.history.map(p => p[key]);
            body.append(el("tr", { "data-entity": row.entity },
              el("td", {}, row.entity), el("td", { class: "num" }, format(row.value)),
              el("td", {}, spark(series, "#58a6ff", key === "negative_share" ? 1 : null))));
          }
        }

        async function refresh() {
          try {
            const [status, alerts, ...tops] = await Promise.all([
              get("/v1/status"), get("/v1/alerts"),
              ...["engagement", "virality", "negative_share"].map(m => get("/v1/top?metric=" + m + "&level=" + level + "&limit=8"))]);
            const now = Date.now();
            document.getElementById("events").textContent = status.events.toLocaleString();
            if (lastEvents != null) {
              document.getElementById("rate").textContent = Math.round((status.events - lastEvents) * 1000 / (now - lastTime)).toLocaleString();
            }
            lastEvents = status.events; lastTime = now;
            document.getElementById("firing").textContent = alerts.active.length;
            document.getElementById("lag").textContent = status.consumer_lag == null ? "–" : status.consumer_lag.toLocaleString();
            document.getElementById("partitions").textContent = status.partitions;
            const list = document.getElementById("alerts");
            list.replaceChildren();
            const all = alerts.active.concat(alerts.recent);
            if (all.length === 0) list.append(el("p", { class: "empty" }, "No alerts yet."));
            for (const item of all) list.append(alertCard(item));
            topTable("top-engagement", tops[0], num);
            topTable("top-virality", tops[1], num);
            topTable("top-negative_share", tops[2], pct);
            document.getElementById("error").textContent = "";
            document.body.dataset.updates = String(+document.body.dataset.updates + 1);
          } catch (error) {
            document.getElementById("error").textContent = String(error.message || error);
          }
        }

        for (const button of document.querySelectorAll(".tabs button")) {
          button.addEventListener("click", () => {
            level = button.dataset.level;
            for (const other of document.querySelectorAll(".tabs button")) other.classList.toggle("on", other === button);
            refresh();
          });
        }
        refresh();
        setInterval(refresh, 2000);
        </script>
        </body>
        </html>
        """#
}
