# probe activations: key activations m_i of FFN neurons per prompt token.
# HDF5 holds every neuron; the CSV only the top K per token, so its heatmaps
# have blanks and its distributions are of top-K values only.
# %% [markdown]
# ## Load
# `acts[p][L]` is the (tokens x neurons) matrix of key activations of prompt `p`
# in layer `L` (HDF5), and `top` the tidy table of the top neurons per token --
# the same columns as `probe activations --out FILE.csv`.
# %% requires=h5
TOP = 10  # neurons per token in the table
f = h5py.File(RESULT, "r")
layers = [int(x) for x in f["layers"][()]]
n_prompts = int(attr(f, "n_prompts"))
texts, tokens, acts = [], [], []
for p in range(n_prompts):
    g = f[f"prompt_{p}"]
    texts.append(attr(g, "text"))
    tokens.append(strs(g["tokens"]))
    acts.append({L: g[f"layer_{L}/key_act"][()] for L in layers})
rows = []
for p in range(n_prompts):
    for L in layers:
        a = acts[p][L]
        order = np.argsort(-a, axis=1, kind="stable")[:, :TOP]
        for t, tok in enumerate(tokens[p]):
            for r, n in enumerate(order[t]):
                rows.append((p, t, tok, L, int(n), float(a[t, n]), r))
top = pd.DataFrame(rows, columns=["prompt_id", "position", "token", "layer", "neuron", "activation", "rank"])
print(f"{n_prompts} prompt(s); layers {layers}; {attr(f, 'n_ff')} neurons per layer; "
      f"key activation = {attr(f, 'key_activation')}")
# %% requires=csv
top = pd.read_csv(RESULT)
layers = sorted(top.layer.unique().tolist())
n_prompts = int(top.prompt_id.max()) + 1
tokens = []
for p in range(n_prompts):
    t = top[top.prompt_id == p].drop_duplicates("position").sort_values("position")
    tokens.append(t.token.tolist())
acts = None  # a CSV holds only the top neurons of each token
print(f"{len(top)} rows; {n_prompts} prompt(s); layers {layers}; "
      f"top {top['rank'].max() + 1} neurons per token")


# %%
def layer_matrix(p, L, n=12):
    """Tokens x the n neurons with the largest activation anywhere in prompt p, layer L."""
    if acts is not None:
        a = acts[p][L]
        neurons = np.argsort(-a.max(axis=0), kind="stable")[:n]
        return neurons, a[:, neurons]
    d = top[(top.prompt_id == p) & (top.layer == L)]
    m = d.pivot_table(index="position", columns="neuron", values="activation", aggfunc="max")
    m = m.reindex(range(len(tokens[p])))
    neurons = m.max(axis=0).sort_values(ascending=False, kind="stable").index[:n]
    return np.asarray(neurons), m[neurons].to_numpy()


PROMPT = 0  # which prompt to draw
top.head(12)
# %% [markdown]
# ## Tokens x top neurons, per layer
# Each panel: the neurons of that layer with the largest activation on any token
# of the prompt; colour = key activation (red positive, blue negative).
# %% tags=["plot"]
fig, axes = grid(len(layers), ncols=3, w=5.0, h=0.32 * len(tokens[PROMPT]) + 1.6)
for ax, L in zip(axes, layers):
    neurons, m = layer_matrix(PROMPT, L)
    v = np.nanmax(np.abs(m)) if np.isfinite(m).any() else 1.0
    im = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-v, vmax=v, interpolation="nearest")
    ax.set_xticks(range(len(neurons)))
    ax.set_xticklabels([str(n) for n in neurons], rotation=90, fontsize=7)
    ax.set_yticks(range(len(tokens[PROMPT])))
    ax.set_yticklabels([repr(t)[1:-1] for t in tokens[PROMPT]], fontsize=7)
    ax.set_title(f"layer {L}")
    ax.set_xlabel("neuron")
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.suptitle(f"key activations, prompt {PROMPT}")
fig.tight_layout()
plt.show()
# %% [markdown]
# ## Distribution of key activations per layer
# Over every token of every prompt and every neuron (CSV: the top-K values only).
# Whiskers at the 1st and 99th percentiles.
# %% tags=["plot"]
if acts is not None:
    dist = [np.concatenate([acts[p][L].ravel() for p in range(n_prompts)]) for L in layers]
    what = "all neurons"
else:
    dist = [top[top.layer == L].activation.to_numpy() for L in layers]
    what = "top-K neurons per token"
fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(layers) + 2), 3.6))
ax.boxplot(dist, labels=[str(L) for L in layers], whis=(1, 99), showfliers=True,
           flierprops=dict(markersize=2, alpha=0.4))
ax.axhline(0, color="grey", lw=0.6)
ax.set_xlabel("layer")
ax.set_ylabel("key activation")
ax.set_title(f"key activations per layer ({what})")
fig.tight_layout()
plt.show()
# %% [markdown]
# ## Top neurons per token
# `neuron:activation` of the three strongest neurons in each layer.
# %%
K = 3
t = top[(top.prompt_id == PROMPT) & (top["rank"] < K)].copy()
t["cell"] = t.neuron.astype(str) + ":" + t.activation.map(lambda x: f"{x:+.3f}")
table = t.groupby(["position", "token", "layer"], sort=True)["cell"].agg(", ".join).unstack("layer")
table.columns = [f"layer {L}" for L in table.columns]
table
