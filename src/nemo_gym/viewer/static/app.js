// Router, navigation, live refresh, and the overview of a file. State lives in the URL hash,
// so a filtered view can be shared and reloaded. Views: overview (here), rows (rows.js),
// row (rollout.js), compare (compare.js).
import { get } from "./api.js";
import { renderCompare } from "./compare.js";
import { badge, fmt, h, pct, svg } from "./dom.js";
import { renderRollout } from "./rollout.js";
import { renderRows } from "./rows.js";

const main = document.getElementById("main");
const POLL_MS = 1500;
let files = [];
let seen = {};
let renderSeq = 0;

export function params() {
  return new URLSearchParams(location.hash.slice(1));
}

export function link(values) {
  const p = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== "") p.set(key, value);
  }
  return `#${p.toString()}`;
}

export function go(values, replace = false) {
  const target = link(values);
  if (replace) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  render();
}

export function fileOf(p) {
  const id = Number(p.get("file") || 0);
  return files.find((f) => f.id === id) || files[0];
}

function renderNav(p, view) {
  const file = fileOf(p);
  const tab = (name, label, values) =>
    h("a", { href: link(values), class: view === name ? "tab active" : "tab", text: label });
  const nav = document.getElementById("nav");
  const items = [
    tab("overview", "Overview", { view: "overview", file: file.id }),
    tab("rows", "Rollouts", { view: "rows", file: file.id }),
  ];
  if (files.length > 1) {
    items.push(tab("compare", "Compare", { view: "compare", a: 0, b: 1 }));
    const select = h(
      "select",
      { class: "file-select", "aria-label": "file", onchange: (e) => go({ view, file: e.target.value }) },
      files.map((f) => h("option", { value: f.id, selected: f.id === file.id, text: f.name })),
    );
    items.push(select);
  }
  items.push(h("span", { class: "file-name", title: file.path, text: file.path }));
  nav.replaceChildren(...items);
}

export async function render({ quiet = false } = {}) {
  const seq = ++renderSeq;
  const p = params();
  const view = p.get("view") || "overview";
  renderNav(p, view);
  const box = h("div", { class: `view view-${view}` });
  try {
    if (view === "rows") await renderRows(box, p, fileOf(p));
    else if (view === "row") await renderRollout(box, p, fileOf(p));
    else if (view === "compare") await renderCompare(box, p, files);
    else await renderOverview(box, p, fileOf(p));
  } catch (err) {
    box.replaceChildren(h("div", { class: "error-box", text: err.message }));
  }
  if (seq !== renderSeq) return;
  const y = window.scrollY;
  main.replaceChildren(box);
  if (quiet) window.scrollTo(0, y);
  else if (!p.get("keep")) window.scrollTo(0, 0);
  document.body.dataset.ready = String(seq);
}

function card(key, label, value, sub, href) {
  const body = [
    h("div", { class: "label", text: label }),
    h("div", { class: "value", text: value }),
    sub ? h("div", { class: "sub", text: sub }) : null,
  ];
  return href
    ? h("a", { class: "card", href, "data-stat": key }, body)
    : h("div", { class: "card", "data-stat": key }, body);
}

function histogram(bins) {
  const width = 520, height = 150, pad = 24;
  const max = Math.max(1, ...bins.map((b) => b.count));
  const bw = (width - 2 * pad) / bins.length;
  const shapes = bins.map((b, i) => {
    const bh = ((height - 2 * pad) * b.count) / max;
    const x = pad + i * bw, y = height - pad - bh;
    return svg("g", {}, svg("rect", { x: x + 1, y, width: bw - 2, height: bh, class: "bar" },
      svg("title", {}, `${fmt(b.lo, 2)}–${fmt(b.hi, 2)}: ${b.count} rows`)),
      b.count ? svg("text", { x: x + bw / 2, y: y - 4, class: "bar-n" }, String(b.count)) : null);
  });
  const lo = bins[0]?.lo ?? 0, hi = bins[bins.length - 1]?.hi ?? 1;
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "hist", role: "img" }, shapes,
    svg("line", { x1: pad, x2: width - pad, y1: height - pad, y2: height - pad, class: "axis" }),
    svg("text", { x: pad, y: height - 6, class: "tick" }, fmt(lo, 2)),
    svg("text", { x: width - pad, y: height - 6, class: "tick end" }, fmt(hi, 2)));
}

function ciText(r) {
  if (r.ci_low === null) return "one row: no interval";
  const how = r.ci_method === "wilson" ? "Wilson, rewards 0/1" : "Student t";
  return `95% CI [${fmt(r.ci_low)}, ${fmt(r.ci_high)}] (${how})`;
}

async function renderOverview(box, p, file) {
  const s = await get(`/api/files/${file.id}/summary`);
  const rowsLink = (extra) => link({ view: "rows", file: file.id, ...extra });
  const c = s.status_counts;
  const r = s.reward;
  const passAt1 = s.pass_at_k.find((x) => x.k === 1);
  box.append(
    h("section", { class: "cards" },
      card("rows", "Rows", fmt(s.rows), `${fmt(s.tasks)} tasks × up to ${s.max_repeats}`, rowsLink({})),
      card("completed", "Completed", fmt(c.completed), pct(s.rows ? c.completed / s.rows : null), rowsLink({ status: "completed" })),
      card("truncated", "Truncated", fmt(c.truncated), null, rowsLink({ status: "truncated" })),
      card("failed", "Failed", fmt(c.failed), "no reward; not averaged", rowsLink({ status: "failed" })),
      c.malformed ? card("malformed", "Malformed lines", fmt(c.malformed), null, rowsLink({ status: "malformed" })) : null,
      card("mean", "Mean reward", r ? fmt(r.mean) : "–",
        r ? `${ciText(r)} · n=${r.n}` : "no scored rows"),
      card("pass1", `Pass@1 (reward ≥ ${s.pass_threshold})`, passAt1 ? pct(passAt1.value) : "–",
        passAt1 ? `over ${passAt1.tasks} tasks` : null),
    ),
  );
  const grid = h("section", { class: "grid" });
  grid.append(h("div", { class: "panel" }, h("h3", { text: "Reward histogram" }),
    s.histogram.length ? histogram(s.histogram) : h("p", { class: "muted", text: "No scored rows." }),
    r ? h("p", { class: "muted", text: `min ${fmt(r.min)} · max ${fmt(r.max)} · std ${fmt(r.std)}` }) : null));
  grid.append(h("div", { class: "panel" }, h("h3", { text: "pass@k" }),
    s.pass_at_k.length
      ? h("table", { class: "tbl passk" }, h("tr", {}, h("th", { text: "k" }), h("th", { text: "pass@k" }), h("th", { text: "tasks" })),
        s.pass_at_k.map((x) => h("tr", {}, h("td", { text: x.k }), h("td", { text: pct(x.value) }), h("td", { text: x.tasks }))))
      : h("p", { class: "muted", text: "No scored rows." }),
    h("p", { class: "muted", text: "Unbiased estimator over each task's scored repeats." })));
  const kinds = h("div", { class: "panel" }, h("h3", { text: "Failures and truncations" }));
  if (!s.failure_kinds.length) kinds.append(h("p", { class: "muted", text: "None." }));
  else kinds.append(h("table", { class: "tbl kinds" }, s.failure_kinds.map((k) =>
    h("tr", {}, h("td", {}, badge(k.status)),
      h("td", {}, h("a", { href: rowsLink({ status: k.status, kind: k.kind }), text: k.kind })),
      h("td", { class: "num", text: k.count })))));
  grid.append(kinds);
  grid.append(h("div", { class: "panel" }, h("h3", { text: "Tools called" }),
    s.tools.length ? h("table", { class: "tbl" }, s.tools.map((t) => h("tr", {},
      h("td", {}, h("a", { href: rowsLink({ tool: t.name }), text: t.name })),
      h("td", { class: "num", text: `${t.rows} rows` })))) : h("p", { class: "muted", text: "No tool calls." })));
  box.append(grid);
  if (s.malformed.length) {
    box.append(h("section", { class: "panel malformed-list" }, h("h3", { text: "Malformed lines" }),
      h("ul", {}, s.malformed.map((m) => h("li", {},
        h("a", { href: link({ view: "row", file: file.id, row: m.row }), text: `line ${m.line}` }),
        ` — ${m.error}`)))));
  }
  await renderTasks(box, p, file);
}

async function renderTasks(box, p, file) {
  const offset = Number(p.get("toffset") || 0);
  const sort = p.get("tsort") || "task";
  const order = p.get("torder") || (sort === "task" ? "asc" : "asc");
  const page = await get(`/api/files/${file.id}/tasks`, { offset, limit: 20, sort, order });
  const here = Object.fromEntries(p.entries());
  const head = (key, label) => h("th", {}, h("a", {
    href: link({ ...here, tsort: key, torder: sort === key && order === "asc" ? "desc" : "asc", toffset: 0, keep: 1 }),
    text: label + (sort === key ? (order === "asc" ? " ▲" : " ▼") : ""),
  }));
  const panel = h("section", { class: "panel" }, h("h3", { text: `Tasks (${page.total})` }));
  panel.append(h("table", { class: "tbl tasks" },
    h("tr", {}, head("task", "Task"), h("th", { text: "Prompt" }), h("th", { text: "Rollouts" }),
      head("failed", "Failed"), head("mean_reward", "Mean reward"), head("pass_rate", "Pass rate")),
    page.tasks.map((t) => h("tr", {},
      h("td", {}, h("a", { href: link({ view: "rows", file: file.id, task: t.key, sort: "task" }), text: t.label })),
      h("td", { class: "preview", text: t.preview }),
      h("td", { class: "num", text: t.n }),
      h("td", { class: "num", text: t.failed }),
      h("td", { class: "num", text: fmt(t.mean_reward) }),
      h("td", { class: "num", text: t.pass_rate === null ? "–" : `${t.passed}/${t.scored}` })))));
  if (page.total > 20) {
    panel.append(h("div", { class: "pager" },
      offset > 0 ? h("a", { href: link({ ...here, toffset: Math.max(0, offset - 20), keep: 1 }), text: "‹ previous" }) : null,
      h("span", { text: `${offset + 1}–${Math.min(offset + 20, page.total)} of ${page.total}` }),
      offset + 20 < page.total ? h("a", { href: link({ ...here, toffset: offset + 20, keep: 1 }), text: "next ›" }) : null));
  }
  box.append(panel);
}

async function poll() {
  const live = document.getElementById("live");
  try {
    let changed = false;
    for (const f of files) {
      const v = await get(`/api/files/${f.id}/version`);
      if (seen[f.id] !== undefined && seen[f.id] !== v.version) {
        changed = true;
        f.rows = v.rows;
      }
      seen[f.id] = v.version;
    }
    const shown = fileOf(params());
    live.replaceChildren(h("span", { class: "dot" }), `live · ${fmt(shown.rows)} rows in ${shown.name}`);
    live.className = "live on";
    const view = params().get("view") || "overview";
    if (changed && view !== "row") await render({ quiet: true });
  } catch {
    live.replaceChildren(h("span", { class: "dot" }), "server stopped");
    live.className = "live off";
  }
  setTimeout(poll, POLL_MS);
}

async function start() {
  const list = await get("/api/files");
  files = list.files;
  for (const f of files) seen[f.id] = f.version;
  window.addEventListener("hashchange", () => render());
  await render();
  setTimeout(poll, POLL_MS);
}

start().catch((err) => main.replaceChildren(h("div", { class: "error-box", text: err.message })));
