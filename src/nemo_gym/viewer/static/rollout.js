// One rollout in full: status and reward, verifier fields, input messages, tools offered, then
// every output item in order (tool calls, tool outputs, assistant text, reasoning collapsed,
// errors), token counts and per-token generation logprobs.
import { get } from "./api.js";
import { link } from "./app.js";
import { listState } from "./rows.js";
import { badge, fmt, h, pretty, textOf } from "./dom.js";

const MAX_TOKENS_SHOWN = 4000;

function block(kind, title, ...body) {
  return h("div", { class: `item ${kind}`, "data-kind": kind },
    h("div", { class: "item-head" }, title), ...body);
}

function code(value) {
  const { text, json } = pretty(value);
  return h("pre", { class: json ? "code json" : "code" }, text);
}

function tokens(item) {
  const gen = item.generation_token_ids;
  const lps = item.generation_log_probs;
  const prompt = item.prompt_token_ids;
  if (!Array.isArray(gen) && !Array.isArray(prompt)) return null;
  const box = h("div", { class: "tokens" });
  const mean = Array.isArray(lps) && lps.length ? lps.reduce((a, b) => a + b, 0) / lps.length : null;
  box.append(h("div", { class: "token-counts" },
    `prompt tokens: ${Array.isArray(prompt) ? prompt.length : "–"} · generated tokens: ${Array.isArray(gen) ? gen.length : "–"}`,
    mean === null ? "" : ` · mean logprob ${mean.toFixed(3)}`));
  if (Array.isArray(gen)) {
    const strip = h("div", { class: "token-strip", title: "generated token ids, tinted by probability" });
    gen.slice(0, MAX_TOKENS_SHOWN).forEach((id, i) => {
      const lp = Array.isArray(lps) ? lps[i] : undefined;
      const p = typeof lp === "number" ? Math.exp(lp) : null;
      const bucket = p === null ? "pn" : `p${Math.min(9, Math.floor(p * 10))}`;
      strip.append(h("span", {
        class: `tok ${bucket}`,
        title: p === null ? `token ${id}` : `token ${id} · logprob ${lp.toFixed(4)} · p ${p.toFixed(3)}`,
        text: String(id),
      }));
    });
    if (gen.length > MAX_TOKENS_SHOWN) strip.append(h("span", { class: "muted", text: ` … ${gen.length - MAX_TOKENS_SHOWN} more` }));
    box.append(h("details", { class: "logprobs", open: gen.length <= 400 },
      h("summary", { text: "generation logprobs per token" }), strip));
  }
  return box;
}

function renderItem(item, index) {
  const n = `#${index + 1} `;
  const type = item.type || (item.role ? "message" : "unknown");
  if (type === "function_call") {
    const args = pretty(item.arguments ?? "");
    return block("function_call", [n, "Tool call · ", h("b", { text: item.name ?? "?" }),
      h("span", { class: "muted", text: ` ${item.call_id ?? ""}` })],
      h("pre", { class: args.json ? "code json" : "code" }, args.text),
      args.json ? null : h("div", { class: "warn", text: "arguments are not valid JSON" }), tokens(item));
  }
  if (type === "function_call_output") {
    return block("function_call_output", [n, "Tool output", h("span", { class: "muted", text: ` ${item.call_id ?? ""}` })],
      code(typeof item.output === "string" ? item.output : textOf(item.output)));
  }
  if (type === "reasoning") {
    const text = [textOf(item.summary), textOf(item.content)].filter(Boolean).join("\n\n");
    return h("details", { class: "item reasoning", "data-kind": "reasoning" },
      h("summary", { class: "item-head" }, `${n}Reasoning`), h("div", { class: "text", text: text || "(empty)" }), tokens(item));
  }
  if (type === "message") {
    const role = item.role || "assistant";
    return block(`message ${role}`, [n, h("span", { class: `role ${role}`, text: role })],
      h("div", { class: "text", text: textOf(item.content) }), tokens(item));
  }
  return block("other", [n, type], code(item));
}

function inputMessage(item, i) {
  if (item.type && item.type !== "message") return renderItem(item, i);
  const role = item.role || "user";
  return block(`message ${role}`, [h("span", { class: `role ${role}`, text: role })],
    h("div", { class: "text", text: textOf(item.content) }));
}

function fieldTable(data) {
  const keys = Object.keys(data).filter((k) => !["responses_create_params", "response"].includes(k) && !k.startsWith("_ng_"));
  keys.sort((a, b) => (a === "reward" ? -1 : b === "reward" ? 1 : 0));
  return h("table", { class: "tbl fields" }, keys.map((k) => h("tr", { "data-field": k },
    h("th", { text: k }),
    h("td", {}, typeof data[k] === "string" ? h("div", { class: "text", text: data[k] }) : code(data[k])))));
}

export async function renderRollout(box, p, file) {
  const id = Number(p.get("row") || 0);
  const row = await get(`/api/files/${file.id}/rows/${id}`);
  const back = link({ view: "rows", file: file.id, ...listState(p) });
  const nav = h("div", { class: "crumbs" }, h("a", { href: back, text: "‹ back to the list" }),
    id > 0 ? h("a", { href: link({ ...Object.fromEntries(p.entries()), row: id - 1 }), text: "previous row" }) : null,
    id + 1 < file.rows ? h("a", { href: link({ ...Object.fromEntries(p.entries()), row: id + 1 }), text: "next row" }) : null);
  box.append(nav);
  if (row.status === "malformed") {
    box.append(h("h2", {}, `Line ${row.line} `, badge("malformed")),
      h("div", { class: "error-box", text: row.error }), h("pre", { class: "code", text: row.raw }));
    return;
  }
  const d = row.data;
  const failure = d._ng_failure;
  box.append(h("div", { class: "detail-head" },
    h("h2", {}, `Line ${row.line} `, badge(row.status)),
    h("div", { class: "big-reward", "data-reward": d.reward ?? "" }, h("span", { class: "label", text: "reward" }),
      h("span", { class: "value", text: d.reward === null || d.reward === undefined ? "none" : fmt(d.reward) })),
    h("div", { class: "meta" }, [
      ["task", d._ng_task_index], ["repeat", d._ng_repeat_index], ["steps", d._ng_num_steps],
      ["time", d._ng_elapsed_s === undefined || d._ng_elapsed_s === null ? null : `${fmt(d._ng_elapsed_s)}s`],
    ].filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => h("span", {}, h("b", { text: k }), ` ${v}`)))));
  if (failure) {
    box.append(h("div", { class: row.status === "failed" ? "error-box" : "warn-box", "data-failure": failure.kind },
      h("b", { text: failure.kind }), failure.step !== null && failure.step !== undefined ? ` at step ${failure.step}: ` : ": ",
      failure.message));
  }
  box.append(h("section", { class: "panel" }, h("h3", { text: "Reward and verifier fields" }), fieldTable(d)));
  const params = d.responses_create_params || {};
  const input = typeof params.input === "string" ? [{ role: "user", content: params.input }] : params.input || [];
  const inputs = h("section", { class: "panel inputs" }, h("h3", { text: "Input" }));
  if (params.instructions) inputs.append(block("message system", h("span", { class: "role system", text: "instructions" }), h("div", { class: "text", text: params.instructions })));
  input.forEach((item, i) => inputs.append(inputMessage(item, i)));
  box.append(inputs);
  const tools = params.tools || [];
  if (tools.length) {
    box.append(h("section", { class: "panel tools-offered" }, h("h3", { text: `Tools offered (${tools.length})` }),
      tools.map((t) => h("details", { class: "tool", open: tools.length <= 4 },
        h("summary", {}, h("b", { class: "tool-name", text: t.name ?? t.type }), h("span", { class: "muted", text: ` — ${t.description ?? ""}` })),
        code(t.parameters ?? t)))));
  }
  const response = d.response || {};
  const output = Array.isArray(response.output) ? response.output : [];
  const outputs = h("section", { class: "panel outputs" }, h("h3", { text: `Output (${output.length} items)` }));
  output.forEach((item, i) => outputs.append(renderItem(item, i)));
  if (response.error) outputs.append(block("error", "Response error", code(response.error)));
  if (failure && row.status === "failed") outputs.append(block("error", `Failed: ${failure.kind}`, h("div", { class: "text", text: failure.message })));
  if (!output.length && !failure) outputs.append(h("p", { class: "muted", text: "No output items." }));
  box.append(outputs);
  const rest = Object.fromEntries(Object.entries(params).filter(([k, v]) => !["input", "tools"].includes(k) && v !== null));
  box.append(h("details", { class: "panel" }, h("summary", { text: "Sampling parameters" }), code(rest)));
  if (response.usage) box.append(h("details", { class: "panel" }, h("summary", { text: "Usage" }), code(response.usage)));
  box.append(h("details", { class: "panel" }, h("summary", { text: "Raw JSON of this line" }), code(d)));
}
