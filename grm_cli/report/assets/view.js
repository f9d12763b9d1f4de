/* grm view: the report page (summary, record list, record pages, comparison of runs).
 *
 * Every text that comes from a results file goes into the page through textContent or createTextNode:
 * nothing from the data is ever parsed as markup. Lists are paginated and a record's page is built only
 * when it is opened, so a run of 10,000 records opens and filters without freezing. The page decides no
 * number of its own: verdicts, statuses and the summary come computed from grm (the same functions as
 * `grm eval`); the page only displays, counts, filters and sorts them.
 */
(function () {
  "use strict";

  // The data: a frame (runs, summaries) and the records and inputs in blocks (no one string of a big run too long).
  const DATA = JSON.parse(document.getElementById("grm-data").textContent);
  for (const block of document.querySelectorAll("script.grm-records")) {
    const run = DATA.runs[Number(block.dataset.run)];
    run.records = run.records.concat(JSON.parse(block.textContent));
  }
  for (const block of document.querySelectorAll("script.grm-inputs")) DATA.inputs = DATA.inputs.concat(JSON.parse(block.textContent));
  const RUNS = DATA.runs;
  const INPUTS = DATA.inputs;
  const PAGE_SIZE = 100;
  const STATUS_TEXT = { right: "right", wrong: "wrong", tie: "tie", none: "no verdict", unlabelled: "unlabelled" };
  const STATUS_HELP = {
    right: "the vote singles out the labelled response (Eq. 10)",
    wrong: "the vote singles out another response",
    tie: "the top total is shared: wrong under Eq. 10, broken by a seeded pick for the reported accuracy",
    none: "no sample could be parsed: no verdict (never counted as a 0 or a tie)",
    unlabelled: "the record has no label",
  };
  const COLORS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];

  // -- building the page: elements and text nodes only ------------------------------------------------
  function append(node, kids) {
    for (const kid of [kids].flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }

  function setProps(node, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.setAttribute("class", value);
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else if (key === "data") for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
      else if (key.startsWith("on")) throw new Error("event handlers go through the 'on' property");
      else node.setAttribute(key, String(value));
    }
    return node;
  }

  function el(tag, props, ...kids) {
    return append(setProps(document.createElement(tag), props), kids);
  }

  function svg(tag, props, ...kids) {
    return append(setProps(document.createElementNS("http://www.w3.org/2000/svg", tag), props), kids);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // -- numbers as grm prints them -------------------------------------------------------------------
  function isNum(x) {
    return typeof x === "number" && isFinite(x);
  }
  function pct(x) {
    return isNum(x) ? (100 * x).toFixed(1) + "%" : "–";
  }
  function num(x, digits) {
    if (!isNum(x)) return "–";
    if (Number.isInteger(x)) return x.toLocaleString("en-US");
    return x.toFixed(digits === undefined ? 2 : digits);
  }
  function scoreText(x) {
    return isNum(x) ? (Number.isInteger(x) ? String(x) : x.toFixed(2)) : "–";
  }
  function ordinal(i) {
    const n = i + 1;
    const s = n % 10 === 1 && n % 100 !== 11 ? "st" : n % 10 === 2 && n % 100 !== 12 ? "nd" : n % 10 === 3 && n % 100 !== 13 ? "rd" : "th";
    return n + s;
  }
  function plural(n, one, many) {
    return n.toLocaleString("en-US") + " " + (n === 1 ? one : many || one + "s");
  }

  // -- rows: one per record id, a cell per run (several files are matched by id) ---------------------
  const rows = [];
  const rowById = new Map();
  RUNS.forEach((run, ri) => {
    run.records.forEach((rec) => {
      let row = rowById.get(rec.id);
      if (!row) {
        row = { id: rec.id, order: rows.length, cells: new Array(RUNS.length).fill(null), hay: null };
        rowById.set(rec.id, row);
        rows.push(row);
      }
      if (!row.cells[ri]) row.cells[ri] = rec;
    });
  });

  function verdictKey(rec) {
    if (!rec) return null;
    if (rec.status === "none") return "none";
    if (rec.n === 1) return rec.status;  // one response: the verdict is whether it was judged right
    if (rec.tied.length) return "tie";
    return String(rec.best);
  }
  function verdictText(rec) {
    if (!rec) return "–";
    if (rec.status === "none") return "no verdict";
    if (rec.tied.length) return "tie " + rec.tied.map((i) => "#" + i).join(" = ");
    return rec.n === 1 ? scoreText(rec.totals[0]) : "#" + rec.best;
  }
  for (const row of rows) {
    const keys = row.cells.filter(Boolean).map(verdictKey);
    row.shared = keys.length;
    row.differ = keys.length > 1 && keys.some((k) => k !== keys[0]);
  }

  function inputOf(rec) {
    return INPUTS[rec.input] || { context: [], responses: [] };
  }

  function haystack(row) {
    if (row.hay === null) {
      const parts = [row.id];
      const seen = new Set();
      for (const rec of row.cells) {
        if (!rec) continue;
        if (!seen.has(rec.input)) {
          seen.add(rec.input);
          const inp = inputOf(rec);
          for (const turn of inp.context) parts.push(turn[1]);
          parts.push(...inp.responses, inp.raw || "", inp.rubric || "", inp.reference || "");
        }
        if (rec.subset) parts.push(rec.subset);
        for (const s of rec.samples) {
          parts.push(s.critique || "", s.principles || "", s.text || "", s.error || "", s.verdict || "");
          for (const c of s.criteria) parts.push(c[0] || "");
        }
      }
      row.hay = parts.join("\n").toLowerCase();
    }
    return row.hay;
  }

  // -- state: what the list shows -----------------------------------------------------------------
  const state = { focus: 0, subset: "", status: "", unparsed: "", stop: "", mmin: "", mmax: "", q: "", differ: false, sort: "order", dir: 1, page: 0 };
  let visible = rows.slice();

  const SORTS = {
    order: (row, rec) => row.order,
    id: (row) => row.id,
    subset: (row, rec) => (rec ? rec.subset || "" : null),
    status: (row, rec) => (rec ? DATA.statuses.indexOf(rec.status) : null),
    verdict: (row, rec) => (rec ? verdictKey(rec) : null),
    margin: (row, rec) => (rec && isNum(rec.margin) ? rec.margin : null),
    unparsed: (row, rec) => (rec ? rec.unparsed : null),
    used: (row, rec) => (rec ? rec.used : null),
    meta: (row, rec) => (rec ? metaMean(rec) : null),
  };

  function metaMean(rec) {
    const xs = rec.samples.map((s) => s.meta).filter(isNum);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
  }

  function matches(row) {
    const rec = row.cells[state.focus];
    if (!rec) return false;
    if (state.subset && (rec.subset || "(none)") !== state.subset) return false;
    if (state.status && rec.status !== state.status) return false;
    if (state.unparsed === "some" && rec.unparsed === 0) return false;
    if (state.unparsed === "none" && rec.unparsed > 0) return false;
    if (state.stop === "early" && !rec.stopped) return false;
    if (state.stop === "full" && rec.stopped) return false;
    if (state.stop && state.stop !== "early" && state.stop !== "full" && rec.stopped !== state.stop) return false;
    if (state.mmin !== "" && !(isNum(rec.margin) && rec.margin >= Number(state.mmin))) return false;
    if (state.mmax !== "" && !(isNum(rec.margin) && rec.margin <= Number(state.mmax))) return false;
    if (state.differ && !row.differ) return false;
    if (state.q && !haystack(row).includes(state.q)) return false;
    return true;
  }

  function refilter() {
    visible = rows.filter(matches);
    const key = SORTS[state.sort] || SORTS.order;
    const dir = state.dir;
    if (state.sort !== "order" || dir !== 1) {
      const keyed = visible.map((row) => [key(row, row.cells[state.focus]), row]);
      keyed.sort((a, b) => {
        if (a[0] === b[0]) return a[1].order - b[1].order;
        if (a[0] === null) return 1;
        if (b[0] === null) return -1;
        return (a[0] < b[0] ? -1 : 1) * dir;
      });
      visible = keyed.map((x) => x[1]);
    }
  }

  // -- the frame: header, navigation, the view --------------------------------------------------------
  const app = clear(document.getElementById("app"));
  const nav = el("nav", { id: "nav" });
  const main = el("main", { id: "view" });
  const runNames = RUNS.map((r, i) => el("span", { class: "run-name", title: r.source }, el("span", { class: "swatch", data: { run: i } }), r.name));
  append(app, [
    el("header", null,
      el("h1", null, DATA.title),
      el("p", { class: "sub" }, runNames, DATA.generated ? el("span", { class: "dim" }, "written " + DATA.generated) : null),
      nav),
    main,
  ]);
  for (const sw of app.querySelectorAll(".swatch")) sw.style.background = COLORS[Number(sw.dataset.run) % COLORS.length];

  function navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function renderNav(current) {
    clear(nav);
    const tabs = [["#summary", "Summary"], ["#records", "Records"]];
    if (RUNS.length > 1) tabs.push(["#compare", "Compare runs"]);
    for (const [hash, label] of tabs) nav.appendChild(el("a", { href: hash, class: current === hash ? "tab on" : "tab" }, label));
  }

  function route() {
    const hash = location.hash || "#summary";
    window.scrollTo(0, 0);
    if (hash.startsWith("#record/")) {
      renderNav("#records");
      renderRecord(decodeURIComponent(hash.slice("#record/".length)));
    } else if (hash === "#records") {
      renderNav(hash);
      renderList();
    } else if (hash === "#compare" && RUNS.length > 1) {
      renderNav(hash);
      renderCompare();
    } else {
      renderNav("#summary");
      renderSummary();
    }
  }

  // -- summary ------------------------------------------------------------------------------------
  function g(run) {
    return run.summary ? run.summary.grm_eval : null;
  }
  function pick(obj, path) {
    let x = obj;
    for (const p of path.split(".")) {
      if (x === null || x === undefined) return undefined;
      x = x[p];
    }
    return x;
  }

  const METRICS = [
    ["records", "labelled records", "count", "records with a label: what the accuracy is over"],
    ["overall.accuracy", "accuracy", "pct", "the vote of all samples matches the label; a tie is broken by a seeded random pick (§5.1)"],
    ["overall.strict_accuracy", "strict accuracy", "pct", "Eq. 10: a tie counts as wrong"],
    ["overall.tie_rate", "ties", "pct", "records whose top total is shared"],
    ["overall.no_verdict_rate", "no verdict", "pct", "records where no sample parsed (counted wrong)"],
    ["pairwise.accuracy", "pairs: accuracy", "pct", "records with 2 responses (shown when the run mixes pairs and larger sets)"],
    ["best_of_n.accuracy", "best of n: accuracy", "pct", "records with 3 or more responses"],
    ["single_response.accuracy", "single responses: accuracy", "pct", "one response with a 0/1 label: most parsed samples give the label"],
    ["diagnostics.samples", "samples", "count", "samples generated over the labelled records"],
    ["diagnostics.parse_failure_rate", "unparsed samples", "pct", "samples whose verdict could not be read (left out of the vote)"],
    ["diagnostics.forced_tail_rate", "forced score line", "pct", "samples whose verdict the grammar had to force"],
    ["diagnostics.samples_per_record", "samples per record", "num", "fewer than k when adaptive voting stopped records early"],
    ["diagnostics.stopped_early_rate", "stopped early", "pct", "adaptive voting: records settled before k samples"],
    ["diagnostics.mean_margin_per_sample", "margin per sample", "num", "top total minus the runner-up, over the votes"],
    ["diagnostics.prompt_tokens_per_record", "prompt tokens per record", "num0", ""],
    ["diagnostics.completion_tokens_per_record", "generated tokens per record", "num0", ""],
    ["diagnostics.seconds_per_record", "seconds per record", "num", ""],
    ["diagnostics.unlabelled_records_skipped", "unlabelled records", "count", "left out of the accuracy"],
  ];

  function metricCell(value, kind, name, ri) {
    const text = kind === "pct" ? pct(value) : kind === "num0" ? num(isNum(value) ? Math.round(value) : value) : num(value);
    return el("td", { class: "metric num", data: { metric: name, run: ri, value: isNum(value) ? value : "" } }, text);
  }

  function summaryTable(title, rowsDef, valueOf) {
    const table = el("table", { class: "grid" });
    append(table, el("thead", null, el("tr", null, el("th", null, ""), RUNS.map((r, i) => el("th", { class: "num" }, el("span", { class: "swatch", data: { run: i } }), r.name)))));
    const body = el("tbody");
    for (const [name, label, kind, help] of rowsDef) {
      const values = RUNS.map((run) => valueOf(run, name));
      if (values.every((v) => v === undefined || v === null)) continue;
      body.appendChild(el("tr", null, el("th", { title: help || null }, label), values.map((v, ri) => metricCell(v, kind, name, ri))));
    }
    table.appendChild(body);
    return el("section", { class: "card" }, el("h2", null, title), table);
  }

  function outcomeBars() {
    const section = el("section", { class: "card" }, el("h2", null, "Verdicts"));
    RUNS.forEach((run, ri) => {
      if (!run.records.length) return;
      const counts = {};
      for (const s of DATA.statuses) counts[s] = 0;
      for (const rec of run.records) counts[rec.status] += 1;
      const total = run.records.length;
      const bar = el("div", { class: "bar" });
      const legend = el("div", { class: "legend" });
      for (const s of DATA.statuses) {
        if (!counts[s]) continue;
        const seg = el("a", { href: "#records", class: "seg st-" + s, title: STATUS_TEXT[s] + ": " + counts[s] + " — " + STATUS_HELP[s], data: { status: s, run: ri } });
        seg.style.width = (100 * counts[s]) / total + "%";
        seg.addEventListener("click", (ev) => {
          ev.preventDefault();
          resetFilters();
          state.focus = ri;
          state.status = s;
          navigate("#records");
        });
        bar.appendChild(seg);
        legend.appendChild(el("span", { class: "key" }, el("span", { class: "dot st-" + s }), STATUS_TEXT[s] + " ", el("b", { class: "count", data: { status: s, run: ri } }, String(counts[s]))));
      }
      section.appendChild(el("div", { class: "outcome" }, el("div", { class: "label" }, run.name, el("span", { class: "dim" }, " · " + plural(total, "record"))), bar, legend));
    });
    return section;
  }

  function subsetTable() {
    const names = [...new Set(RUNS.flatMap((run) => Object.keys((g(run) && g(run).subsets) || {})))].sort();
    if (names.length < 2) return null;
    const table = el("table", { class: "grid" });
    append(table, el("thead", null, el("tr", null, el("th", null, "subset"), RUNS.map((r, i) => el("th", { class: "num", colspan: 3 }, el("span", { class: "swatch", data: { run: i } }), r.name)))),
      el("tr", { class: "minor" }, el("th", null, ""), RUNS.map(() => [el("th", { class: "num" }, "accuracy"), el("th", { class: "num" }, "strict"), el("th", { class: "num" }, "records")])));
    const body = el("tbody");
    for (const name of names) {
      const link = el("a", { href: "#records" }, name);
      link.addEventListener("click", (ev) => {
        ev.preventDefault();
        resetFilters();
        state.subset = name;
        navigate("#records");
      });
      body.appendChild(el("tr", null, el("th", null, link), RUNS.map((run, ri) => {
        const acc = (g(run) && g(run).subsets[name]) || null;
        return [metricCell(acc ? acc.accuracy : null, "pct", "subsets." + name + ".accuracy", ri), metricCell(acc ? acc.strict_accuracy : null, "pct", "subsets." + name + ".strict_accuracy", ri), metricCell(acc ? acc.count : null, "count", "subsets." + name + ".count", ri)];
      })));
    }
    table.appendChild(body);
    return el("section", { class: "card" }, el("h2", null, "Per subset"), el("div", { class: "scroll" }, table));
  }

  function sectionsTable() {
    const names = [...new Set(RUNS.flatMap((run) => Object.keys((run.summary && run.summary.sections) || {})))];
    if (!names.length) return null;
    return summaryTable("RewardBench sections (weighted by its example counts)", names.map((n) => [n, n, "pct", ""]), (run, n) => (run.summary && run.summary.sections ? run.summary.sections[n] : undefined));
  }

  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, prefix + k + " ", out);
      else out.push([prefix + k, v]);
    }
    return out;
  }

  function benchmarkTables() {
    const out = [];
    const names = [...new Set(RUNS.map((run) => run.summary && run.summary.benchmark && run.summary.benchmark.name).filter(Boolean))];
    for (const name of names) {
      const first = RUNS.find((run) => run.summary && run.summary.benchmark && run.summary.benchmark.name === name).summary.benchmark;
      const keys = [...new Set(RUNS.flatMap((run) => (run.summary && run.summary.benchmark && run.summary.benchmark.name === name ? flatten(run.summary.benchmark.metrics, "", []).map((x) => x[0]) : [])))];
      const valueOf = (run, key) => {
        const b = run.summary && run.summary.benchmark;
        if (!b || b.name !== name) return undefined;
        const hit = flatten(b.metrics, "", []).find((x) => x[0] === key);
        return hit && isNum(hit[1]) ? hit[1] / 100 : undefined;
      };
      const card = summaryTable(first.title + " (its own metric)", keys.map((k) => [k, k, "pct", ""]), valueOf);
      card.appendChild(el("p", { class: "note" }, first.rule));
      out.push(card);
    }
    return out;
  }

  function curveChart() {
    const series = [];
    RUNS.forEach((run, ri) => {
      const gg = g(run);
      if (!gg) return;
      if (gg.curve && gg.curve.length) series.push({ run: ri, label: run.name, points: gg.curve, band: true });
      if (gg.meta_curve && gg.meta_curve.length) series.push({ run: ri, label: run.name + " (meta-RM guided)", points: gg.meta_curve, dash: "6 4", band: false });
      if (gg.adaptive && gg.adaptive.curve && gg.adaptive.curve.length) series.push({ run: ri, label: run.name + " (adaptive " + gg.adaptive.rule + ")", points: gg.adaptive.curve, dash: "2 3", band: false });
    });
    if (!series.length) return null;
    const ks = [...new Set(series.flatMap((s) => s.points.map((p) => p.k)))].sort((a, b) => a - b);
    const values = series.flatMap((s) => s.points.flatMap((p) => [p.accuracy, s.band ? p.low : p.accuracy, s.band ? p.high : p.accuracy])).filter(isNum);
    let lo = Math.max(0, Math.floor((Math.min(...values) * 100 - 5) / 10) * 10);
    let hi = Math.min(100, Math.ceil((Math.max(...values) * 100 + 5) / 10) * 10);
    if (hi - lo < 20) {
      lo = Math.max(0, hi - 20);
      hi = Math.min(100, lo + 20);
    }
    const W = 640, H = 300, L = 52, R = 16, T = 16, B = 44;
    const xs = (k) => L + (ks.length === 1 ? (W - L - R) / 2 : ((Math.log2(k) - Math.log2(ks[0])) / (Math.log2(ks[ks.length - 1]) - Math.log2(ks[0]))) * (W - L - R));
    const ys = (a) => T + (1 - (a * 100 - lo) / (hi - lo)) * (H - T - B);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "voting@k: accuracy against the number of samples voted" });
    for (let v = lo; v <= hi; v += 10) {
      chart.appendChild(svg("line", { x1: L, x2: W - R, y1: ys(v / 100), y2: ys(v / 100), class: "gridline" }));
      chart.appendChild(svg("text", { x: L - 8, y: ys(v / 100) + 4, class: "tick", "text-anchor": "end" }, v + "%"));
    }
    for (const k of ks) chart.appendChild(svg("text", { x: xs(k), y: H - B + 18, class: "tick", "text-anchor": "middle" }, String(k)));
    chart.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 6, class: "axis", "text-anchor": "middle" }, "k (samples voted, log scale)"));
    chart.appendChild(svg("text", { x: 14, y: (T + H - B) / 2, class: "axis", "text-anchor": "middle", transform: `rotate(-90 14 ${(T + H - B) / 2})` }, "accuracy"));
    for (const s of series) {
      const color = COLORS[s.run % COLORS.length];
      const pts = s.points.filter((p) => isNum(p.accuracy));
      if (s.band && pts.length > 1) {
        const upper = pts.map((p) => `${xs(p.k)},${ys(p.high)}`);
        const lower = pts.slice().reverse().map((p) => `${xs(p.k)},${ys(p.low)}`);
        chart.appendChild(svg("polygon", { points: upper.concat(lower).join(" "), fill: color, "fill-opacity": 0.12, stroke: "none" }));
      }
      chart.appendChild(svg("polyline", { points: pts.map((p) => `${xs(p.k)},${ys(p.accuracy)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": s.dash || null }));
      for (const p of pts) {
        const tip = `${s.label}: k=${p.k}, accuracy ${pct(p.accuracy)}` + (s.band && isNum(p.low) ? ` (95% of draws in ${pct(p.low)}–${pct(p.high)}, ${p.draws} draws)` : "");
        chart.appendChild(svg("circle", { cx: xs(p.k), cy: ys(p.accuracy), r: 4, fill: color, class: "point", data: { k: p.k, accuracy: p.accuracy } }, svg("title", null, tip)));
      }
    }
    const legend = el("div", { class: "legend" }, series.map((s) => el("span", { class: "key" }, el("span", { class: "swatch", data: { run: s.run } }), s.label + (s.dash ? " (dashed)" : ""))));
    return el("section", { class: "card", id: "curve" }, el("h2", null, "voting@k"),
      el("p", { class: "note" }, "Accuracy when each record votes with k of its samples (random k-subsets; the band holds 95% of the draws). The last point is the vote of all samples."),
      chart, legend);
  }

  function positionCard() {
    const runs = RUNS.map((run, ri) => [run, ri, g(run) && g(run).diagnostics]).filter((x) => x[2] && isNum(x[2].first_shown_wins_rate));
    if (!runs.length) return null;
    const box = el("div", { class: "position" });
    for (const [run, ri, d] of runs) {
      const rate = d.first_shown_wins_rate, chance = d.first_shown_chance;
      const track = el("div", { class: "track" });
      const fill = el("div", { class: "fill" });
      fill.style.width = 100 * rate + "%";
      fill.style.background = COLORS[ri % COLORS.length];
      const mark = el("div", { class: "mark", title: "an unbiased judge: " + pct(chance) });
      mark.style.left = 100 * chance + "%";
      append(track, [fill, mark]);
      const bias = rate - chance;
      const verdict = Math.abs(bias) < 0.05 ? "close to unbiased" : bias > 0 ? "favours the response shown first" : "favours responses shown later";
      box.appendChild(el("div", { class: "pos-row" },
        el("div", { class: "label" }, run.name),
        track,
        el("div", { class: "pos-text" },
          el("span", { class: "metric", data: { metric: "diagnostics.first_shown_wins_rate", run: ri, value: rate } }, pct(rate)),
          " first-shown wins against ",
          el("span", { class: "metric", data: { metric: "diagnostics.first_shown_chance", run: ri, value: chance } }, pct(chance)),
          " unbiased: " + verdict + "; position consistency ",
          el("span", { class: "metric", data: { metric: "diagnostics.position_consistency", run: ri, value: isNum(d.position_consistency) ? d.position_consistency : "" } }, pct(d.position_consistency)))));
    }
    return el("section", { class: "card" }, el("h2", null, "Position"),
      el("p", { class: "note" }, "How often a parsed sample's single top score goes to the response it was shown first, against what a judge blind to the order would give (the mark). Position consistency: pairs of samples shown in different orders that single out the same response."),
      box);
  }

  function adaptiveCard() {
    const runs = RUNS.map((run, ri) => [run, ri]).filter(([run]) => run.signature && run.signature.adaptive && run.records.length);
    if (!runs.length) return null;
    const table = el("table", { class: "grid" });
    append(table, el("thead", null, el("tr", null, ["run", "rule", "samples used", "of k × records", "saved", "stopped early", "by rule"].map((h, i) => el("th", { class: i > 1 ? "num" : null }, h)))));
    const body = el("tbody");
    for (const [run, ri] of runs) {
      const used = run.records.reduce((a, r) => a + r.used, 0);
      const full = (run.signature.k || 0) * run.records.length;
      const byRule = {};
      for (const r of run.records) if (r.stopped) byRule[r.stopped] = (byRule[r.stopped] || 0) + 1;
      const early = run.records.filter((r) => r.stopped).length;
      body.appendChild(el("tr", null, el("th", null, run.name), el("td", null, run.signature.adaptive + (run.signature.adaptive_risk ? " (risk " + run.signature.adaptive_risk + ")" : "")),
        el("td", { class: "num", data: { metric: "adaptive.used", run: ri, value: used } }, num(used)), el("td", { class: "num" }, num(full)), el("td", { class: "num" }, full ? pct(1 - used / full) : "–"),
        el("td", { class: "num" }, num(early)), el("td", { class: "num" }, Object.entries(byRule).map(([k, v]) => k + ": " + v).join(", ") || "none")));
    }
    table.appendChild(body);
    return el("section", { class: "card" }, el("h2", null, "Adaptive voting"), table);
  }

  function settingsCard() {
    const own = ["model", "protocol", "template"];
    const keys = [...new Set(RUNS.flatMap((run) => Object.keys(run.signature || {})))].filter((k) => !own.includes(k));
    const rowsDef = [["source", (run) => run.source]].concat(own.map((k) => [k, (run) => run[k] || undefined]), keys.map((k) => [k, (run) => (run.signature ? run.signature[k] : undefined)]));
    const table = el("table", { class: "grid settings" });
    append(table, el("thead", null, el("tr", null, el("th", null, ""), RUNS.map((r, i) => el("th", null, el("span", { class: "swatch", data: { run: i } }), r.name)))));
    const body = el("tbody");
    for (const [label, get] of rowsDef) {
      body.appendChild(el("tr", null, el("th", null, label), RUNS.map((run) => {
        const v = get(run);
        return el("td", null, v === undefined || v === null ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
      })));
    }
    table.appendChild(body);
    return el("section", { class: "card" }, el("h2", null, "Run"), table);
  }

  function paintSwatches(root) {
    for (const sw of root.querySelectorAll(".swatch")) sw.style.background = COLORS[Number(sw.dataset.run) % COLORS.length];
  }

  function renderSummary() {
    clear(main);
    const cards = [
      summaryTable("Accuracy", METRICS.slice(0, 8), (run, name) => (name === "records" ? (g(run) ? g(run).records : undefined) : pick(g(run), name))),
      RUNS.some((r) => r.records.length) ? outcomeBars() : null,
      curveChart(),
      positionCard(),
      subsetTable(),
      sectionsTable(),
      benchmarkTables(),
      adaptiveCard(),
      summaryTable("Samples", METRICS.slice(8), (run, name) => pick(g(run), name)),
      settingsCard(),
    ];
    append(main, el("div", { class: "summary", id: "summary" }, cards));
    paintSwatches(main);
  }

  // -- the record list ---------------------------------------------------------------------------
  function resetFilters() {
    Object.assign(state, { subset: "", status: "", unparsed: "", stop: "", mmin: "", mmax: "", q: "", differ: false, page: 0 });
  }

  function select(id, label, options, value, onChange) {
    const s = el("select", { id: id, "aria-label": label });
    for (const [v, text] of options) s.appendChild(el("option", { value: v }, text));
    s.value = value;
    s.addEventListener("change", () => onChange(s.value));
    return el("label", null, el("span", null, label), s);
  }

  let searchTimer = null;

  function renderList() {
    clear(main);
    refilter();
    const focus = RUNS[state.focus];
    const subsets = [...new Set(focus.records.map((r) => r.subset || "(none)"))].sort();
    const stops = [...new Set(focus.records.map((r) => r.stopped).filter(Boolean))].sort();
    const update = () => {
      state.page = 0;
      refilter();
      drawRows();
    };
    const filters = el("div", { class: "filters", id: "filters" },
      RUNS.length > 1 ? select("f-run", "run", RUNS.map((r, i) => [String(i), r.name]), String(state.focus), (v) => { state.focus = Number(v); renderList(); }) : null,
      subsets.length > 1 ? select("f-subset", "subset", [["", "all"]].concat(subsets.map((s) => [s, s])), state.subset, (v) => { state.subset = v; update(); }) : null,
      select("f-status", "verdict", [["", "all"]].concat(DATA.statuses.map((s) => [s, STATUS_TEXT[s]])), state.status, (v) => { state.status = v; update(); }),
      select("f-unparsed", "unparsed samples", [["", "any"], ["some", "some unparsed"], ["none", "all parsed"]], state.unparsed, (v) => { state.unparsed = v; update(); }),
      stops.length || (focus.signature && focus.signature.adaptive) ? select("f-stop", "adaptive stop", [["", "any"], ["early", "stopped early"], ["full", "all k samples"]].concat(stops.map((s) => [s, "stopped by " + s])), state.stop, (v) => { state.stop = v; update(); }) : null,
      marginInputs(update),
      RUNS.length > 1 ? differBox(update) : null,
      searchBox(update));
    const table = el("table", { class: "grid records", id: "record-table" });
    const head = el("thead");
    const body = el("tbody", { id: "record-rows" });
    append(table, [head, body]);
    const count = el("p", { id: "count", class: "count-line" });
    const pager = el("div", { class: "pager", id: "pager" });
    append(main, [filters, count, table, pager]);

    const columns = [["order", "#"], ["id", "id"], ["subset", "subset"], ["verdict", "verdict"], [null, "label"], ["status", "outcome"], ["margin", "margin"], ["unparsed", "unparsed"], ["used", "samples"]];
    if (focus.records.some((r) => r.samples.some((s) => isNum(s.meta)))) columns.push(["meta", "meta-RM"]);
    const others = RUNS.map((r, i) => i).filter((i) => i !== state.focus);
    const headRow = el("tr");
    for (const [key, label] of columns) {
      const th = el("th", { class: key ? "sortable" : null, data: key ? { sort: key } : null }, label, key === state.sort ? (state.dir > 0 ? " ▲" : " ▼") : "");
      if (key) th.addEventListener("click", () => {
        state.dir = state.sort === key ? -state.dir : 1;
        state.sort = key;
        renderList();
      });
      headRow.appendChild(th);
    }
    for (const i of others) headRow.appendChild(el("th", null, el("span", { class: "swatch", data: { run: i } }), RUNS[i].name));
    head.appendChild(headRow);

    function drawRows() {
      clear(body);
      const pages = Math.max(1, Math.ceil(visible.length / PAGE_SIZE));
      state.page = Math.min(state.page, pages - 1);
      const start = state.page * PAGE_SIZE;
      const slice = visible.slice(start, start + PAGE_SIZE);
      const frag = document.createDocumentFragment();
      for (const row of slice) frag.appendChild(recordRow(row, columns, others));
      body.appendChild(frag);
      clear(count);
      count.dataset.count = String(visible.length);
      append(count, [el("b", null, visible.length.toLocaleString("en-US")), " of " + plural(focus.records.length, "record") + (visible.length ? `; showing ${start + 1}–${start + slice.length}` : "")]);
      clear(pager);
      if (pages > 1) {
        const go = (p) => {
          state.page = p;
          drawRows();
          window.scrollTo(0, 0);
        };
        append(pager, [
          el("button", { type: "button", id: "prev-page", disabled: state.page === 0 ? "disabled" : null, on: { click: () => go(state.page - 1) } }, "‹ previous"),
          el("span", null, ` page ${state.page + 1} of ${pages} `),
          el("button", { type: "button", id: "next-page", disabled: state.page >= pages - 1 ? "disabled" : null, on: { click: () => go(state.page + 1) } }, "next ›"),
        ]);
      }
      paintSwatches(main);
    }
    drawRows();
  }

  function marginInputs(update) {
    const inputs = el("span", { class: "pair" });
    const box = el("div", { class: "margin" }, el("span", { title: "top total minus the runner-up" }, "margin"), inputs);
    for (const [key, ph] of [["mmin", "min"], ["mmax", "max"]]) {
      const input = el("input", { id: "f-" + key, type: "number", step: "any", placeholder: ph, value: state[key], "aria-label": "margin " + ph });
      input.addEventListener("input", () => {
        state[key] = input.value.trim();
        update();
      });
      inputs.appendChild(input);
    }
    return box;
  }

  function differBox(update) {
    const box = el("input", { id: "f-differ", type: "checkbox" });
    box.checked = state.differ;
    box.addEventListener("change", () => {
      state.differ = box.checked;
      update();
    });
    return el("label", { class: "check" }, box, el("span", null, "verdicts differ between runs"));
  }

  function searchBox(update) {
    const input = el("input", { id: "f-q", type: "search", placeholder: "search prompts, responses, critiques…", value: state.q, "aria-label": "search" });
    input.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        state.q = input.value.trim().toLowerCase();
        update();
      }, 200);
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        clearTimeout(searchTimer);
        state.q = input.value.trim().toLowerCase();
        update();
      }
    });
    return el("label", { class: "search" }, input);
  }

  function statusBadge(rec) {
    if (!rec) return el("span", { class: "dim" }, "–");
    const extra = rec.status === "tie" && rec.preferred !== null && rec.pick !== null ? (rec.pick === rec.preferred ? " (pick right)" : " (pick wrong)") : "";
    return el("span", { class: "badge st-" + rec.status, title: STATUS_HELP[rec.status] }, STATUS_TEXT[rec.status] + extra);
  }

  function labelText(rec) {
    if (rec.n === 1) return rec.label === null || rec.label === undefined ? "–" : rec.label ? "correct" : "incorrect";
    return rec.preferred === null || rec.preferred === undefined ? "–" : "#" + rec.preferred;
  }

  function recordRow(row, columns, others) {
    const rec = row.cells[state.focus];
    const tr = el("tr", { class: "rec-row", data: { id: row.id, status: rec.status } });
    const link = el("a", { href: "#record/" + encodeURIComponent(row.id) }, row.id);
    const cells = {
      order: () => el("td", { class: "num dim" }, String(rec.line)),
      id: () => el("td", { class: "id" }, link),
      subset: () => el("td", null, rec.subset || ""),
      verdict: () => el("td", null, verdictText(rec)),
      null: () => el("td", null, labelText(rec)),
      status: () => el("td", null, statusBadge(rec)),
      margin: () => el("td", { class: "num" }, isNum(rec.margin) ? scoreText(rec.margin) : "–"),
      unparsed: () => el("td", { class: rec.unparsed ? "num warn" : "num dim" }, String(rec.unparsed)),
      used: () => el("td", { class: "num" }, String(rec.used) + (rec.stopped ? " (" + rec.stopped + ")" : "")),
      meta: () => el("td", { class: "num" }, isNum(metaMean(rec)) ? metaMean(rec).toFixed(2) : "–"),
    };
    for (const [key] of columns) tr.appendChild(cells[String(key)]());
    for (const i of others) tr.appendChild(el("td", null, row.cells[i] ? [verdictText(row.cells[i]), " ", statusBadge(row.cells[i])] : el("span", { class: "dim" }, "not in this run")));
    tr.addEventListener("click", (ev) => {
      if (ev.target.closest("a")) return;
      navigate("#record/" + encodeURIComponent(row.id));
    });
    return tr;
  }

  // -- a record's page ----------------------------------------------------------------------------
  let neighbours = { prev: null, next: null };

  function renderRecord(id) {
    clear(main);
    neighbours = { prev: null, next: null };
    const row = rowById.get(id);
    if (!row) {
      append(main, el("p", { class: "card" }, "No record with id " + JSON.stringify(id) + " in this report. ", el("a", { href: "#records" }, "Back to the list")));
      return;
    }
    const at = visible.indexOf(row);
    const prev = at > 0 ? visible[at - 1] : null;
    const next = at >= 0 && at < visible.length - 1 ? visible[at + 1] : null;
    neighbours = { prev: prev, next: next };
    const first = row.cells.find(Boolean);
    const inp = inputOf(first);
    append(main, el("div", { class: "rec-nav" },
      el("a", { href: "#records", title: "Esc" }, "‹ records"),
      prev ? el("a", { href: "#record/" + encodeURIComponent(prev.id), id: "prev-record", title: "← or k" }, "previous") : null,
      at >= 0 ? el("span", { class: "dim" }, `${at + 1} of ${visible.length} in the list`) : null,
      next ? el("a", { href: "#record/" + encodeURIComponent(next.id), id: "next-record", title: "→ or j" }, "next") : null));
    const header = el("section", { class: "card", id: "record" },
      el("h2", null, el("span", { class: "dim" }, "record "), el("span", { id: "record-id" }, row.id)),
      el("p", null, first.subset ? ["subset ", el("b", null, first.subset), " · "] : null, "label: ", el("b", null, labelText(first)),
        first.principlesMode !== "self" ? " · principles: " + first.principlesMode + (first.oracle ? " (oracle: filtered on this record's label)" : "") : null));
    append(main, header);
    append(main, inputCard(inp, first));
    const panels = el("div", { class: "runs runs-" + Math.min(row.cells.filter(Boolean).length, 2) });
    row.cells.forEach((rec, ri) => {
      if (rec) panels.appendChild(runPanel(RUNS[ri], ri, rec));
    });
    append(main, panels);
    paintSwatches(main);
  }

  function textBlock(text, cls) {
    return el("div", { class: "text " + (cls || "") }, text === null || text === undefined ? "" : String(text));
  }

  function inputCard(inp, rec) {
    const card = el("section", { class: "card input" }, el("h2", null, "What was judged"));
    if (inp.raw) {
      card.appendChild(el("p", { class: "note" }, "The stored input is not a record grm reads today; shown as stored:"));
      card.appendChild(textBlock(inp.raw, "raw"));
      return card;
    }
    for (const [role, content] of inp.context) card.appendChild(el("div", { class: "turn" }, el("div", { class: "role" }, role), textBlock(content)));
    if (inp.rubric) card.appendChild(el("div", { class: "turn" }, el("div", { class: "role" }, "rubric"), textBlock(inp.rubric)));
    if (inp.reference) card.appendChild(el("div", { class: "turn" }, el("div", { class: "role" }, "reference answer"), textBlock(inp.reference)));
    const box = el("div", { class: "responses" });
    inp.responses.forEach((resp, i) => {
      const best = rec.n > 1 ? rec.preferred === i : false;
      box.appendChild(el("div", { class: best ? "response labelled" : "response", data: { index: i } },
        el("div", { class: "role" }, "response #" + i, best ? el("span", { class: "badge st-right" }, "labelled best") : null,
          rec.truncated.includes(i) ? el("span", { class: "badge st-tie", title: "grm cut its middle to fit the context (--on-long truncate): the model saw less than this" }, "truncated when judged") : null),
        textBlock(resp)));
    });
    card.appendChild(box);
    return card;
  }

  function voteLine(rec) {
    const parts = [];
    if (rec.status === "none") parts.push(el("b", null, "no verdict: "), `none of the ${rec.samples.length} samples could be parsed`);
    else if (rec.tied.length) {
      parts.push(el("b", null, "tie"), " between responses " + rec.tied.map((i) => "#" + i).join(", "));
      if (rec.pick !== null && rec.pick !== undefined) parts.push(` (the reported accuracy breaks it to #${rec.pick})`);
    } else if (rec.n === 1) parts.push("total ", el("b", null, scoreText(rec.totals[0])));
    else parts.push("best: ", el("b", null, "response #" + rec.best), " · margin " + scoreText(rec.margin));
    parts.push(` · ${plural(rec.votes, "vote")}, ${rec.unparsed} unparsed`, " · ", statusBadge(rec));
    if (rec.stopped) parts.push(` · adaptive: stopped after ${rec.used} samples (${rec.stopped})`);
    const out = [el("p", { class: "vote" }, parts)];
    const gv = rec.guided;
    if (gv && gv.totals) {
      out.push(el("p", { class: "note" }, `The run's own vote summed only the ${gv.k_meta} samples the meta RM rated best: ` +
        (gv.tied.length > 1 ? "a tie between " + gv.tied.map((i) => "#" + i).join(", ") : "best #" + gv.best) + " (totals " + gv.totals.map(scoreText).join(", ") + "). Above: the vote of all samples, as grm eval's accuracy counts it."));
    }
    return out;
  }

  function scoreGrid(rec, expectedMode) {
    const voted = (s) => (expectedMode && s.expected ? s.expected : s.scores);
    const table = el("table", { class: "grid scores" });
    append(table, el("thead", null, el("tr", null, el("th", null, "response"), rec.samples.map((s) => {
      const th = el("th", { class: "num" + (s.kept === false ? " dropped" : ""), title: s.kept === false ? "the meta RM left this sample out of the vote" : null }, "s" + (s.index + 1) + (s.forced ? "*" : ""));
      return th;
    }), el("th", { class: "num" }, "total"))));
    const body = el("tbody");
    for (let i = 0; i < rec.n; i++) {
      const cls = rec.status !== "none" && (rec.best === i ? "best" : rec.tied.includes(i) ? "tied" : "");
      body.appendChild(el("tr", { class: cls || null }, el("th", null, "#" + i + (rec.n > 1 && rec.preferred === i ? " (label)" : "")),
        rec.samples.map((s) => {
          const scores = voted(s);
          return el("td", { class: "num" + (scores ? "" : " unparsed") + (s.kept === false ? " dropped" : ""), title: scores ? null : "unparsed: left out of the vote" }, scores ? scoreText(scores[i]) : "–");
        }),
        el("td", { class: "num total" }, rec.totals ? scoreText(rec.totals[i]) : "–")));
    }
    table.appendChild(body);
    const notes = [];
    if (rec.samples.some((s) => s.forced)) notes.push("* score line forced by the grammar");
    if (rec.samples.some((s) => s.kept === false)) notes.push("greyed: left out by the meta RM");
    if (expectedMode) notes.push("the run voted each score's expected value (--score-mode expected): shown here; each sample below also gives the integer it wrote");
    return [el("div", { class: "scroll" }, table), notes.length ? el("p", { class: "note" }, notes.join(" · ")) : null];
  }

  function runPanel(run, ri, rec) {
    const panel = el("section", { class: "card run-panel", data: { run: ri } },
      el("h2", null, el("span", { class: "swatch", data: { run: ri } }), run.name, el("span", { class: "dim" }, "\u00a0· " + run.model + " · " + run.protocol + (run.template && run.template !== run.protocol ? " (" + run.template + ")" : "") + " · line " + rec.line)),
      voteLine(rec), scoreGrid(rec, (run.signature || {}).score_mode === "expected"));
    if (rec.given) panel.appendChild(el("div", { class: "given" }, el("div", { class: "role" }, "principles given to every sample"), textBlock(rec.given)));
    rec.samples.forEach((s) => panel.appendChild(sampleCard(s, rec)));
    return panel;
  }

  function sampleCard(s, rec) {
    const card = el("div", { class: "sample" + (s.scores ? "" : " is-unparsed") + (s.kept === false ? " dropped" : ""), data: { index: s.index } });
    const badges = [];
    if (!s.scores) badges.push(el("span", { class: "badge st-none", title: s.error || "" }, "unparsed"));
    if (s.forced) badges.push(el("span", { class: "badge st-tie", title: "the sample did not finish its verdict: its opening was forced and a grammar admitted only valid verdicts" }, "forced score line"));
    if (isNum(s.meta)) badges.push(el("span", { class: "badge " + (s.kept === false ? "st-none" : "st-right") }, "meta-RM " + s.meta.toFixed(3) + (s.kept === true ? " · kept" : s.kept === false ? " · left out" : "")));
    const order = Array.isArray(s.order) ? s.order : [];
    append(card, el("div", { class: "sample-head" },
      el("b", null, "sample " + (s.index + 1)),
      el("span", { class: "dim" }, s.seed !== null && s.seed !== undefined ? " · seed " + s.seed : ""),
      el("span", { class: "order" }, " · shown: " + order.map((i) => "#" + i).join(", ")),
      badges));
    if (s.criteria.length) {
      const item = ([text, weight]) => el("li", null, text || "", isNum(weight) ? el("span", { class: "weight" }, " " + weight + "%") : null);
      const SHOWN = 12;
      const list = el("ol", { class: "criteria" }, s.criteria.slice(0, SHOWN).map(item));
      const rest = s.criteria.length > SHOWN ? el("details", { class: "more" }, el("summary", null, `${s.criteria.length - SHOWN} more principles`),
        el("ol", { class: "criteria", start: SHOWN + 1 }, s.criteria.slice(SHOWN).map(item))) : null;
      append(card, el("div", { class: "part" }, el("div", { class: "role" }, `principles (${s.criteria.length})`), list, rest));
    } else if (s.principles) append(card, el("div", { class: "part" }, el("div", { class: "role" }, "principles"), textBlock(s.principles)));
    if (s.critique) append(card, el("div", { class: "part" }, el("div", { class: "role" }, "critique"), textBlock(s.critique)));
    if (s.calls) {
      const list = el("div", { class: "calls" });
      for (const c of s.calls) {
        list.appendChild(el("div", { class: "call" }, "response " + (c.shown || []).map((i) => "#" + i).join(", ") + " judged alone: ",
          el("b", null, c.verdict === null || c.verdict === undefined ? "no verdict" : c.verdict), c.forced ? " (forced)" : "", c.error ? el("span", { class: "warn" }, " · " + c.error) : null,
          c.text ? textBlock(c.text, "raw") : null));
      }
      append(card, el("div", { class: "part" }, el("div", { class: "role" }, "calls (absolute protocol: one per response)"), list));
    }
    const written = s.verdict !== null && s.verdict !== undefined ? s.verdict : Array.isArray(s.shown) ? s.shown.map(scoreText).join(", ") : null;
    const scoresPart = el("div", { class: "part scores-part" }, el("div", { class: "role" }, "verdict"));
    if (written !== null) {
      scoresPart.appendChild(el("p", { class: "written" }, "as written (in the order shown): ", el("code", null, written)));
    }
    if (s.scores) {
      const table = el("table", { class: "grid mapped" });
      append(table, el("thead", null, el("tr", null, el("th", null, "response"), el("th", { class: "num" }, "shown"), el("th", { class: "num" }, "score"), s.expected ? el("th", { class: "num" }, "expected") : null)));
      const body = el("tbody");
      for (let i = 0; i < s.scores.length; i++) {
        const pos = order.indexOf(i);
        body.appendChild(el("tr", null, el("th", null, "#" + i + (rec.n > 1 && rec.preferred === i ? " (label)" : "")), el("td", { class: "num" }, pos >= 0 ? ordinal(pos) : "–"),
          el("td", { class: "num" }, scoreText(s.scores[i])), s.expected ? el("td", { class: "num" }, scoreText(s.expected[i])) : null));
      }
      table.appendChild(body);
      scoresPart.appendChild(el("p", { class: "note" }, "mapped back to the record's order:"));
      scoresPart.appendChild(table);
    } else {
      scoresPart.appendChild(el("p", { class: "warn" }, "unparsed: " + (s.error || "no verdict") + " (left out of the vote, never counted as a 0)"));
    }
    append(card, scoresPart);
    if (s.text) append(card, el("details", { class: "part", open: s.scores ? null : "open" }, el("summary", null, "the whole output"), textBlock(s.text, "raw")));
    const tok = Array.isArray(s.tokens) ? s.tokens : [];
    append(card, el("p", { class: "dim small" }, `${num(tok[0])} prompt tokens · ${num(tok[1])} generated · ${isNum(s.seconds) ? s.seconds.toFixed(2) : "–"} s`));
    return card;
  }

  // -- several runs: where their verdicts differ -----------------------------------------------------
  function renderCompare() {
    clear(main);
    const table = el("table", { class: "grid", id: "agreement" });
    append(table, el("thead", null, el("tr", null, ["run", "against", "records in both", "same verdict", "differ", "only first right", "only second right"].map((h, i) => el("th", { class: i > 1 ? "num" : null }, h)))));
    const body = el("tbody");
    for (let a = 0; a < RUNS.length; a++) {
      for (let b = a + 1; b < RUNS.length; b++) {
        let both = 0, same = 0, onlyA = 0, onlyB = 0;
        for (const row of rows) {
          const x = row.cells[a], y = row.cells[b];
          if (!x || !y) continue;
          both += 1;
          if (verdictKey(x) === verdictKey(y)) same += 1;
          if (x.status === "right" && y.status !== "right") onlyA += 1;
          if (y.status === "right" && x.status !== "right") onlyB += 1;
        }
        body.appendChild(el("tr", null, el("th", null, el("span", { class: "swatch", data: { run: a } }), RUNS[a].name), el("th", null, el("span", { class: "swatch", data: { run: b } }), RUNS[b].name),
          el("td", { class: "num" }, num(both)), el("td", { class: "num" }, num(same) + " (" + pct(both ? same / both : null) + ")"),
          el("td", { class: "num", data: { metric: "differ", a: a, b: b, value: both - same } }, num(both - same)), el("td", { class: "num" }, num(onlyA)), el("td", { class: "num" }, num(onlyB))));
      }
    }
    table.appendChild(body);
    const differing = rows.filter((r) => r.differ).length;
    const button = el("button", { type: "button", id: "show-differ" }, `List the ${plural(differing, "record")} whose verdicts differ`);
    button.addEventListener("click", () => {
      resetFilters();
      state.differ = true;
      navigate("#records");
    });
    const onlyIn = RUNS.map((run, i) => rows.filter((r) => r.cells[i] && r.shared === 1).length);
    append(main, el("section", { class: "card" }, el("h2", null, "Where the runs' verdicts differ"),
      el("p", { class: "note" }, "Records are matched by id. A verdict is the response the vote singles out, a tie, or no verdict; two runs differ on a record when those are not the same."),
      table, el("p", null, button),
      onlyIn.some(Boolean) ? el("p", { class: "note" }, "Records in one run only: " + RUNS.map((r, i) => r.name + " " + onlyIn[i]).join(", ")) : null));
    paintSwatches(main);
  }

  // On a record's page: ← / k and → / j walk the filtered list, Esc goes back to it.
  document.addEventListener("keydown", (ev) => {
    if (!location.hash.startsWith("#record/") || ev.altKey || ev.ctrlKey || ev.metaKey || ev.target.closest("input, select, textarea")) return;
    const to = ev.key === "ArrowLeft" || ev.key === "k" ? neighbours.prev : ev.key === "ArrowRight" || ev.key === "j" ? neighbours.next : null;
    if (to) navigate("#record/" + encodeURIComponent(to.id));
    else if (ev.key === "Escape") navigate("#records");
  });

  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "1";
})();
