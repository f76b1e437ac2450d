// The rollout list of one file: filters (status, failure kind, reward range, tool, task, text),
// server-side sort and paging. Every filter is in the URL hash.
import { get } from "./api.js";
import { go, link } from "./app.js";
import { badge, fmt, h } from "./dom.js";

const LIMIT = 50;
const FILTERS = ["status", "kind", "reward_min", "reward_max", "tool", "task", "q"];

export function listState(p) {
  const state = {};
  for (const key of [...FILTERS, "sort", "order", "offset"]) if (p.get(key)) state[key] = p.get(key);
  return state;
}

function filterForm(p, file, summary) {
  const state = listState(p);
  const apply = (changes) => go({ view: "rows", file: file.id, ...state, ...changes, offset: 0 });
  const field = (label, control) => h("label", { class: "field" }, h("span", { text: label }), control);
  const select = (name, options) => h("select", {
    name, onchange: (e) => apply({ [name]: e.target.value }),
  }, options.map(([value, text]) => h("option", { value, selected: (state[name] || "") === value, text })));
  const number = (name, placeholder) => h("input", {
    name, type: "number", step: "any", placeholder, value: state[name] || "",
    onchange: (e) => apply({ [name]: e.target.value }),
  });
  const kinds = [...new Set(summary.failure_kinds.map((k) => k.kind))];
  const search = h("input", {
    name: "q", type: "search", value: state.q || "", placeholder: "search inputs and outputs…",
    onkeydown: (e) => { if (e.key === "Enter") apply({ q: e.target.value.trim() }); },
    onchange: (e) => apply({ q: e.target.value.trim() }),
  });
  return h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
    field("Search", search),
    field("Status", select("status", [["", "any"], ["completed", "completed"], ["truncated", "truncated"],
      ["failed", "failed"], ["malformed", "malformed"], ["truncated,failed", "truncated or failed"]])),
    field("Failure kind", select("kind", [["", "any"], ...kinds.map((k) => [k, k])])),
    field("Reward ≥", number("reward_min", "min")),
    field("Reward ≤", number("reward_max", "max")),
    field("Tool called", select("tool", [["", "any"], ...summary.tools.map((t) => [t.name, t.name])])),
    state.task ? h("span", { class: "chip" }, `task ${state.task}`, h("a", {
      href: link({ view: "rows", file: file.id, ...state, task: "" }), title: "remove", text: " ×" })) : null,
    h("a", { class: "clear", href: link({ view: "rows", file: file.id }), text: "clear filters" }));
}

export async function renderRows(box, p, file) {
  const state = listState(p);
  const offset = Number(state.offset || 0);
  const sort = state.sort || "line";
  const order = state.order || "asc";
  const [summary, page] = await Promise.all([
    get(`/api/files/${file.id}/summary`),
    get(`/api/files/${file.id}/rows`, { ...state, offset, limit: LIMIT, sort, order }),
  ]);
  box.append(filterForm(p, file, summary));
  const head = (key, label) => h("th", { class: key ? "sortable" : "" }, key ? h("a", {
    href: link({ view: "rows", file: file.id, ...state, sort: key, order: sort === key && order === "desc" ? "asc" : "desc", offset: 0 }),
    text: label + (sort === key ? (order === "asc" ? " ▲" : " ▼") : ""),
  }) : label);
  const rowHref = (id) => link({ view: "row", file: file.id, row: id, ...state });
  box.append(h("div", { class: "count", "data-matched": page.matched },
    `${fmt(page.matched)} of ${fmt(page.total)} rollouts`));
  const table = h("table", { class: "tbl rows" },
    h("thead", {}, h("tr", {}, head("line", "Line"), head("status", "Status"), head("reward", "Reward"),
      head("steps", "Steps"), summary.has_tokens || page.rows.some((r) => r.tokens !== null) ? head("tokens", "Tokens") : null,
      head("elapsed", "Time"), head("task", "Task"), h("th", { text: "Tools" }), h("th", { text: "Prompt" }))),
    h("tbody", {}, page.rows.map((r) => h("tr", { class: `row ${r.status}`, "data-row": r.id },
      h("td", { class: "num" }, h("a", { href: rowHref(r.id), text: r.line })),
      h("td", {}, badge(r.status), r.failure_kind ? h("span", { class: "kind", text: r.failure_kind }) : null),
      h("td", { class: "num reward", text: fmt(r.reward) }),
      h("td", { class: "num", text: fmt(r.steps) }),
      summary.has_tokens || page.rows.some((x) => x.tokens !== null) ? h("td", { class: "num", text: fmt(r.tokens) }) : null,
      h("td", { class: "num", text: r.elapsed_s === null ? "–" : `${r.elapsed_s.toFixed(1)}s` }),
      h("td", { class: "num", text: r.task_index === null ? "–" : `${r.task_index}.${r.repeat_index ?? 0}` }),
      h("td", { class: "tools", text: r.tools.join(", ") }),
      h("td", { class: "preview" }, h("a", { href: rowHref(r.id), text: r.error ? `⚠ ${r.error}` : r.preview || "(no prompt)" }))))));
  box.append(page.rows.length ? table : h("p", { class: "muted empty", text: "No rollout matches these filters." }));
  if (page.matched > LIMIT) {
    const to = (o) => link({ view: "rows", file: file.id, ...state, offset: o });
    box.append(h("div", { class: "pager" },
      offset > 0 ? h("a", { href: to(Math.max(0, offset - LIMIT)), text: "‹ previous" }) : null,
      h("span", { text: `${fmt(offset + 1)}–${fmt(Math.min(offset + LIMIT, page.matched))} of ${fmt(page.matched)}` }),
      offset + LIMIT < page.matched ? h("a", { href: to(offset + LIMIT), text: "next ›" }) : null));
  }
}
