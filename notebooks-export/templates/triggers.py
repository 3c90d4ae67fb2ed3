# probe triggers: the corpus positions that activate each neuron most (its
# trigger examples), the key-value agreement of Geva et al. 2021 (Section 4:
# does the value vector promote the token that follows the trigger?), and
# per-neuron activation statistics.
# %% [markdown]
# ## Load
# `trig` is the tidy table of trigger examples (one row per layer, neuron and
# rank), `agree` the per-layer agreement table, `stats` per-neuron statistics.
# %% requires=h5
import html

f = h5py.File(RESULT, "r")
layers = [int(x) for x in f["layers"][()]]
VOCAB = int(attr(f, "vocab_size"))
vocab = strs(f["tokens"]) if "tokens" in f else None
agree = stats = trig = None
if "agreement" in f:
    a = f["agreement"]
    agree = pd.DataFrame({k: a[k][()] for k in a if a[k].ndim == 1})
    VOCAB = int(attr(a, "vocab_size", VOCAB))
parts, sparts = [], []
for L in layers:
    g = f[f"layer_{L}"]
    if "key_act" in g:
        key = g["key_act"][()]
        nf, top = key.shape
        ok = np.isfinite(key)
        neuron, rank = np.nonzero(ok)
        d = dict(layer=L, neuron=neuron, rank=rank, activation=key[ok],
                 doc=g["doc"][()][ok], position=g["position"][()][ok],
                 prefix=str_array(g["prefix"])[ok],
                 token_id=g["token_id"][()][ok], next_id=g["next_id"][()][ok])
        if "next_rank" in g:
            d["next_rank"] = g["next_rank"][()][ok]
        for name in ("trigger_token", "next_token"):
            if name in g:
                d[name] = str_array(g[name])[ok]
        parts.append(pd.DataFrame(d))
    if "stats" in g:
        s = g["stats"]
        sparts.append(pd.DataFrame(dict(layer=L, neuron=np.arange(len(s["mean"])), mean=s["mean"][()],
                                        variance=s["variance"][()], max=s["max"][()], density=s["density"][()])))
trig = pd.concat(parts, ignore_index=True) if parts else None
stats = pd.concat(sparts, ignore_index=True) if sparts else None
if trig is not None and "trigger_token" not in trig and vocab is not None:
    trig["trigger_token"] = [vocab[i] for i in trig.token_id]
    trig["next_token"] = [vocab[i] if i >= 0 else "" for i in trig.next_id]
print(f"layers {layers}; corpus {attr(f, 'corpus')!r}: {attr(f, 'n_docs')} documents, "
      f"{attr(f, 'n_tokens')} tokens; vocabulary {VOCAB}")
# %% requires=csv
import html

MAIN, STATS, HIST, AGREE = {{trig_main}}, {{trig_stats}}, {{trig_hist}}, {{trig_agree}}
trig = pd.read_csv(MAIN, keep_default_na=False, na_values={"activation": ["nan"]}) if MAIN else None
agree = pd.read_csv(AGREE) if AGREE else None
stats = pd.read_csv(STATS) if STATS else None
VOCAB = int(agree.vocab.iloc[0]) if agree is not None and "vocab" in agree else None
layers = sorted(set(trig.layer if trig is not None else []) | set(agree.layer if agree is not None else [])
                | set(stats.layer if stats is not None else []))
print(f"layers {layers}; read: " + ", ".join(p for p in (MAIN, STATS, HIST, AGREE) if p))
# %% [markdown] requires=agreement
# ## Key-value agreement per layer
# For each neuron, does the token that follows its top trigger come first in the
# neuron's value projection (`share_agree`), and where does it rank on average?
# Chance: a share of 1/vocabulary and a mean rank of (vocabulary - 1)/2.
# %% requires=agreement
agree
# %% tags=["plot"] requires=agreement
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
x = np.arange(len(agree))
a1.bar(x, agree.share_agree, color="tab:blue", label="value top-1 = next token")
if VOCAB:
    a1.axhline(1 / VOCAB, color="grey", ls="--", label=f"chance 1/{VOCAB}")
a1.set_ylabel("share of neurons")
a1.set_title("agreement of the top trigger")
a2.plot(x, agree.mean_rank, "-o", label="mean rank, all triggers")
a2.plot(x, agree.median_rank, "-s", label="median rank, all triggers")
a2.plot(x, agree.top_mean_rank, "--o", label="mean rank, top trigger")
if VOCAB:
    a2.axhline((VOCAB - 1) / 2, color="grey", ls="--", label="chance mean rank")
a2.set_ylabel("rank of the next token in the value projection")
a2.set_title("where the next token ranks")
for a in (a1, a2):
    a.set_xticks(x)
    a.set_xticklabels([str(L) for L in agree.layer])
    a.set_xlabel("layer")
    a.legend(fontsize=7)
fig.tight_layout()
plt.show()
# %% [markdown] requires=trig_main
# ## Trigger examples
# The strongest triggers of a few neurons; the trigger token is highlighted and
# the token that followed it is shown after the arrow.  `NEURONS` picks them:
# by default the four with the largest top activation in the last layer.
# %% requires=trig_main
NEURONS = None  # e.g. [(3, 42)]
SHOW = 5  # triggers per neuron
if NEURONS is None:
    best = trig[(trig["rank"] == 0) & (trig.layer == max(trig.layer))].sort_values("activation", ascending=False)
    NEURONS = [(int(r.layer), int(r.neuron)) for r in best.head(4).itertuples()]


def example(r):
    pre = str(r.prefix)
    tok = getattr(r, "trigger_token", None)
    if isinstance(tok, str) and tok and pre.endswith(tok):
        body = html.escape(pre[: len(pre) - len(tok)]) + "<mark><b>" + html.escape(tok) + "</b></mark>"
    else:  # no token text in the file: mark the trigger's id
        body = html.escape(pre) + f" <mark><b>[#{r.token_id}]</b></mark>"
    nxt = getattr(r, "next_token", None)
    nxt = html.escape(nxt) if isinstance(nxt, str) else f"#{r.next_id}"
    rank = f", next-token rank {r.next_rank}" if hasattr(r, "next_rank") else ""
    return (f"<li><code>{r.activation:+.3f}</code> &nbsp;{body} &rarr; <i>{nxt}</i>"
            f" <small>(doc {r.doc}, position {r.position}{rank})</small></li>")


parts = []
for L, n in NEURONS:
    d = trig[(trig.layer == L) & (trig.neuron == n)].sort_values("rank").head(SHOW)
    parts.append(f"<h4>layer {L}, neuron {n}</h4><ul>" + "".join(example(r) for r in d.itertuples()) + "</ul>")
display(HTML("".join(parts)))
# %% [markdown] requires=trig_main
# ## Top activation per neuron, by layer
# %% tags=["plot"] requires=trig_main
t0 = trig[trig["rank"] == 0]
fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(layers) + 2), 3.6))
ax.boxplot([t0[t0.layer == L].activation for L in layers], labels=[str(L) for L in layers],
           whis=(1, 99), flierprops=dict(markersize=2, alpha=0.4))
ax.set_xlabel("layer")
ax.set_ylabel("largest key activation in the corpus")
ax.set_title("each neuron's top trigger activation")
fig.tight_layout()
plt.show()
# %% [markdown] requires=stats
# ## Activation statistics
# Density: the share of corpus positions where the neuron's pre-activation is
# positive (the activation function's "on" half).
# %% tags=["plot"] requires=stats
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
sl = sorted(stats.layer.unique())
a1.boxplot([stats[stats.layer == L].density for L in sl], labels=[str(L) for L in sl])
a1.set_ylabel("density")
a2.boxplot([stats[stats.layer == L]["mean"] for L in sl], labels=[str(L) for L in sl],
           flierprops=dict(markersize=2, alpha=0.4))
a2.set_ylabel("mean key activation")
for a in (a1, a2):
    a.set_xlabel("layer")
fig.tight_layout()
plt.show()
