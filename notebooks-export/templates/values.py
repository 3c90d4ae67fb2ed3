# probe values: value vectors read in vocabulary space -- the tokens each
# neuron promotes (top) and suppresses (bottom); with --promotes, the neurons
# that promote one token most.
# %% [markdown]
# ## Load
# `summary` has one row per neuron (layer, neuron, value_norm, max_logit,
# entropy); `promoted(L, n, "top"|"bottom")` lists a neuron's tokens and scores.
# %% requires=h5,forward
f = h5py.File(RESULT, "r")
vocab = strs(f["tokens"]) if "tokens" in f else None
layers = sorted(int(k[6:]) for k in f if k.startswith("layer_"))
parts = []
for L in layers:
    g = f[f"layer_{L}"]
    parts.append(pd.DataFrame(dict(layer=L, neuron=g["neuron"][()], value_norm=g["value_norm"][()],
                                   max_logit=g["max_logit"][()], entropy=g["entropy"][()])))
summary = pd.concat(parts, ignore_index=True)
_row = {(r.layer, r.neuron): i for i, r in enumerate(summary.itertuples())}


def promoted(L, n, direction="top"):
    g = f[f"layer_{L}"]
    if f"{direction}_ids" not in g:
        return [], np.zeros(0)
    j = int(np.flatnonzero(g["neuron"][()] == n)[0])
    ids, scores = g[f"{direction}_ids"][j], g[f"{direction}_scores"][j]
    return [vocab[i] if vocab is not None else f"#{i}" for i in ids], scores


print(f"{len(summary)} neurons in layers {layers}; norm mode {attr(f, 'norm_mode')}; "
      f"top {attr(f, 'k_top')} / bottom {attr(f, 'k_bottom')} tokens per neuron")
# %% requires=csv,forward
df = pd.read_csv(RESULT)
layers = sorted(df.layer.unique().tolist())
summary = (df.groupby(["layer", "neuron"], sort=True)[["value_norm", "max_logit", "entropy"]]
           .first().reset_index())


def promoted(L, n, direction="top"):
    d = df[(df.layer == L) & (df.neuron == n) & (df.direction == direction)].sort_values("rank")
    return d.token.tolist(), d.score.to_numpy()


print(f"{len(df)} rows; {len(summary)} neurons in layers {layers}")
# %% requires=h5,promotes
f = h5py.File(RESULT, "r")
TOKEN = attr(f, "promote_token")
layers = sorted(int(k[6:]) for k in f if k.startswith("layer_"))
parts = []
for L in layers:
    g = f[f"layer_{L}"]
    parts.append(pd.DataFrame(dict(layer=L, neuron=g["neuron"][()], score=g["promote_score"][()],
                                   rank=g["promote_rank"][()], value_norm=g["value_norm"][()],
                                   max_logit=g["max_logit"][()], entropy=g["entropy"][()])))
summary = pd.concat(parts, ignore_index=True)
print(f"{len(summary)} neurons in layers {layers}; token searched: {TOKEN!r}")
# %% requires=csv,promotes
summary = pd.read_csv(RESULT)
TOKEN = summary.token.iloc[0] if len(summary) else "?"
layers = sorted(summary.layer.unique().tolist())
print(f"{len(summary)} neurons in layers {layers}; token searched: {TOKEN!r}")
# %% [markdown] requires=forward
# ## Tokens promoted and suppressed by chosen neurons
# `NEURONS` lists (layer, neuron) pairs; by default the four whose projection
# peaks highest (largest max_logit).  Scores are logits of the value vector
# projected through the unembedding.
# %% requires=forward
NEURONS = None  # e.g. [(3, 42), (4, 7)]
if NEURONS is None:
    best = summary.sort_values(["max_logit", "layer", "neuron"], ascending=[False, True, True]).head(4)
    NEURONS = [(int(r.layer), int(r.neuron)) for r in best.itertuples()]
NEURONS
# %% tags=["plot"] requires=forward
fig, axes = grid(len(NEURONS), ncols=2, w=5.5, h=4.0)
for ax, (L, n) in zip(axes, NEURONS):
    toks, sc = promoted(L, n, "top")
    btoks, bsc = promoted(L, n, "bottom")
    labels = [repr(t) for t in toks] + [repr(t) for t in btoks][::-1]
    values = list(sc) + list(bsc)[::-1]
    colors = ["tab:green"] * len(sc) + ["tab:red"] * len(bsc)
    y = np.arange(len(values))[::-1]
    ax.barh(y, values, color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_title(f"layer {L} neuron {n}")
    ax.set_xlabel("score (logit)")
fig.tight_layout()
plt.show()
# %% [markdown] requires=promotes
# ## The neurons that promote the token most
# %% tags=["plot"] requires=promotes
best = summary.sort_values(["score", "layer", "neuron"], ascending=[False, True, True]).head(20)
fig, ax = plt.subplots(figsize=(7, 5))
y = np.arange(len(best))[::-1]
ax.barh(y, best.score, color="tab:green")
ax.set_yticks(y)
ax.set_yticklabels([f"L{r.layer} N{r.neuron} (rank {r.rank})" for r in best.itertuples()], fontsize=8)
ax.set_xlabel(f"score of {TOKEN!r} (logit)")
ax.set_title(f"neurons whose value vectors promote {TOKEN!r} most")
fig.tight_layout()
plt.show()
# %% [markdown] requires=promotes
# ## The token's score per layer
# %% tags=["plot"] requires=promotes
fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(layers) + 2), 3.6))
ax.boxplot([summary[summary.layer == L].score for L in layers], labels=[str(L) for L in layers],
           whis=(1, 99), flierprops=dict(markersize=2, alpha=0.4))
ax.axhline(0, color="grey", lw=0.6)
ax.set_xlabel("layer")
ax.set_ylabel(f"score of {TOKEN!r}")
fig.tight_layout()
plt.show()
# %% [markdown] requires=norms
# ## Value norms per layer
# The L2 norm of each neuron's value vector (before any norm mode), per layer.
# %% tags=["plot"] requires=norms
fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(layers) + 2), 3.6))
ax.boxplot([summary[summary.layer == L].value_norm for L in layers], labels=[str(L) for L in layers],
           whis=(1, 99), flierprops=dict(markersize=2, alpha=0.4))
ax.set_xlabel("layer")
ax.set_ylabel("||v_i||")
ax.set_title("value-vector norms per layer")
fig.tight_layout()
plt.show()
# %% [markdown]
# ## Summary per layer
# %%
summary.groupby("layer")[[c for c in ("value_norm", "max_logit", "entropy", "score") if c in summary]].describe().T
