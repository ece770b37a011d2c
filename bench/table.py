"""Turns bench/kafka.sh's rows into the tables of docs/benchmarks.md.

    python3 bench/table.py RESULTS CORES [CHART.svg]

RESULTS has one row per system, round and cell:
    system|round|cell|records|rate|mb_s|p50|p99|rebalance_ms|elapsed_s|broker_cpu_s|client_cpu_s

Every figure is the median of the rounds with min–max; CPU is seconds per million records.
Ratios are against Apache Kafka, for every other system in the rows (Strata, and a
baseline build of Strata when bench/kafka.sh was given one); for cells run over TLS too
("... TLS"), each system's TLS figures against its own plaintext ones.
With CHART.svg, also draws each cell as bars relative to Kafka (= 1): records/s and the
broker's CPU per record, median with the rounds' min–max as a whisker.

A cell is client-bound when, in most rounds, the load generator spent more CPU than the
broker and the two together kept the machine's cores at least 85 % busy.
"""

import statistics
import sys
from collections import defaultdict

KAFKA, STRATA = "Apache Kafka", "Strata"


def spread(values, fmt="{:,.0f}"):
    if not values:
        return ""
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main():
    path, cores = sys.argv[1], int(sys.argv[2])
    cells = defaultdict(list)
    order = []
    systems = []
    for line in open(path):
        f = line.rstrip("\n").split("|")
        if len(f) != 12:
            continue
        system, _round, cell, records = f[0], f[1], f[2], int(f[3])
        if cell not in order:
            order.append(cell)
        if system not in systems:
            systems.append(system)
        num = lambda s: float(s) if s else None  # noqa: E731
        rate, mbs, p50, p99, rebalance, elapsed, bcpu, ccpu = map(num, f[4:])
        cells[(system, cell)].append(
            dict(rate=rate, mbs=mbs, p50=p50, p99=p99, rebalance=rebalance, elapsed=elapsed,
                 broker=bcpu / records * 1e6, client=ccpu / records * 1e6,
                 client_bound=ccpu > bcpu and (ccpu + bcpu) / max(elapsed, 1e-9) >= 0.85 * cores))

    print("| cell | broker | records/s | MB/s | p50 / p99 ms | broker CPU s per M records"
          " | load generator CPU s per M records |")
    print("|---|---|---|---|---|---|---|")
    systems.sort(key=lambda s: (s != KAFKA, s != STRATA, s))
    others = [s for s in systems if s != KAFKA]
    for cell in order:
        for system in systems:
            runs = cells.get((system, cell), [])
            if not runs:
                continue
            col = lambda k: [r[k] for r in runs if r[k] is not None]  # noqa: E731
            latency = ""
            if col("p50"):
                latency = f"{statistics.median(col('p50')):.0f} / {statistics.median(col('p99')):.0f}"
            bound = sum(r["client_bound"] for r in runs) * 2 > len(runs)
            client = spread(col("client"), "{:.2f}") + (" **client-bound**" if bound else "")
            print(f"| {cell} | {system} | {spread(col('rate'))} | {spread(col('mbs'), '{:.1f}')}"
                  f" | {latency} | {spread(col('broker'), '{:.2f}')} | {client} |")

    for other in others:
        print()
        print(f"| cell | {other} / Kafka, records/s | {other} / Kafka, broker CPU per record |")
        print("|---|---|---|")
        for cell in order:
            k, s = cells.get((KAFKA, cell)), cells.get((other, cell))
            if not k or not s:
                continue
            med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
            print(f"| {cell} | **{med(s, 'rate') / med(k, 'rate'):.2f}×** |"
                  f" {med(s, 'broker') / med(k, 'broker'):.2f}× |")

    tls_cells = [c for c in order if c.endswith(" TLS") and c[:-4] in order]
    if tls_cells:
        print()
        print("| cell | broker | TLS / plaintext, records/s | TLS / plaintext, broker CPU per record |")
        print("|---|---|---|---|")
        for cell in tls_cells:
            for system in systems:
                tls, plain = cells.get((system, cell)), cells.get((system, cell[:-4]))
                if not tls or not plain:
                    continue
                med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
                print(f"| {cell[:-4]} | {system} | {med(tls, 'rate') / med(plain, 'rate'):.2f}× |"
                      f" {med(tls, 'broker') / med(plain, 'broker'):.2f}× |")

    rebalances = [(system, [r["rebalance"] for r in cells.get((system, cell), [])
                            if r["rebalance"] is not None])
                  for cell in order for system in systems]
    rebalances = [(system, v) for system, v in rebalances if v]
    if rebalances:
        print()
        print("| broker | rebalance after a member leaves, ms | every round |")
        print("|---|---|---|")
        for system, v in rebalances:
            print(f"| {system} | {spread(v)} | {', '.join(f'{x:.0f}' for x in v)} |")


    if len(sys.argv) > 3:
        write_chart(sys.argv[3], cells, order, systems)


COLOURS = {KAFKA: "#888888", STRATA: "#2a6fdb"}


def write_chart(path, cells, order, systems):
    """Two panels of horizontal bars: throughput and CPU per record, Kafka = 1."""
    others = [s for s in systems if s != KAFKA]
    bar, gap, label_w, panel_w, top = 14, 10, 130, 300, 40
    height = top + len(order) * (len(others) * bar + gap) + 40
    width = label_w + 2 * (panel_w + 40)
    scale_max = 3.0  # bars are clipped at 3× and labelled with their value
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    panels = [("records/s, Kafka = 1 (higher is better)", "rate"),
              ("broker CPU per record, Kafka = 1 (lower is better)", "broker")]
    for p, (title, key) in enumerate(panels):
        x0 = label_w + p * (panel_w + 40)
        out.append(f'<text x="{x0}" y="20" font-weight="bold">{title}</text>')
        one = x0 + panel_w / scale_max
        out.append(f'<line x1="{one}" y1="{top - 8}" x2="{one}" y2="{height - 30}" '
                   f'stroke="#444" stroke-dasharray="3,3"/>')
        out.append(f'<text x="{one - 4}" y="{height - 16}">1</text>')
        y = top
        for cell in order:
            if p == 0:
                out.append(f'<text x="4" y="{y + bar}">{cell}</text>')
            for system in others:
                k, s = cells.get((KAFKA, cell)), cells.get((system, cell))
                if not k or not s:
                    continue
                base = statistics.median(r[key] for r in k)
                vals = [r[key] / base for r in s]
                med = statistics.median(vals)
                w = min(med, scale_max) / scale_max * panel_w
                colour = COLOURS.get(system, "#9bbcf0")
                out.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar - 3}" fill="{colour}"/>')
                lo, hi = (min(v, scale_max) / scale_max * panel_w for v in (min(vals), max(vals)))
                mid = y + (bar - 3) / 2
                out.append(f'<line x1="{x0 + lo:.1f}" y1="{mid}" x2="{x0 + hi:.1f}" y2="{mid}" stroke="black"/>')
                out.append(f'<text x="{x0 + w + 4:.1f}" y="{y + bar - 4}">{med:.2f}× {system}</text>')
                y += bar
            y += gap
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
