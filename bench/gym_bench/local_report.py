"""The Markdown report of ``bench/local_model_bench.py``: server overhead against llama-cpp-python
called directly, instances x threads at each concurrency level, and the quickstart's rollouts/s
on the local model; plus the comparison of the two settings that decides the default."""

from __future__ import annotations

import statistics
from typing import Any

BAR_OVERHEAD_PCT = 10.0


def compare_settings(concurrency: dict[str, Any]) -> dict[str, Any]:
    """Per level, how much faster (aggregate tokens/s) one setting is than the other."""
    names = list(concurrency)
    a, b = names[0], names[1]
    per_level = {}
    for level, run_a in concurrency[a]["levels"].items():
        run_b = concurrency[b]["levels"][level]
        ta, tb = run_a["aggregate_tokens_per_s"], run_b["aggregate_tokens_per_s"]
        faster, slower = (a, b) if ta >= tb else (b, a)
        per_level[level] = {
            "faster": faster,
            "by_pct": round((max(ta, tb) / min(ta, tb) - 1) * 100, 1),
            f"{a}_over_{b}": round(ta / tb, 3),
            "slower": slower,
        }
    ratios = [v[f"{a}_over_{b}"] for v in per_level.values()]
    geo = statistics.geometric_mean(ratios)
    return {
        "per_level": per_level,
        f"geometric_mean_{a}_over_{b}": round(geo, 3),
        "faster_overall": a if geo >= 1 else b,
        "overall_by_pct": round((max(geo, 1 / geo) - 1) * 100, 1),
    }


def _cpu_line(cpu: dict[str, Any]) -> str:
    other, busy = cpu["other_processes_cpu_s"], cpu["machine_busy_fraction"]
    return f"{other:+.2f} CPU-s other, {busy:.0%} busy"


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = ["# Local model benchmark", ""]
    q, w = results["quiet_before"], results["watcher"]
    lines += [
        f"- date: {results['date']}; code: {results['code']}",
        f"- machine: {results['machine']['nproc']} cores, {results['machine']['cpu_model']}",
        f"- quiet before: {q['quiet']} (waited {q['waited_s']} s, load1 {q['load1_at_start']}, "
        f"busy {q['busy_processes_at_start'] or 'none'}); during: load1 max "
        f"{w['load1_max']}, build/pytest processes seen: {w['busy_processes_seen'] or 'none'}",
        "",
    ]

    o = results["overhead"]
    d, s = o["direct"], o["server"]
    verdict = "MET" if o["overhead_pct"] < BAR_OVERHEAD_PCT else "NOT MET"
    lines += [
        "## 1. Server overhead (1 instance x 2 threads vs llama-cpp-python direct, 2 threads)",
        "",
        f"{o['requests_per_side']} requests per side after 1 warm-up each, interleaved ABAB, "
        f"max_tokens {o['max_tokens']}, temperature 0, prompt {o['prompt']!r}.",
        "",
        "| side | tokens/s median | min–max | s/request median | completion tokens | "
        "prompt tokens |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, side in (("llama-cpp-python direct", d), ("local model server (HTTP)", s)):
        lines.append(
            f"| {name} | **{side['tokens_per_s_median']}** | {side['tokens_per_s_min']}–"
            f"{side['tokens_per_s_max']} | {side['seconds_median']} | "
            f"{side['completion_tokens']} | {side['prompt_tokens']} |"
        )
    lines += [
        "",
        f"**Overhead: {o['overhead_pct']} %** (bar < {BAR_OVERHEAD_PCT:g} %: **{verdict}**). "
        f"Same text on both sides: {o['same_text_on_both_sides']}. "
        f"Window: {_cpu_line(o['cpu'])}.",
        "",
    ]

    conc = results["concurrency"]
    names = list(conc)
    lines += [
        "## 2. Instances x threads (aggregate generation tokens/s, temperature 0.7)",
        "",
        "| parallel | "
        + " | ".join(f"{n}: tok/s | {n}: p50 latency s" for n in names)
        + " | faster |",
        "| --- | " + " | ".join("--- | ---" for _ in names) + " | --- |",
    ]
    cmp_ = results["settings_comparison"]
    for level, verdict_l in cmp_["per_level"].items():
        cells = []
        for n in names:
            run = conc[n]["levels"][level]
            cells.append(f"{run['aggregate_tokens_per_s']} | {run['latency_p50_s']}")
        lines.append(
            f"| {level} | " + " | ".join(cells) + f" | {verdict_l['faster']} "
            f"(+{verdict_l['by_pct']} %) |"
        )
    wins: dict[str, list[str]] = {}
    for level, v in cmp_["per_level"].items():
        wins.setdefault(v["faster"], []).append(f"{level} (+{v['by_pct']} %)")
    lines += [
        "",
        "Faster: "
        + "; ".join(f"**{n}** at {', '.join(levels)} in parallel" for n, levels in wins.items())
        + f". Geometric mean over the levels: {cmp_['faster_overall']} by "
        f"{cmp_['overall_by_pct']} %.",
        "",
        "Noise per level: "
        + "; ".join(
            f"{n} p{lv}: {_cpu_line(r['cpu'])}"
            for n in names
            for lv, r in conc[n]["levels"].items()
        ),
        "",
    ]

    roll = results["rollouts"]
    lines += [
        "## 3. Quickstart environment on the local model (defaults), 8 tasks",
        "",
        "| parallel | rollouts/s (Found N rows! → exit) | collection s | whole command s | "
        "statuses | mean _ng_num_steps | model calls/s | mean reward | p50 / max rollout s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for level, r in roll["levels"].items():
        lines.append(
            f"| {level} | **{r['rollouts_per_s']}** | {r['found_to_exit_s']} | {r['wall_s']} | "
            f"{r['statuses']} | {r['mean_num_steps']} | {r['model_calls_per_s']} | "
            f"{r['mean_reward']} | {r['rollout_elapsed_p50_s']} / {r['rollout_elapsed_max_s']} |"
        )
    lines += [
        "",
        "Noise per level: "
        + "; ".join(f"p{lv}: {_cpu_line(r['cpu'])}" for lv, r in roll["levels"].items()),
        "",
        f"Total {results['total_s']} s.",
    ]
    return "\n".join(lines)
