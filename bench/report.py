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
    """threads -> (GFLOP/s, shape): the best over all sgemm_peak lines (several runs)."""
    out = {}
    for k, r in rows:
        if k == "sgemm_peak":
            t, g = int(r["threads"]), float(r["gflops"])
            if t not in out or g > out[t][0]:
                out[t] = (g, r["shape"])
    return out


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
    out.append("| T | threads | tok/s (best) | tok/s (median) | GFLOP/s | sgemm peak | % of peak | 2 vs 1 thread "
               "| CPU s / pass | GFLOP per CPU-s |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
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
            cpu = float(r.get("cpu_s", "nan"))
            out.append("| %d | %d | %.0f | %.0f | %.1f | %.1f | %.0f%% | %s | %.2f | %.1f |" % (
                T, th, float(r["tok_s_best"]), float(r["tok_s_median"]), g, p, 100 * g / p, sp,
                cpu, float(r["gflop"]) / cpu))


def rss_of(d, stem):
    """(mem row, peak RSS bytes from /usr/bin/time -v) of an --rss run."""
    mem = next((r for k, r in parse(os.path.join(d, stem + ".txt")) if k == "mem"), None)
    load = next((r for k, r in parse(os.path.join(d, stem + ".txt")) if k == "load"), None)
    p = os.path.join(d, stem + "_time.txt")
    rss = None
    if os.path.exists(p):
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(p).read())
        rss = float(m.group(1)) * 1024 if m else None
    if rss is None and mem:
        rss = float(mem["maxrss_bytes"])
    return mem, load, rss


def variants(d, out):
    """Default OpenBLAS vs Debian's OpenMP build, interleaved rounds at T=512."""
    res = {}
    for v in ("default", "openmp"):
        for r in range(1, 10):
            for k, row in parse(os.path.join(d, "variant_%s_%d.txt" % (v, r))):
                if k == "fwd" and "T" in row:
                    res.setdefault((v, int(row["threads"])), []).append(row)
    if not res:
        return
    out.append("### OpenBLAS build: linked default vs Debian's OpenMP build (libopenblas0-openmp), T=512")
    out.append("Same binary, the OpenMP build loaded through LD_LIBRARY_PATH; rounds interleaved so both share the "
               "machine's load. Best = fastest pass over all rounds; CPU s = process CPU time per pass (median), "
               "which busy-waiting threads inflate.")
    out.append("")
    out.append("| OpenBLAS build | threads | tok/s (best) | tok/s (median of rounds) | CPU s / pass |")
    out.append("| --- | --- | --- | --- | --- |")
    for v in ("default", "openmp"):
        for th in (1, 2):
            rows = res.get((v, th))
            if not rows:
                continue
            best = min(float(r["best_s"]) for r in rows)
            bs = sorted(float(r["best_s"]) for r in rows)
            cpu = sorted(float(r.get("cpu_s", "nan")) for r in rows)
            out.append("| %s | %d | %.0f | %.0f | %.2f |" % (
                "linked (default)" if v == "default" else "OpenMP build", th, 512 / best,
                512 / bs[len(bs) // 2], cpu[len(cpu) // 2]))
    out.append("")


def gpt2(d, pk, out):
    """GPT-2-small/medium-shaped Hugging Face folders: speed, load time, RSS."""
    rows = []
    for size in ("small", "medium"):
        fw = fwd_rows(parse(os.path.join(d, "gpt2_%s_fwd.txt" % size)))
        mem, load, rss = rss_of(d, "gpt2_%s_rss" % size)
        if fw or mem:
            rows.append((size, fw, mem, load, rss))
    if not rows:
        return
    out.append("### GPT-2-shaped random models (Hugging Face folders, F32 safetensors, mmap'ed)")
    out.append("")
    out.append("| model | T | threads | tok/s (best) | tok/s (median) | GFLOP/s | % of sgemm peak | GFLOP per CPU-s |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size, fw, mem, load, rss in rows:
        for T in (128, 512):
            for th in (1, 2):
                r = fw.get((T, th))
                if not r:
                    continue
                p = pk.get(th, (float("nan"), ""))[0]
                out.append("| GPT-2-%s | %d | %d | %.0f | %.0f | %.1f | %.0f%% | %.1f |" % (
                    size, T, th, float(r["tok_s_best"]), float(r["tok_s_median"]), float(r["gflops"]),
                    100 * float(r["gflops"]) / p, float(r["gflop"]) / float(r.get("cpu_s", "nan"))))
    out.append("")
    out.append("| model | weights (file) | open | first 512-token pass (2 threads) | peak RSS | RSS / (weights + "
               "activations) |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    for size, fw, mem, load, rss in rows:
        if not mem:
            continue
        w, a = float(mem["weights_bytes"]), float(mem["act_alloc_bytes"])
        out.append("| GPT-2-%s | %.1f MB | %s s | %s s | %.1f MB | %.3f (activations %.1f MB) |" % (
            size, mb(w), load.get("open_s", "?") if load else "?", load.get("first_pass_s", "?") if load else "?",
            mb(rss), rss / (w + a), mb(a)))
    out.append("open = model_open (header, config, mmap); the first pass faults the weights in from the page cache. "
               "RSS counts each weight page once: the mapped file, not a second copy.")
    out.append("")


def main():
    d = sys.argv[1]
    env = {}
    for k, r in parse(os.path.join(d, "env.txt")):
        env.update(r)
        if k.startswith("loadavg_"):
            env[k.split("=", 1)[0]] = k.split("=", 1)[1]
    sg = parse(os.path.join(d, "sgemm.txt")) + parse(os.path.join(d, "sgemm2.txt"))
    fw = parse(os.path.join(d, "fwd.txt"))
    pk, fwd = peaks(sg), fwd_rows(fw)
    model = next((r for k, r in fw if k == "fwd" and "model" in r), {})
    out = []
    out.append("## probe forward-pass benchmark")
    out.append("")
    out.append("%s; machine: %s, %s CPUs; OpenBLAS %s, core %s (OPENBLAS_CORETYPE=%s); load average (1, 5, 15 min) "
               "%s at start, %s after the forward-pass part" % (
                   env.get("date", "?"), env.get("cpu", "?"), env.get("nproc", "?"), env.get("openblas", "?"),
                   blas_core(sg), env.get("OPENBLAS_CORETYPE", "?"), env.get("loadavg_start", "?"),
                   env.get("loadavg_fwd_end", "?")))
    out.append("model: random-weight Llama, d=%s, %s layers, ff=%s, %s heads, vocab %s, f32 (llama2.c file); "
               "prompt of random ids at position 0, logits for the last token" % (
                   model.get("d"), model.get("layers"), model.get("ff"), model.get("heads"), model.get("vocab")))
    try:
        busy = float(env.get("loadavg_start", "0").split()[0])
    except ValueError:
        busy = 0.0
    if busy > 0.5:
        out.append("WARNING: the machine was busy before the run (1-minute load average %.2f): other processes "
                   "share the cores, so the figures (2-thread ones most) are low and noisy. GFLOP per CPU-s "
                   "(useful FLOPs / process CPU time) does not count the time other processes hold the cores: "
                   "with 1 thread it is close to the quiet machine's GFLOP/s" % busy)
    r512 = fwd.get((512, 1))
    if r512:
        out.append("work at T=512: %.1f GFLOP counted (linear maps %.1f + causal attention %.1f + LM head %.2f); "
                   "%.1f GFLOP if attention were the full T x T square" % (
                       float(r512["gflop"]), float(r512["gflop_linear"]), float(r512["gflop_attn"]),
                       float(r512["gflop_lm_head"]), float(r512.get("gflop_full", "nan"))))
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
            if th == 1 and "cpu_s" in r:
                fc = float(r["gflop"]) / float(r["cpu_s"]) / pk[th][0]
                out.append("  (1 thread, by CPU time instead of wall time: %.0f%% of the peak -> %s)" % (
                    100 * fc, "MET" if fc >= PEAK_TARGET else "NOT MET"))

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
    variants(d, out)
    gpt2(d, pk, out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
