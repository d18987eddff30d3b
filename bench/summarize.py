#!/usr/bin/env python3
"""Turns a bench/run results folder into a Markdown table (stdout).

summarize.py FOLDER             one run
summarize.py --compare REV DIR  bench/compare-with's rounds (DIR/before-N, DIR/after-N):
                                the median of each figure, before and after
"""
import json
import pathlib
import re
import statistics
import sys

# What --compare sets side by side: (label, how to read it from a result).
COMPARED = [
    ("deliveries/s", lambda r: r["deliveries_per_second"], "{:,.0f}"),
    ("server µs/delivery", lambda r: r["server_cpu_us_per_delivery"], "{:.3f}"),
    ("server kernel share",
     lambda r: r["server_kernel_seconds"] / r["server_cpu_seconds"] if r["server_cpu_seconds"] > 0
     else None, "{:.2f}"),
    ("bench µs/delivery", lambda r: r["bench_cpu_us_per_delivery"], "{:.3f}"),
    ("machine idle share", lambda r: idle_share(r["machine_seconds"]), "{:.2f}"),
    ("latency p50 ms", lambda r: r["latency_us"]["p50"] / 1000, "{:.1f}"),
    ("latency p99 ms", lambda r: r["latency_us"]["p99"] / 1000, "{:.1f}"),
    ("lost", lambda r: r["lost"], "{:.0f}"),
    ("logins s", lambda r: r["login_seconds"], "{:.2f}"),
    ("rooms: joins s", lambda r: r["join_seconds"] if r.get("rooms") else None, "{:.2f}"),
    ("rooms: faults", lambda r: room_faults(r) if r.get("rooms") else None, "{:.0f}"),
    ("RSS B/connection", lambda r: r["server_rss_bytes_per_connection"], "{:,.0f}"),
    ("storm: all back s", lambda r: r["storm_back_seconds"], "{:.2f}"),
    ("storm: joins over s", lambda r: r["storm_settled_seconds"], "{:.2f}"),
    ("storm: frames per client", lambda r: r["frames_per_client"], "{:,.0f}"),
    ("storm: bytes per client", lambda r: r["bytes_per_client"], "{:,.0f}"),
]


def idle_share(machine):
    """The share of all CPUs' time that went to nothing during the window."""
    return machine["idle"] / sum(machine.values())


def room_faults(r):
    """Everything a room's member saw that rule 17 forbids (gaps show as loss)."""
    return (r["room_order_faults"] + r["wrong_room_frames"] + r["join_order_faults"])


def load_text(r):
    """The clients, and the rooms they are in besides the lobby."""
    rooms = r.get("rooms", 0)
    return f" in {rooms} rooms" if rooms else ""


def results(folder):
    """(scenario, its JSON result or None when the run left none) for each scenario run."""
    for path in sorted(folder.glob("*.json")):
        if path.stem == "callgrind":
            continue
        try:
            yield path.stem, json.loads(path.read_text())
        except ValueError:
            yield path.stem, None


def compare(rev, folder):
    """Medians over the rounds of every figure each scenario has, before and after."""
    figures = {}  # (scenario, label) -> {"before": [...], "after": [...]}
    rounds = 0
    for side in ("before", "after"):
        for run in sorted(folder.glob(f"{side}-*")):
            rounds = max(rounds, int(run.name.split("-")[1]))
            for scenario, r in results(run):
                if r is None:
                    continue  # that round failed: its progress file says why
                for label, read, _ in COMPARED:
                    if r.get("idle") and label not in ("RSS B/connection", "logins s",
                                                       "rooms: joins s", "rooms: faults"):
                        continue
                    try:
                        value = read(r)
                    except (KeyError, TypeError):
                        continue
                    if value is None or value < 0:
                        continue  # not measured in this scenario
                    figures.setdefault((scenario, label), {"before": [], "after": []})[side].append(value)
    formats = {label: fmt for label, _, fmt in COMPARED}
    print(f"Medians of {rounds} rounds, {rev} (before) and this tree (after), run alternately.\n")
    print("| scenario | figure | before | after | after/before | rounds |")
    print("|---|---|---|---|---|---|")
    for (scenario, label), sides in figures.items():
        if not sides["before"] or not sides["after"]:
            continue
        before = statistics.median(sides["before"])
        after = statistics.median(sides["after"])
        ratio = f"{after / before:.3f}" if before else ""
        fmt = formats[label]
        print(f"| {scenario} | {label} | {fmt.format(before)} | {fmt.format(after)} | {ratio} | "
              f"{len(sides['before'])}/{len(sides['after'])} |")


if sys.argv[1] == "--compare":
    compare(sys.argv[2], pathlib.Path(sys.argv[3]))
    sys.exit(0)

folder = pathlib.Path(sys.argv[1])
rows = []
for scenario, r in results(folder):
    if r is None:
        rows.append(f"| {scenario} | (no result: see {scenario}.progress) |" + " |" * 9)
        continue
    if r.get("storm"):
        rows.append(
            f"| {scenario} | {r['clients']} clients, server restarted | {r['login_seconds']:.2f} s | "
            f"all back after {r['storm_back_seconds']:.2f} s, joins over after "
            f"{r['storm_settled_seconds']:.2f} s | | | | | "
            f"{r['frames_per_client']:,.0f} frames, {r['bytes_per_client']:,.0f} B per client | |")
        continue
    lat = r["latency_us"]
    if r["idle"]:
        per_conn = r["server_rss_bytes_per_connection"]
        rows.append(
            f"| {scenario} | {r['connected']}/{r['clients']} idle{load_text(r)} | "
            f"{r['login_seconds']:.2f} s | "
            f"| | | | | {per_conn:.0f} B/conn | {sum(r['close_codes'].values())} |")
        continue
    rows.append(
        f"| {scenario} | {r['connected']} clients{load_text(r)}, {r['senders']} senders"
        f"{', rate ' + str(r['rate']) if r['rate'] else ', window ' + str(r['window'])}"
        f"{', ack all' if r.get('ack') == 'all' else ''}"
        f"{', aligned' if r.get('aligned') else ''} | "
        f"{r['login_seconds']:.2f} s | "
        f"{r['deliveries_per_second']:,.0f} | {r['lost']} | "
        f"{lat['p50'] / 1000:.1f} / {lat['p99'] / 1000:.1f} / {lat['max'] / 1000:.1f} | "
        f"{r['server_cpu_us_per_delivery']:.2f} | {r['bench_cpu_us_per_delivery']:.2f} | | "
        f"{sum(r['close_codes'].values())} |")

print("| scenario | load | logins | deliveries/s | lost | latency ms p50/p99/max | "
      "server µs/delivery | bench µs/delivery | idle RSS | drops |")
print("|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))

# Where the CPU went during each window (seconds, summed over the CPUs).
split = [(scenario, r) for scenario, r in results(folder)
         if r and not r.get("storm") and not r["idle"] and "machine_seconds" in r]
if split:
    print("\n| scenario | server user / kernel s | bench user / kernel s | machine: irq / steal / idle s "
          "| window s |")
    print("|---|---|---|---|---|")
    for scenario, r in split:
        server, kernel = r["server_cpu_seconds"], r["server_kernel_seconds"]
        bench, bench_kernel = r["bench_cpu_seconds"], r["bench_kernel_seconds"]
        m = r["machine_seconds"]
        server_text = f"{server - kernel:.2f} / {kernel:.2f}" if server >= 0 else "(no pid)"
        print(f"| {scenario} | {server_text} | {bench - bench_kernel:.2f} / {bench_kernel:.2f} | "
              f"{m['irq']:.2f} / {m['steal']:.2f} / {m['idle']:.2f} | {r['duration_seconds']:.1f} |")

# Rooms (bench/run rooms, idle-rooms, cluster-rooms): the join phase, loss and
# faults per room, and each figure beside the lobby's measured in the same run.
room_runs = [(scenario, r) for scenario, r in results(folder) if r and r.get("rooms")]
if room_runs:
    lobby = {scenario: r for scenario, r in results(folder) if r and not r.get("rooms")
             and not r.get("storm")}
    # The lobby fan-out acknowledged by every receiver: bench/run rooms runs it
    # as lobby-fanout-ack-all; bench/run fanout as fanout-ack-all.
    fanout = next((lobby[name] for name in ("lobby-fanout-ack-all", "fanout-ack-all")
                   if name in lobby), None)
    print("\n| scenario | rooms | joined | join phase s | lost (rooms with loss, most in one) | "
          "order faults | gaps | wrong-room frames | between welcome and history | "
          "server µs/delivery | beside the lobby |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario, r in room_runs:
        beside = ""
        if r["idle"]:
            twin = next((l for l in lobby.values() if l["idle"] and l["clients"] == r["clients"]),
                        None)
            if twin and twin["server_rss_bytes_per_connection"] >= 0 \
                    and r["server_rss_bytes_per_connection"] >= 0:
                extra = r["server_rss_bytes_per_connection"] - twin["server_rss_bytes_per_connection"]
                beside = (f"{r['server_rss_bytes_per_connection']:,.0f} B/conn, "
                          f"{extra:+,.0f} B/conn on the lobby's {twin['clients']} idle "
                          f"(target ≤ +1,024)")
            lost = ""
            per_delivery = ""
        else:
            lost = f"{r['lost']} ({r['rooms_with_loss']}, {r['room_max_lost']})"
            per_delivery = f"{r['server_cpu_us_per_delivery']:.3f}"
            if r.get("ack") == "all" and fanout and fanout["server_cpu_us_per_delivery"] > 0 \
                    and r["server_cpu_us_per_delivery"] >= 0:
                ratio = r["server_cpu_us_per_delivery"] / fanout["server_cpu_us_per_delivery"]
                beside = (f"{ratio:.2f}x the lobby fan-out's "
                          f"{fanout['server_cpu_us_per_delivery']:.3f} µs (target ≤ 2x)")
        print(f"| {scenario} | {r['rooms']} | {r['joined']}/{r['joins']} "
              f"({r['join_failures']} failed) | {r['join_seconds']:.2f} | {lost} | "
              f"{r['room_order_faults']} | {r['room_gaps']} | {r['wrong_room_frames']} | "
              f"{r['join_order_faults']} | {per_delivery} | {beside} |")

# The history flooders (bench/run history-flood): the server's memory while they ask.
for scenario, r in results(folder):
    if r and r.get("history_flooders"):
        print(f"\n{scenario}: {r['history_flooders']} history flooders, {r['history_logins']} "
              f"logins, {r['history_requests']:,} requests; server RSS "
              f"{r['server_rss_flood_start_kib']:,} KiB when they began asking, peak "
              f"{r['server_rss_peak_kib']:,} KiB")

callgrind = folder / "callgrind.txt"
result = folder / "callgrind.json"
if callgrind.exists() and result.exists():
    text = callgrind.read_text()
    total = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", text)
    fan_out = re.search(r"([\d,]+) \(\s*[\d.]+%\)\s+[^\n]*chat::hub::Hub::fan_out", text)
    try:
        delivered = json.loads(result.read_text())["delivered_total"] or 0
    except ValueError:
        delivered = 0
    if total and delivered:
        t = int(total.group(1).replace(",", ""))
        line = f"\ncallgrind (200 clients, 1 sender): {t / delivered:,.0f} instructions per delivery in all"
        if fan_out:
            f = int(fan_out.group(1).replace(",", ""))
            line += f", {f / delivered:,.0f} in the hub's fan-out"
        print(line + f" ({delivered:,} deliveries).")
