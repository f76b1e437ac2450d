"""Results: medians over repetitions, the Markdown report (start-up, collection, CPU per 1000
rollouts, the bars, py-spy), results.json, and ``--merge`` of earlier results.json files."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from .common import BAR_HEALTHY_S, BAR_PEAK_RSS_MB, BAR_ROLLOUTS_PER_S_AT_64


def median_tree(items: list[Any]) -> Any:
    """Median of numbers, recursively through dicts; the most common value otherwise."""
    items = [i for i in items if i is not None]
    if not items:
        return None
    first = items[0]
    if isinstance(first, bool):
        return all(items)
    if isinstance(first, (int, float)):
        nums = [i for i in items if isinstance(i, (int, float))]
        med = statistics.median(nums)
        return round(med, 4) if isinstance(med, float) else med
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for i in items if isinstance(i, dict) for k in i))
        return {k: median_tree([i.get(k) for i in items if isinstance(i, dict)]) for k in keys}
    try:
        return (
            Counter(json.dumps(i, sort_keys=True) for i in items).most_common(1)[0][0]
            if isinstance(first, list)
            else Counter(items).most_common(1)[0][0]
        )
    except TypeError:
        return first


def fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def report(results: dict[str, Any]) -> str:
    med = results["median"]
    reps = results["repetitions"]
    k = len(reps)
    lines = [f"# Gym benchmark ({results['date']})", ""]
    m = results["machine"]
    lines.append(
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_gib']} GiB RAM, "
        f"Python {m['python']}. Rows: {results['args']['rows']}. "
        f"Figures are medians of {k} repetition(s)"
        + (" (per-run values in brackets)." if k > 1 else ".")
    )
    lines.append("")

    def per_run(get: Any, nd: int = 2) -> str:
        vals = []
        for r in reps:
            try:
                vals.append(fmt(get(r), nd))
            except (KeyError, TypeError):
                vals.append("–")
        return f" [{', '.join(vals)}]" if k > 1 else ""

    st = med["startup"]
    lines += [
        "## Start-up",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| Popen(ng_run) → every /server_instances entry healthy | "
        f"{fmt(st['healthy_wall_s'])} s{per_run(lambda r: r['startup']['healthy_wall_s'])} |",
        f"| ng_run's own \"All {st.get('ng_run_reported_servers')} servers healthy "
        'in X s" | '
        f"{fmt(st['ng_run_reported_s'])} s"
        f"{per_run(lambda r: r['startup']['ng_run_reported_s'])} |",
        f"| peak summed RSS during start-up | "
        f"{fmt(st['memory'].get('peak_rss_sum_mb'), 0)} MB"
        f"{per_run(lambda r: r['startup']['memory']['peak_rss_sum_mb'], 0)} |",
        f"| ng_run stop on SIGINT | {fmt(med['shutdown'].get('stop_s'))} s, exit code "
        f"{med['shutdown'].get('exit_code')} |",
        "",
    ]

    lines += [
        "## Collection (ng_collect_rollouts)",
        "",
        "| parallel | wall s | rollouts/s | rollouts/s excl. CLI start-up | CLI start-up s "
        "| p50 rollout s | p99 rollout s | statuses | upstream req/rollout "
        "| peak RSS sum MB | peak PSS sum MB | biggest process (RSS MB) "
        "| machine CPU busy (whole / excl. CLI start-up) |",
        "| " + " | ".join(["---"] * 13) + " |",
    ]
    for p, lv in med["levels"].items():
        mem = lv.get("memory") or {}
        big = mem.get("biggest_process") or {}
        lines.append(
            f"| {p} | {fmt(lv['wall_s'])} | {fmt(lv['rollouts_per_s'], 1)}"
            f"{per_run(lambda r, p=p: r['levels'][p]['rollouts_per_s'], 1)} "
            f"| {fmt(lv['rollouts_per_s_excl_startup'], 1)}"
            f"{per_run(lambda r, p=p: r['levels'][p]['rollouts_per_s_excl_startup'], 1)} "
            f"| {fmt(lv['startup_to_found_s'])} | {fmt(lv['elapsed_p50_s'], 3)} "
            f"| {fmt(lv['elapsed_p99_s'], 3)} | {json.dumps(lv['statuses']).replace('|', '/')} "
            f"| {fmt(lv['upstream_requests_per_rollout'])} | {fmt(mem.get('peak_rss_sum_mb'), 0)} "
            f"| {fmt(mem.get('peak_pss_sum_mb'), 0)} "
            f"| {big.get('label')} ({fmt(big.get('rss_mb'), 0)}) "
            f"| {fmt(100 * (lv.get('cpu_utilisation_of_machine') or 0), 0)}% / "
            f"{fmt(100 * (lv.get('cpu_utilisation_of_machine_excl_startup') or 0), 0)}% |"
        )
    lines.append("")

    labels = list(
        dict.fromkeys(lab for lv in med["levels"].values() for lab in lv["cpu_s_per_1000_rollouts"])
    )
    ps = list(med["levels"])
    lines += [
        "## CPU seconds per 1000 rollouts (psutil cpu_times delta over the whole command)",
        "",
        "| process | " + " | ".join(f"p={p}" for p in ps) + " |",
        "| --- | " + " | ".join("---" for _ in ps) + " |",
    ]
    for lab in labels:
        lines.append(
            f"| {lab} | "
            + " | ".join(fmt(med["levels"][p]["cpu_s_per_1000_rollouts"].get(lab)) for p in ps)
            + " |"
        )
    lines.append(
        "| **all Gym processes** | "
        + " | ".join(fmt(med["levels"][p]["gym_cpu_s_per_1000_rollouts"]) for p in ps)
        + " |"
    )
    lines.append(
        "| fake OpenAI endpoint (not Gym) | "
        + " | ".join(
            fmt(1000 * med["levels"][p]["fake_openai_cpu_s"] / med["levels"][p]["rows"]) for p in ps
        )
        + " |"
    )
    lines.append(
        "| this harness (sampler, pipes) | "
        + " | ".join(
            fmt(1000 * med["levels"][p]["bench_harness_cpu_s"] / med["levels"][p]["rows"])
            for p in ps
        )
        + " |"
    )
    lines.append(
        "| other processes on the machine (noise) | "
        + " | ".join(
            fmt(1000 * med["levels"][p]["other_processes_cpu_s"] / med["levels"][p]["rows"])
            for p in ps
        )
        + " |"
    )
    lines.append("")

    peak = med.get("peak_rss_sum_mb_overall")
    rps64 = (med["levels"].get("64") or {}).get("rollouts_per_s")
    healthy = st["healthy_wall_s"]
    lines += ["## Bars", "", "| bar | measured | verdict |", "| --- | --- | --- |"]

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("met" if ok else "**missed**")

    lines.append(
        f"| >= {BAR_ROLLOUTS_PER_S_AT_64:.0f} rollouts/s at 64 in parallel | "
        f"{fmt(rps64, 1)} rollouts/s | "
        f"{verdict(None if rps64 is None else rps64 >= BAR_ROLLOUTS_PER_S_AT_64)} |"
    )
    lines.append(
        f"| peak RSS of all Gym processes < {BAR_PEAK_RSS_MB:.0f} MB | {fmt(peak, 0)} MB "
        f"(summed RSS; PSS {fmt(med.get('peak_pss_sum_mb_overall'), 0)} MB) | "
        f"{verdict(None if peak is None else peak < BAR_PEAK_RSS_MB)} |"
    )
    lines.append(
        f"| all servers healthy within {BAR_HEALTHY_S:.0f} s of ng_run | "
        f"{fmt(healthy)} s | "
        f"{verdict(None if healthy is None else healthy <= BAR_HEALTHY_S)} |"
    )
    lines.append("")

    prof = results.get("profile")
    if prof and "profiles" in prof:
        run = prof["run"]
        lines += [
            f"## py-spy profile (separate run: {run['rows']} rows at parallel "
            f"{run['parallel']}, {prof['duration_s']} s at {prof['rate_hz']} Hz, "
            f"{run['rollouts_per_s']} rollouts/s under the profiler)",
            "",
        ]
        for label, pr in prof["profiles"].items():
            if not pr.get("samples"):
                continue
            lines += [
                f"### {label} ({pr['samples']} samples = on CPU {pr.get('active_pct')}% "
                f"of the window; raw stacks: `{pr['raw_file']}`)",
                "",
                "| self % | function |",
                "| --- | --- |",
            ]
            for row in pr["top_self"]:
                lines.append(f"| {row['pct']} | `{row['function']}` |")
            lines.append("")
            lines.append(
                "By package (self): "
                + ", ".join(f"{r['package']} {r['pct']}%" for r in pr["by_package"][:8])
            )
            lines.append("")
    return "\n".join(lines)


def finish(results: dict[str, Any], out: Path) -> str:
    """Add the medians and the Markdown report to ``results``, write ``<out>/results.json``
    and return the report."""
    results["median"] = median_tree(results["repetitions"])
    text = report(results)
    results["report_markdown"] = text
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return text


def merge(paths: list[str], out: Path) -> str:
    """Pool the repetitions of several results.json files (e.g. separate invocations); write
    the pooled ``<out>/results.json`` and return the report of their medians."""
    loaded = [json.loads(Path(f).read_text(encoding="utf-8")) for f in paths]
    results = {k: v for k, v in loaded[-1].items() if k not in ("median", "report_markdown")}
    results["merged_from"] = [
        {"file": f, "date": r["date"], "command": r["command"]}
        for f, r in zip(paths, loaded, strict=True)
    ]
    results["repetitions"] = [rep for r in loaded for rep in r["repetitions"]]
    dates = sorted(r["date"] for r in loaded)
    results["date"] = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    profiles = [r["profile"] for r in loaded if r.get("profile")]
    if profiles:
        results["profile"] = profiles[-1]
    return finish(results, out)
