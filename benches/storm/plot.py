"""Latency of every admission request over time, warm and cold (benches/storm/run.sh)."""
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = Path(sys.argv[1])
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
colors = {"ok": "tab:green", "timeout": "tab:red", "error": "tab:orange", "wrong": "black"}
for ax, run, title in [
    (axes[0], "warm", "warm: images announced by push events first"),
    (axes[1], "cold", "cold: no events, first lookups verified inline"),
]:
    rows = list(csv.DictReader(open(out / f"storm-{run}.csv")))
    for outcome, color in colors.items():
        xs = [float(r["offset_s"]) for r in rows if r["outcome"] == outcome]
        ys = [float(r["latency_ms"]) for r in rows if r["outcome"] == outcome]
        if xs:
            ax.scatter(xs, ys, s=2, c=color, label=f"{outcome} ({len(xs)})")
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the storm began")
    ax.set_title(title, fontsize=10)
    ax.axhline(3000, color="gray", linestyle="--", linewidth=0.8)
    ax.legend(loc="upper right", fontsize=8, markerscale=4)
axes[0].set_ylabel("admission request latency (ms, log; dashed: 3 s deadline)")
fig.suptitle("10,000 pods x 10 images against one Verdict replica; registry 50 ms/request, 429 beyond 100 req/s")
fig.tight_layout()
fig.savefig(out / "storm-latency.png", dpi=110)
print(out / "storm-latency.png")
