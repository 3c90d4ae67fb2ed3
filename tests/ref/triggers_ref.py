#!/usr/bin/python3
"""Brute-force reference for `probe triggers` (Geva et al. 2021 trigger examples).

Written from the command's documented semantics (docs/FORMAT.md, `probe
triggers --help`), not from its C code.  It reads the corpus itself, encodes
every document with tests/ref/llama_ref.py's tokenizer, runs each window
through llama_ref's float64 forward pass, records EVERY activation of every
counted position, and sorts: the top N per neuron (largest first, ties to the
lower document then position; per document: each document's best position).
Then it checks probe's HDF5 file against that:

  * the same triggers in the same order: strictly ordered in probe's own
    float32 values, and rank by rank the reference's trigger; a swap is
    accepted only between positions whose float64 activations differ by less
    than twice the float32-vs-float64 error of the forward pass (a near-tie
    the two computations may order either way), is counted and printed, and
    may touch at most 1% of the triggers.  Bit-exact order (exact ties
    included) is tests/test_triggers.c's in-process brute force;
  * activations (key, pre, up) within tolerance, token ids, next token ids,
    prefix texts (decoded here);
  * next-token ranks in the value projection E v_i (exact up to float32
    near-ties), value top-1 tokens, and the per-layer agreement table
    recomputed from those;
  * statistics: mean, variance, skewness, kurtosis (GSL's definitions), min,
    max, density, histogram totals, and the running quantiles: the P^2
    estimator (Jain & Chlamtac 1985, written here from the paper) fed the
    same subsample must give the same estimates.

With --csv it also reads the CSV output with pandas and checks that every row
(prefix texts with quotes, commas and newlines included) equals the HDF5 file.

Usage:
  triggers_ref.py --model M --tokenizer T --corpus C [--format text|lines|jsonl]
                  --h5 OUT.h5 [--csv OUT.csv]
Everything else (layers, window, stride, top, context, per, rank_by, skip_bos)
is read from the HDF5 file's attributes.  Exit 0 and "triggers_ref: OK" on
success."""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import llama_ref as R  # noqa: E402

FAILS = []
# Near-tie tolerance for trigger order (see the swap check in main()).
NEAR_TIE_ABS, NEAR_TIE_REL = 2e-5, 2e-5


def fail(msg):
    FAILS.append(msg)
    if len(FAILS) <= 20:
        print("MISMATCH:", msg)


def read_docs(path, fmt):
    """[(doc_id, text or None)]: None for a skipped document."""
    data = open(path, "rb").read()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines = lines[:-1]
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]

    def blank(ln):
        return ln.strip(b" \t\r\f\v") == b""

    out = []
    if fmt == "jsonl":
        for ln in lines:
            if blank(ln):
                continue
            try:
                o = json.loads(ln.decode("utf-8"))
                t = o.get("text") if isinstance(o, dict) else None
                out.append(t if isinstance(t, str) and t else None)
            except (UnicodeDecodeError, ValueError):
                out.append(None)
        return list(enumerate(out))
    if fmt == "lines":
        raw = [ln for ln in lines if not blank(ln)]
    else:
        raw, cur = [], []
        for ln in lines:
            if blank(ln):
                if cur:
                    raw.append(b"\n".join(cur))
                    cur = []
            else:
                cur.append(ln)
        if cur:
            raw.append(b"\n".join(cur))
    for i, d in enumerate(raw):
        try:
            out.append((i, d.decode("utf-8")))
        except UnicodeDecodeError:
            out.append((i, None))
    return out


def windows(n, W, S, skip_bos):
    """[(start, end, first counted row)] as documented: window k covers
    [kS, kS+W); a position counts in the first window holding it."""
    res, prev_end, s0 = [], 0, 0
    while True:
        e = min(s0 + W, n)
        r0 = 0 if s0 == 0 else prev_end - s0
        if skip_bos and r0 == 0:
            r0 = 1
        if r0 < e - s0:
            res.append((s0, e, r0))
        prev_end = e
        if e >= n:
            break
        s0 += S
    return res


def decode_prefix(pieces, ids, start, pos, special):
    """Decoded text of ids[start..pos]: specials drop out, the dummy-prefix
    space after BOS / at the document start is dropped."""
    prev = ids[start - 1] if start > 0 else 1
    out = b""
    for t in ids[start:pos + 1]:
        if t in special:
            prev = t
            continue
        p = pieces[t]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            p = bytes([int(p[3:5], 16)])
        elif prev == 1 and p.startswith(b" "):
            p = p[1:]
        out += p
        prev = t
    return out.replace(b"\x00", b"\xef\xbf\xbd").decode("utf-8", errors="replace")


def gsl_moments(x):
    n = len(x)
    mean = x.mean()
    d = x - mean
    M2, M3, M4 = (d ** 2).sum(), (d ** 3).sum(), (d ** 4).sum()
    var = M2 / (n - 1) if n > 1 else 0.0
    skew = (n - 1) ** 1.5 / n * M3 / M2 ** 1.5 if M2 > 0 else np.nan
    kurt = ((n - 1) / n) * (n - 1) * M4 / (M2 * M2) - 3.0 if M2 > 0 else np.nan
    return mean, var, skew, kurt


def p2_quantiles(X, p):
    """The P^2 running quantile estimate (Jain & Chlamtac, "The P^2 algorithm
    for dynamic calculation of quantiles and histograms without storing
    observations", CACM 28(10), 1985) of each column of X (n, F), fed in row
    order, all columns at once.  Fewer than 5 values: the sample quantile
    (linear interpolation)."""
    n_obs, F = X.shape
    if n_obs <= 5:
        return np.quantile(X, p, axis=0) if n_obs else np.full(F, np.nan)
    q = np.sort(X[:5], axis=0).astype(np.float64)      # marker heights (5, F)
    n = np.tile(np.arange(1.0, 6.0)[:, None], (1, F))   # marker positions, 1-based
    want = np.array([1, 1 + 2 * p, 1 + 4 * p, 3 + 2 * p, 5])
    dwant = np.array([0, p / 2, p, (1 + p) / 2, 1])
    cols = np.arange(F)
    for x in X[5:]:
        x = x.astype(np.float64)
        q[0] = np.minimum(q[0], x)
        q[4] = np.maximum(q[4], x)
        # cell k: q[k] <= x < q[k+1], k in 0..3
        k = (x >= q[1]).astype(int) + (x >= q[2]) + (x >= q[3])
        n += np.arange(5)[:, None] > k[None, :]
        want = want + dwant
        for i in (1, 2, 3):
            d = want[i] - n[i]
            move = ((d >= 1) & (n[i + 1] - n[i] > 1)) | ((d <= -1) & (n[i - 1] - n[i] < -1))
            if not move.any():
                continue
            s = np.sign(d)
            par = q[i] + s / (n[i + 1] - n[i - 1]) * (
                (n[i] - n[i - 1] + s) * (q[i + 1] - q[i]) / (n[i + 1] - n[i])
                + (n[i + 1] - n[i] - s) * (q[i] - q[i - 1]) / (n[i] - n[i - 1]))
            ok = (q[i - 1] < par) & (par < q[i + 1])
            j = (i + s).astype(int)
            with np.errstate(invalid="ignore", divide="ignore"):  # columns that do not move
                lin = q[i] + s * (q[j, cols] - q[i]) / (n[j, cols] - n[i])
            q[i] = np.where(move, np.where(ok, par, lin), q[i])
            n[i] = np.where(move, n[i] + s, n[i])
    return q[2]


def close(a, b, rtol, atol):
    return abs(a - b) <= atol + rtol * abs(b)


def demo_corpus(prompts_csv):
    """The demo model's fact prompts, each followed by its object: one line each."""
    import csv
    for row in csv.DictReader(open(prompts_csv, newline="")):
        print(f"{row['prompt']} {row['object']}")
    return 0


def demo_check(demo, h5):
    """Planted-knowledge ground truth (the corpus: every fact prompt followed by
    its object, one per line).  For every planted neuron (fact f, layer,
    neuron): its top trigger lies in one of f's prompts; its value's top-1
    token is f's object; its trigger at the end of f's prompt (next token = the
    object) has next-token rank 0; and its top trigger agrees (the strongest
    trigger with a next token has the object as next token, ranked 0) whenever
    that is determined: the neuron is on, at nearly the same activation, at
    every position from where the prompt holds all its key words (keys.csv) to
    the line's end, so when a prompt of f holds them before its last word
    (e.g. "The Eiffel Tower is located in | the city of"), the top trigger may
    be any of those positions, and its next token is not the object.  Those
    facts are counted, not required to agree.  Per layer, the agreement table
    must count exactly the planted neurons (n_eval) and their agreeing top
    triggers (n_agree)."""
    import csv
    import h5py
    gt = list(csv.DictReader(open(f"{demo}/ground_truth.csv", newline="")))
    prompts = list(csv.DictReader(open(f"{demo}/prompts.csv", newline="")))
    keys = {k["fact_id"]: k["key_words"].split() for k in csv.DictReader(open(f"{demo}/keys.csv", newline=""))}
    vocab = json.load(open(f"{demo}/tokenizer.json"))["model"]["vocab"]
    f = h5py.File(h5, "r")

    def complete_at_end(prompt, kw):
        # The neuron fires once its key words occur |S| times in all (repeats count).
        words = prompt.split()
        for t in range(len(words)):
            if sum(words[:t + 1].count(w) for w in kw) >= len(kw):
                return t == len(words) - 1
        return False

    ok = [0, 0, 0, 0]
    n_open = 0
    per_layer = {}
    for g in gt:
        L, n, fid, obj = int(g["layer"]), int(g["neuron"]), g["fact_id"], vocab[g["object"]]
        grp = f[f"layer_{L}"]
        cnt = int(grp["count"][n])
        docs, nxt, rk = grp["doc"][n, :cnt], grp["next_id"][n, :cnt], grp["next_rank"][n, :cnt]
        act = grp["key_act"][n, :cnt]
        a1 = cnt > 0 and prompts[int(docs[0])]["fact_id"] == fid
        a2 = int(grp["value_top1"][n]) == obj
        a3 = any(prompts[int(d)]["fact_id"] == fid and x == obj and r == 0
                 for d, x, r in zip(docs, nxt, rk))
        top = [i for i in range(cnt) if rk[i] >= 0][:1]
        agrees = bool(top) and act[top[0]] > 0 and int(nxt[top[0]]) == int(grp["value_top1"][n])
        a4 = agrees and int(nxt[top[0]]) == obj and rk[top[0]] == 0
        determined = all(complete_at_end(p["prompt"], keys[fid]) for p in prompts if p["fact_id"] == fid)
        n_open += not determined
        for i, v in enumerate((a1, a2, a3, a4)):
            ok[i] += v
        pl = per_layer.setdefault(L, [0, 0, 0])
        pl[0] += 1
        pl[1] += a1 and a2 and a3 and (a4 or not determined)
        pl[2] += agrees
        if not (a1 and a2 and a3 and (a4 or not determined)):
            fail(f"fact {fid} ({g['subject']} {g['relation']} -> {g['object']}), layer {L} neuron {n}: "
                 f"top trigger in fact prompt {a1}, value top-1 is the object {a2}, "
                 f"prompt-end trigger agrees {a3}, top trigger agrees {a4}; triggers "
                 f"{list(zip(docs, nxt, rk))[:4]}")
    ag = f["agreement"]
    print("layer planted ok agree | agreement table: eval agree share top_median_rank")
    for s, L in enumerate(ag["layer"][()]):
        pl = per_layer.get(int(L), [0, 0, 0])
        print(f"{int(L):5d} {pl[0]:7d} {pl[1]:3d} {pl[2]:5d} | {ag['n_eval'][s]:4d} {ag['n_agree'][s]:5d} "
              f"{ag['share_agree'][s]:6.3f} {ag['top_median_rank'][s]:6.1f}")
        if ag["n_eval"][s] != pl[0] or ag["n_agree"][s] != pl[2]:
            fail(f"layer {int(L)}: agreement table evaluates {ag['n_eval'][s]} neurons, {ag['n_agree'][s]} "
                 f"agreeing; ground truth: {pl[0]} planted, {pl[2]} agreeing")
    print(f"triggers_demo: {len(gt)} planted neurons: top trigger in the fact's prompt {ok[0]}, "
          f"value top-1 = object {ok[1]}, prompt-end trigger's next token ranked 0 {ok[2]}, "
          f"top trigger agrees {ok[3]} ({len(gt) - n_open} required; {n_open} facts have a prompt "
          f"that holds its key words before its end)")
    if FAILS:
        print(f"triggers_demo: FAILED ({len(FAILS)})")
        return 1
    print("triggers_demo: OK")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--tokenizer")
    ap.add_argument("--corpus")
    ap.add_argument("--format", default="text")
    ap.add_argument("--h5")
    ap.add_argument("--csv")
    ap.add_argument("--demo-corpus", metavar="PROMPTS_CSV", help="print the demo corpus")
    ap.add_argument("--demo", metavar="DIR", help="check --h5 against the demo's ground truth")
    a = ap.parse_args()
    if a.demo_corpus:
        return demo_corpus(a.demo_corpus)
    if a.demo:
        return demo_check(a.demo, a.h5)
    if not (a.model and a.tokenizer and a.corpus and a.h5):
        ap.error("--model, --tokenizer, --corpus and --h5 are needed")
    import h5py

    f = h5py.File(a.h5, "r")
    at = f.attrs
    assert at["probe_kind"] == "triggers", at["probe_kind"]
    W, S, N, C = int(at["window"]), int(at["stride"]), int(at["top"]), int(at["context"])
    per, rank_by, skip_bos = at["per"], at["rank_by"], int(at["skip_bos"])
    layers = [int(x) for x in f["layers"][()]]
    m = R.load_model(a.model)
    pieces, scores = R.load_tokenizer(a.tokenizer, with_scores=True)
    special = {0, 1, 2}

    # ---- brute force: every activation of every counted position ----
    docs = read_docs(a.corpus, a.format)
    rec = {L: {"key": [], "pre": [], "up": []} for L in layers}
    where, doc_ids = [], {}
    n_tokens = n_docs = 0
    for d, text in docs:
        if text is None:
            continue
        ids = R.encode(pieces, scores, text, bos=True)
        doc_ids[d] = ids
        n_docs += 1
        n_tokens += len(ids)
        for s0, e, r0 in windows(len(ids), W, S, skip_bos):
            out = R.forward(m, ids[s0:e])
            for L in layers:
                for k in ("key", "pre", "up"):
                    src = {"key": "key_act", "pre": "gate_pre", "up": "up"}[k]
                    rec[L][k].append(out["layers"][L][src][r0:])
            where.extend((d, s0 + r) for r in range(r0, e - s0))
    where = np.array(where, dtype=np.int64).reshape(-1, 2)
    P = len(where)
    assert int(at["n_docs"]) == n_docs, (int(at["n_docs"]), n_docs)
    assert int(at["n_tokens"]) == n_tokens, (int(at["n_tokens"]), n_tokens)
    assert int(at["n_counted"]) == P, (int(at["n_counted"]), P)
    index = {(int(d), int(p)): i for i, (d, p) in enumerate(where)}

    exact = swaps = checked = 0
    worst_act = 0.0
    for L in layers:
        K = np.concatenate(rec[L]["key"])
        G = np.concatenate(rec[L]["pre"])
        U = np.concatenate(rec[L]["up"])
        V = G if rank_by == "pre" else K
        g = f[f"layer_{L}"]
        Fn = K.shape[1]
        stats = g.get("stats")
        if N > 0:
            cnt = g["count"][()]
            hdoc, hpos = g["doc"][()], g["position"][()]
            hkey, hpre = g["key_act"][()], g["gate_pre"][()]
            hup = g["up"][()] if "up" in g else None
            htok, hnext = g["token_id"][()], g["next_id"][()]
            hpfx = g["prefix"].asstr()[()]
            hrank = g["next_rank"][()] if "next_rank" in g else None
            top1 = g["value_top1"][()] if "value_top1" in g else None
            if hrank is not None:
                E = m.wcls                              # (vocab, dim)
                proj = E @ m.w2[L]                      # (vocab, n_ff): column i = E v_i
            if per == "doc":
                # Rows are in (doc, position) order: each document is one run.
                starts = np.nonzero(np.r_[True, where[1:, 0] != where[:-1, 0]])[0]
                ends = np.r_[starts[1:], P]
                # argmax returns the first maximum: the lowest position.
                best = np.stack([s0 + V[s0:e0].argmax(axis=0) for s0, e0 in zip(starts, ends)])
            for j in range(Fn):
                v = V[:, j]
                cand = best[:, j] if per == "doc" else np.arange(P)
                order = cand[np.lexsort((where[cand, 1], where[cand, 0], -v[cand]))][:N]
                if cnt[j] != len(order):
                    fail(f"layer {L} neuron {j}: {cnt[j]} triggers, expected {len(order)}")
                    continue
                hv_rank = hkey if rank_by == "post" else hpre
                for r in range(cnt[j]):
                    checked += 1
                    # In probe's own float32 values the order must be exact:
                    # strictly decreasing, equal values by (doc, position).
                    if r and not (hv_rank[j, r - 1] > hv_rank[j, r] or
                                  (hv_rank[j, r - 1] == hv_rank[j, r] and
                                   (hdoc[j, r - 1], hpos[j, r - 1]) < (hdoc[j, r], hpos[j, r]))):
                        fail(f"layer {L} neuron {j} rank {r}: out of order in probe's own values")
                    d, p = int(hdoc[j, r]), int(hpos[j, r])
                    rd, rp = int(where[order[r], 0]), int(where[order[r], 1])
                    i = index.get((d, p))
                    if i is None:
                        fail(f"layer {L} neuron {j} rank {r}: ({d},{p}) is not a counted position")
                        continue
                    # Against this float64 forward pass, probe's float32
                    # activations are off by up to ~1e-5 (printed below as the
                    # worst activation difference); two positions whose float64
                    # values are closer than twice that may come out in either
                    # order.  Such a swap is accepted and counted; anything
                    # farther apart is a wrong trigger.
                    tol = NEAR_TIE_ABS + NEAR_TIE_REL * abs(v[order[r]])
                    if (d, p) == (rd, rp):
                        exact += 1
                    elif abs(v[i] - v[order[r]]) <= tol:
                        swaps += 1
                    else:
                        fail(f"layer {L} neuron {j} rank {r}: probe ({d},{p}) v={v[i]:.7g}, "
                             f"reference ({rd},{rp}) v={v[order[r]]:.7g}")
                    for name, hv, rv in (("key", hkey[j, r], K[i, j]), ("pre", hpre[j, r], G[i, j]),
                                         ("up", None if hup is None else hup[j, r], U[i, j])):
                        if hv is None:
                            continue
                        worst_act = max(worst_act, abs(hv - rv))
                        if not close(hv, rv, 1e-4, 2e-5):
                            fail(f"layer {L} neuron {j} rank {r}: {name} {hv} vs reference {rv}")
                    ids = doc_ids[d]
                    nx = ids[p + 1] if p + 1 < len(ids) else -1
                    if htok[j, r] != ids[p] or hnext[j, r] != nx:
                        fail(f"layer {L} neuron {j} rank {r}: token/next {htok[j, r]}/{hnext[j, r]}"
                             f" vs {ids[p]}/{nx}")
                    want = decode_prefix(pieces, ids, max(0, p - C + 1), p, special)
                    if hpfx[j, r] != want:
                        fail(f"layer {L} neuron {j} rank {r}: prefix {hpfx[j, r]!r} vs {want!r}")
                    if hrank is not None:
                        sc = proj[:, j]
                        if nx < 0:
                            if hrank[j, r] != -1:
                                fail(f"layer {L} neuron {j} rank {r}: next_rank {hrank[j, r]} without a next token")
                        else:
                            x, eps = sc[nx], 1e-5 * max(1.0, np.abs(sc).max())
                            lo = int((sc > x + eps).sum())
                            hi = int((sc >= x - eps).sum()) - 1
                            if not lo <= hrank[j, r] <= hi:
                                fail(f"layer {L} neuron {j} rank {r}: next_rank {hrank[j, r]} not in [{lo},{hi}]")
                for r in range(cnt[j], N):
                    if hdoc[j, r] != -1 or not np.isnan(hkey[j, r]):
                        fail(f"layer {L} neuron {j}: empty slot {r} is not marked")
                if top1 is not None:
                    sc = proj[:, j]
                    if sc[top1[j]] < sc.max() - 1e-5 * max(1.0, np.abs(sc).max()):
                        fail(f"layer {L} neuron {j}: value top-1 {top1[j]} is not the argmax {sc.argmax()}")
            if "agreement" in f:
                ag = f["agreement"]
                s = list(ag["layer"][()]).index(L)
                hv = hkey if rank_by == "post" else hpre
                ne = na = 0
                ranks, tranks = [], []
                for j in range(Fn):
                    first = True
                    for r in range(cnt[j]):
                        if hrank[j, r] < 0:
                            continue
                        ranks.append(hrank[j, r])
                        if first and hv[j, r] > 0:
                            ne += 1
                            na += int(hnext[j, r] == top1[j])
                            tranks.append(hrank[j, r])
                        first = False
                if ag["n_eval"][s] != ne or ag["n_agree"][s] != na:
                    fail(f"agreement layer {L}: eval/agree {ag['n_eval'][s]}/{ag['n_agree'][s]} vs {ne}/{na}")
                if ranks and not close(ag["mean_rank"][s], np.mean(ranks), 1e-9, 1e-9):
                    fail(f"agreement layer {L}: mean rank {ag['mean_rank'][s]} vs {np.mean(ranks)}")
                if ranks and ag["median_rank"][s] != np.median(ranks):
                    fail(f"agreement layer {L}: median rank {ag['median_rank'][s]} vs {np.median(ranks)}")
                if tranks and ag["top_median_rank"][s] != np.median(tranks):
                    fail(f"agreement layer {L}: top median {ag['top_median_rank'][s]} vs {np.median(tranks)}")
        if stats is not None:
            if int(stats.attrs["n_positions"]) != P:
                fail(f"layer {L}: stats over {stats.attrs['n_positions']} positions, expected {P}")
            worst = {}
            for j in range(Fn):
                x = K[:, j]
                mean, var, skew, kurt = gsl_moments(x)
                for name, want, rt, atl in (("mean", mean, 1e-4, 1e-5), ("variance", var, 1e-3, 1e-7),
                                            ("skewness", skew, 5e-3, 1e-3), ("kurtosis", kurt, 5e-3, 1e-2)):
                    got = stats[name][j]
                    worst[name] = max(worst.get(name, 0), abs(got - want))
                    if not close(got, want, rt, atl):
                        fail(f"layer {L} neuron {j}: {name} {got} vs reference {want}")
                if not close(stats["max"][j], x.max(), 1e-4, 2e-5) or not close(stats["min"][j], x.min(), 1e-4, 2e-5):
                    fail(f"layer {L} neuron {j}: min/max {stats['min'][j]}/{stats['max'][j]} vs {x.min()}/{x.max()}")
                act = int((G[:, j] > 0).sum())
                slack = int((np.abs(G[:, j]) < 1e-5).sum())
                if abs(int(stats["active_count"][j]) - act) > slack:
                    fail(f"layer {L} neuron {j}: active {stats['active_count'][j]} vs {act}")
            # Running quantiles: the P^2 estimate of the documented subsample
            # (every quantile_every-th counted position, in corpus order),
            # recomputed by p2_quantiles() below.  The estimate is not the
            # sample quantile and can sit far from it on small or multimodal
            # samples, so it is compared with the same estimator, not with
            # np.quantile; how far it is from the exact quantile is printed.
            qs = stats["quantile_probs"][()]
            qe = int(at["quantile_every"])
            sub = K[::qe]
            for qi, q in enumerate(qs):
                est = stats["quantiles"][qi]
                want = p2_quantiles(sub, q)
                spread = K.max(axis=0) - K.min(axis=0)
                tol = 1e-4 * spread + 1e-5
                bad = np.nonzero(~(np.abs(est - want) <= tol))[0]
                # A float32/float64 near-tie can flip one comparison of the
                # estimator (which marker cell a value falls in); that changes
                # its path for that neuron only.  Tolerate it in at most 1% of
                # the neurons (and print them); a broken estimator, a wrong
                # subsample or a mixed-up layout fails nearly all of them.
                if len(bad) > max(1, Fn // 100):
                    for jj in bad[:5]:
                        fail(f"layer {L} neuron {jj}: quantile {q}: {est[jj]!r} vs P^2 reference {want[jj]!r}")
                    fail(f"layer {L}: quantile {q}: {len(bad)} of {Fn} neurons differ from the P^2 reference")
                rank_err = np.abs((K <= est).mean(axis=0) - q)
                print(f"layer {L}: quantile {q}: P^2 of {len(sub)} values, {Fn - len(bad)}/{Fn} neurons match "
                      f"the reference (worst {np.abs(est - want).max():.2e}); share below the estimate "
                      f"off by {np.median(rank_err):.3f} median, {rank_err.max():.3f} worst")
            hist = stats["hist_counts"][()]
            if int(hist.sum()) != P * Fn:
                fail(f"layer {L}: histogram holds {hist.sum()} values, expected {P * Fn}")
            lo, hi = stats["hist_lo"][()], stats["hist_hi"][()]
            x32 = K.astype(np.float32).ravel().astype(np.float64)
            want = np.zeros(len(hist), dtype=np.int64)
            for b in range(len(hist)):
                if lo[b] >= 0:
                    want[b] = ((x32 >= lo[b]) & (x32 < hi[b])).sum()
                elif hi[b] <= 0:
                    want[b] = ((x32 > lo[b]) & (x32 <= hi[b])).sum()
                else:
                    want[b] = ((x32 > lo[b]) & (x32 < hi[b])).sum()
            if np.abs(want - hist).sum() > 0.002 * P * Fn + 2:
                fail(f"layer {L}: histogram differs by {np.abs(want - hist).sum()} values")
            print(f"layer {L}: worst stats differences " +
                  ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    if a.csv:
        import pandas as pd
        df = pd.read_csv(a.csv, keep_default_na=False, na_values=[])
        want_cols = ["layer", "neuron", "rank", "activation", "doc", "position", "prefix",
                     "trigger_token", "next_token", "pre_activation", "up", "token_id", "next_id",
                     "next_rank"]
        if list(df.columns) != want_cols:
            fail(f"CSV columns {list(df.columns)}")
        total = sum(int(f[f"layer_{L}/count"][()].sum()) for L in layers)
        if len(df) != total:
            fail(f"CSV has {len(df)} rows, the HDF5 file {total} triggers")
        H = {L: {k: (f[f"layer_{L}/{k}"].asstr()[()] if k == "prefix" else f[f"layer_{L}/{k}"][()])
                 for k in ("prefix", "doc", "position", "key_act", "token_id", "next_id")}
             for L in layers}
        for row in df.itertuples(index=False):
            L, j, r = int(row.layer), int(row.neuron), int(row.rank)
            g = H[L]
            if (int(row.doc), int(row.position)) != (int(g["doc"][j, r]), int(g["position"][j, r])):
                fail(f"CSV row {L}/{j}/{r}: doc/position differ")
            if np.float32(float(row.activation)) != g["key_act"][j, r]:
                fail(f"CSV row {L}/{j}/{r}: activation {row.activation} vs {g['key_act'][j, r]}")
            if row.prefix != g["prefix"][j, r]:
                fail(f"CSV row {L}/{j}/{r}: prefix {row.prefix!r} vs {g['prefix'][j, r]!r}")
            if int(row.token_id) != g["token_id"][j, r] or int(row.next_id) != g["next_id"][j, r]:
                fail(f"CSV row {L}/{j}/{r}: token ids differ")
            if (int(row.next_id) < 0) != (row.next_token == ""):
                fail(f"CSV row {L}/{j}/{r}: next_token {row.next_token!r} for id {row.next_id}")
        print(f"csv: {len(df)} rows match the HDF5 file")
    # Near-ties are rare; many swaps mean a systematic order bug hiding
    # under the tolerance.
    if swaps > max(5, checked // 100):
        fail(f"{swaps} of {checked} triggers out of the reference's order (near-ties should be rare)")
    print(f"triggers_ref: {checked} triggers checked: {exact} in identical order, {swaps} swapped "
          f"float32 near-ties; worst activation difference {worst_act:.2e}; "
          f"{P} positions, {n_docs} documents")
    if FAILS:
        print(f"triggers_ref: FAILED ({len(FAILS)} mismatches)")
        return 1
    print("triggers_ref: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
