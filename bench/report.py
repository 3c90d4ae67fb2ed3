"""Turns the key=value files of bench/run.sh into the table `make bench` prints.

Usage: report.py RESULTS_DIR.  Standard library only.  Targets (issue
acceptance): GFLOP/s at T=512 at least 50% of the sgemm peak measured in the
same run at the same thread count; peak RSS within 10% of the weights file
plus the activation buffers fwd_new allocates (RSS <= 1.10 x that sum).
"""
import os
import re
import shlex
import sys

PEAK_TARGET = 0.50
RSS_TARGET = 1.10


def parse(path):
    """Lines of 'kind key=value ...' -> list of (kind, dict)."""
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            parts = shlex.split(line)
            if not parts:
                continue
            kv = {}
            for p in parts[1:]:
                if "=" in p:
                    k, v = p.split("=", 1)
                    kv[k] = v
            rows.append((parts[0], kv))
    return rows


def peaks(rows):
    return {int(r["threads"]): (float(r["gflops"]), r["shape"]) for k, r in rows if k == "sgemm_peak"}


def fwd_rows(rows):
    return {(int(r["T"]), int(r["threads"])): r for k, r in rows if k == "fwd" and "T" in r}


def blas_core(rows):
    for k, r in rows:
        if k == "blas":
            return r.get("core", "?")
    return "?"


def mb(x):
    return float(x) / 1e6


def speed_table(fwd, pk, Ts, out):
    out.append("| T | threads | tok/s (best) | tok/s (median) | GFLOP/s | sgemm peak | % of peak | 2 vs 1 thread |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for T in Ts:
        for th in (1, 2):
            r = fwd.get((T, th))
            if not r:
                continue
            p = pk.get(th, (float("nan"), "?"))[0]
            g = float(r["gflops"])
            sp = ""
            if th == 2 and (T, 1) in fwd:
                sp = "%.2fx" % (float(fwd[(T, 1)]["best_s"]) / float(r["best_s"]))
            out.append("| %d | %d | %.0f | %.0f | %.1f | %.1f | %.0f%% | %s |" % (
                T, th, float(r["tok_s_best"]), float(r["tok_s_median"]), g, p, 100 * g / p, sp))


def main():
    d = sys.argv[1]
    env = {}
    for k, r in parse(os.path.join(d, "env.txt")):
        env.update(r)
        if k.startswith("loadavg_end="):
            env["loadavg_end"] = k.split("=", 1)[1]
    sg = parse(os.path.join(d, "sgemm.txt"))
    fw = parse(os.path.join(d, "fwd.txt"))
    pk, fwd = peaks(sg), fwd_rows(fw)
    model = next((r for k, r in fw if k == "fwd" and "model" in r), {})
    out = []
    out.append("## probe forward-pass benchmark")
    out.append("")
    out.append("machine: %s, %s CPUs; OpenBLAS core %s (OPENBLAS_CORETYPE=%s); load average %s at start, %s at end" % (
        env.get("cpu", "?"), env.get("nproc", "?"), blas_core(sg), env.get("OPENBLAS_CORETYPE", "?"),
        env.get("loadavg_start", "?"), env.get("loadavg_end", "?")))
    out.append("model: random-weight Llama, d=%s, %s layers, ff=%s, %s heads, vocab %s, f32 (llama2.c file); "
               "prompt of random ids at position 0, logits for the last token" % (
                   model.get("d"), model.get("layers"), model.get("ff"), model.get("heads"), model.get("vocab")))
    try:
        busy = float(env.get("loadavg_start", "0").split()[0])
    except ValueError:
        busy = 0.0
    if busy > 0.5:
        out.append("WARNING: the machine was busy before the run (1-minute load average %.2f): other processes "
                   "share the cores, so the figures (2-thread ones most) are low and noisy" % busy)
    r512 = fwd.get((512, 1))
    if r512:
        out.append("work at T=512: %.1f GFLOP counted (linear maps %.1f + attention %.1f as computed, full TxT "
                   "per head + LM head %.2f); %.1f GFLOP if attention counted causal-only" % (
                       float(r512["gflop"]), float(r512["gflop_linear"]), float(r512["gflop_attn"]),
                       float(r512["gflop_lm_head"]), float(r512["gflop_causal"])))
    out.append("sgemm peak (best over square and model-shaped products): " + ", ".join(
        "%d thread%s %.1f GFLOP/s (%s)" % (t, "" if t == 1 else "s", g, s) for t, (g, s) in sorted(pk.items())))
    out.append("")
    speed_table(fwd, pk, (128, 512), out)
    out.append("")

    # Targets.
    for th in (1, 2):
        r = fwd.get((512, th))
        if r and th in pk:
            frac = float(r["gflops"]) / pk[th][0]
            out.append("target >= 50%% of sgemm peak at T=512, %d thread%s: %.0f%% -> %s" % (
                th, "" if th == 1 else "s", 100 * frac, "MET" if frac >= PEAK_TARGET else "NOT MET"))

    mem = next((r for k, r in parse(os.path.join(d, "rss.txt")) if k == "mem"), None)
    tv = ""
    p = os.path.join(d, "rss_time.txt")
    if os.path.exists(p):
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(p).read())
        tv = m.group(1) if m else ""
    if mem:
        w, a, u = float(mem["weights_bytes"]), float(mem["act_alloc_bytes"]), float(mem["act_used_bytes"])
        rss = float(tv) * 1024 if tv else float(mem["maxrss_bytes"])
        ratio = rss / (w + a)
        out.append("peak RSS (T=%s, %s threads, /usr/bin/time -v): %.1f MB; weights file %.1f MB + activations "
                   "%.1f MB allocated by fwd_new (%.1f MB of them written for this model) = %.1f MB; "
                   "RSS / (weights + activations) = %.3f (vs written only: %.3f)" % (
                       mem["T"], mem["threads"], mb(rss), mb(w), mb(a), mb(u), mb(w + a), ratio, rss / (w + u)))
        out.append("target RSS within 10%% of weights + activations: %.3f -> %s" % (
            ratio, "MET" if ratio <= RSS_TARGET else "NOT MET"))
    out.append("")

    prof = parse(os.path.join(d, "profile.txt"))
    for th in (1, 2):
        tot = next((r for k, r in prof if k == "prof" and r.get("threads") == str(th) and "total_ms" in r), None)
        parts = [r for k, r in prof if k == "prof" and r.get("threads") == str(th) and "part" in r]
        if not tot:
            continue
        out.append("profile T=512, %d thread%s (instrumented; %.0f ms per pass, %.0f%% in sgemm):" % (
            th, "" if th == 1 else "s", float(tot["total_ms"]), float(tot["gemm_pct"])))
        for r in parts[:8]:
            g = " at %s GFLOP/s" % r["gflops"] if "gflops" in r else ""
            out.append("  %5.1f%%  %7.1f ms  %s%s" % (float(r["pct"]), float(r["ms"]), r["part"], g))
    out.append("")

    sg2, fw2 = parse(os.path.join(d, "sgemm_nocore.txt")), parse(os.path.join(d, "fwd_nocore.txt"))
    if sg2:
        pk2, fwd2 = peaks(sg2), fwd_rows(fw2)
        out.append("### with OPENBLAS_CORETYPE unset (OpenBLAS chose core %s)" % blas_core(sg2))
        out.append("sgemm peak: " + ", ".join(
            "%d thread%s %.1f GFLOP/s" % (t, "" if t == 1 else "s", g) for t, (g, s) in sorted(pk2.items())))
        out.append("")
        speed_table(fwd2, pk2, (512,), out)
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
