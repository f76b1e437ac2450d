// Two runs side by side, task by task: the biggest changes in mean reward first.
import { get } from "./api.js";
import { go, link } from "./app.js";
import { fmt, h, pct } from "./dom.js";

const LIMIT = 50;

function side(s, fileId) {
  if (!s) return h("td", { class: "muted", text: "absent" });
  return h("td", { class: "num" }, h("span", { class: "mean", text: fmt(s.mean_reward) }),
    h("span", { class: "muted", text: ` (${s.scored}/${s.n} scored` }),
    s.pass_rate === null ? ")" : `, pass ${pct(s.pass_rate)})`,
    " ", s.rows.slice(0, 4).map((r) => h("a", { class: "rowlink", href: link({ view: "row", file: fileId, row: r }), text: `#${r}` })));
}

export async function renderCompare(box, p, files) {
  const a = Number(p.get("a") ?? 0), b = Number(p.get("b") ?? 1);
  const show = p.get("show") || "all";
  const offset = Number(p.get("offset") || 0);
  const c = await get("/api/compare", { a, b, show, offset, limit: LIMIT });
  const pick = (name, value) => h("select", { name, onchange: (e) => go({ view: "compare", a, b, show, [name]: e.target.value }) },
    files.map((f) => h("option", { value: f.id, selected: f.id === value, text: f.name })));
  const showLink = (value, label, n) => h("a", { class: show === value ? "tab active" : "tab", href: link({ view: "compare", a, b, show: value }), text: `${label} (${n})` });
  box.append(h("div", { class: "compare-head" }, h("label", {}, "A ", pick("a", a)), h("label", {}, "B ", pick("b", b)),
    h("span", { class: "muted", text: `joined by ${c.joined_by === "task_index" ? "task index" : "input hash"}` })));
  box.append(h("section", { class: "cards" },
    h("div", { class: "card", "data-stat": "mean_a" }, h("div", { class: "label", text: `Mean reward A · ${c.a.name}` }), h("div", { class: "value", text: fmt(c.mean_a) })),
    h("div", { class: "card", "data-stat": "mean_b" }, h("div", { class: "label", text: `Mean reward B · ${c.b.name}` }), h("div", { class: "value", text: fmt(c.mean_b) })),
    h("div", { class: "card good", "data-stat": "better" }, h("div", { class: "label", text: "Tasks better in B" }), h("div", { class: "value", text: c.better })),
    h("div", { class: "card bad", "data-stat": "worse" }, h("div", { class: "label", text: "Tasks worse in B" }), h("div", { class: "value", text: c.worse })),
    h("div", { class: "card", "data-stat": "same" }, h("div", { class: "label", text: "Unchanged" }), h("div", { class: "value", text: c.same }),
      h("div", { class: "sub", text: `only in A: ${c.only_a} · only in B: ${c.only_b}` }))));
  box.append(h("nav", { class: "subtabs" }, showLink("all", "all", c.better + c.worse + c.same + c.only_a + c.only_b),
    showLink("changed", "changed", c.better + c.worse), showLink("better", "better", c.better), showLink("worse", "worse", c.worse)));
  box.append(h("table", { class: "tbl compare" },
    h("thead", {}, h("tr", {}, h("th", { text: "Task" }), h("th", { text: "Prompt" }), h("th", { text: `A · ${c.a.name}` }),
      h("th", { text: `B · ${c.b.name}` }), h("th", { text: "Δ (B − A)" }))),
    h("tbody", {}, c.tasks.map((t) => h("tr", { class: t.delta > 0 ? "better" : t.delta < 0 ? "worse" : "", "data-task": t.key },
      h("td", { text: t.label }), h("td", { class: "preview", text: t.preview }), side(t.a, a), side(t.b, b),
      h("td", { class: `num delta ${t.delta > 0 ? "up" : t.delta < 0 ? "down" : ""}`, text: t.delta === null ? "–" : `${t.delta > 0 ? "+" : ""}${fmt(t.delta)}` }))))));
  if (c.matched > LIMIT) {
    const to = (o) => link({ view: "compare", a, b, show, offset: o });
    box.append(h("div", { class: "pager" }, offset > 0 ? h("a", { href: to(Math.max(0, offset - LIMIT)), text: "‹ previous" }) : null,
      h("span", { text: `${offset + 1}–${Math.min(offset + LIMIT, c.matched)} of ${c.matched}` }),
      offset + LIMIT < c.matched ? h("a", { href: to(offset + LIMIT), text: "next ›" }) : null));
  }
}
