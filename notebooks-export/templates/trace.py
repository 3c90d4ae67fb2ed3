# probe trace: how one prediction is built, layer by layer -- the logit lens
# before and after each FFN, the sub-updates m_i v_i that move the target most,
# and the effect of interventions.
# %% [markdown]
# ## Load
# %% requires=h5
f = h5py.File(RESULT, "r")
n_layer = int(attr(f, "n_layer"))
positions = [int(p) for p in f["positions"][()]]
POS = positions[-1]  # the traced position to draw
runs = [r for r in ("base", "intervened") if r in f]
prompt_tokens = strs(f["tokens"])
# Token texts for ids: the file has no vocabulary table, so collect every id
# that comes with its text; others show as #id.
names = dict(zip(f["token_ids"][()].tolist(), prompt_tokens))
names.update(zip(f["target_ids"][()].tolist(), strs(f["targets"])))
for r in runs:
    if "generated_ids" in f[r]:
        names.update(zip(f[r]["generated_ids"][()].tolist(), strs(f[r]["generated_tokens"])))
    for p in positions:
        g = f[f"{r}/pos_{p}"]
        names.update(zip(g["top_ids"][()].tolist(), strs(g["top_tokens"])))


def name(i):
    return names.get(int(i), f"#{int(i)}")


def pos_group(run, p=None):
    return f[f"{run}/pos_{POS if p is None else p}"]


g = pos_group("base")
TARGET = attr(g, "target")
print(f"prompt {attr(f, 'prompt')!r}; traced positions {positions}; drawing position {POS} "
      f"({prompt_tokens[POS]!r}); target {TARGET!r}: probability {attr(g, 'target_prob'):.4f}, "
      f"rank {attr(g, 'target_rank')}")
# Tidy table of the listed sub-updates, as the CSV output has it.
rows = []
for r in runs:
    for p in positions:
        g = f[f"{r}/pos_{p}"]
        key, contrib = g["key_act"][()], g["contribution"][()]
        for ranking, ds in (("norm", "top_by_norm"), ("contribution", "top_by_contribution")):
            pr = g[f"promoted_by_{ranking}"][()] if f"promoted_by_{ranking}" in g else None
            for L in range(n_layer):
                for k, n in enumerate(g[ds][L]):
                    toks = [name(i) for i in pr[L, k]] if pr is not None else []
                    rows.append((r, p, attr(g, "target"), ranking, L, int(n), float(key[L, n]),
                                 float(f["value_norm"][L, n]), float(contrib[L, n]), k, toks))
subs = pd.DataFrame(rows, columns=["run", "position", "target", "ranking", "layer", "neuron",
                                   "activation", "value_norm", "contribution", "rank", "top_tokens"])
# %% requires=csv
subs = pd.read_csv(RESULT)
subs["top_tokens"] = subs.top_tokens.map(lambda s: json.loads(s) if isinstance(s, str) and s else [])
positions = sorted(subs.position.unique().tolist())
POS = positions[-1]
runs = [r for r in ("base", "intervened") if (subs.run == r).any()]
TARGET = subs[subs.position == POS].target.iloc[0]
n_layer = int(subs.layer.max()) + 1
print(f"{len(subs)} rows; traced positions {positions}; drawing position {POS}; target {TARGET!r}")
# %% [markdown] requires=csv
# The logit lens is stored only in the `.h5` output (`probe trace --out FILE.h5`); the CSV
# holds the listed sub-updates.
# %% [markdown] requires=h5
# ## Logit lens: the target before and after each FFN
# The lens applies the final norm and the unembedding to the residual before a
# layer's FFN (after attention) and after it; the gap between the two curves at a
# layer is that FFN's effect on the target.
# %% tags=["plot"] requires=h5
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
x = np.arange(n_layer)
for r, ls in zip(runs, ("-", "--")):
    g = pos_group(r)
    for stage, mk in (("pre", "o"), ("post", "s")):
        lab = f"{r}, {'before' if stage == 'pre' else 'after'} FFN"
        a1.plot(x, g[f"lens_{stage}_target_prob"][()], ls, marker=mk, label=lab)
        a2.plot(x, np.asarray(g[f"lens_{stage}_target_rank"][()]) + 1, ls, marker=mk, label=lab)
a1.set_ylabel(f"p({TARGET!r})")
a2.set_ylabel(f"rank of {TARGET!r} (1 = top)")
a2.set_yscale("log")
a2.invert_yaxis()
for a in (a1, a2):
    a.set_xlabel("layer")
    a.set_xticks(x)
    a.grid(alpha=0.3)
a1.legend(fontsize=8)
fig.suptitle(f"logit lens at position {POS} ({prompt_tokens[POS]!r})")
fig.tight_layout()
plt.show()
# %% [markdown]
# ## Top sub-updates per layer
# The neurons whose sub-update m_i v_i adds most to the target's logit (through
# the final norm linearised at this position), with the tokens each promotes.
# %% tags=["plot"]
K = 8
d = subs[(subs.run == "base") & (subs.position == POS) & (subs.ranking == "contribution") & (subs["rank"] < K)]
layers = sorted(d.layer.unique().tolist())
fig, axes = grid(len(layers), ncols=3, w=5.2, h=0.28 * K + 1.4)
for ax, L in zip(axes, layers):
    e = d[d.layer == L].sort_values("rank")
    y = np.arange(len(e))[::-1]
    ax.barh(y, e.contribution, color=["tab:green" if c >= 0 else "tab:red" for c in e.contribution])
    ax.set_yticks(y)
    ax.set_yticklabels([f"{n}: " + " ".join(repr(t) for t in toks[:3]) for n, toks in zip(e.neuron, e.top_tokens)],
                       fontsize=7)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_title(f"layer {L}")
    ax.set_xlabel(f"contribution to logit({TARGET!r})")
fig.tight_layout()
plt.show()
# %%
d[["layer", "rank", "neuron", "activation", "value_norm", "contribution", "top_tokens"]].head(40)
# %% [markdown] requires=intervened
# ## Interventions: before and after
# %% requires=intervened,h5
iv = f["interventions"]
display(pd.DataFrame(dict(layer=iv["layer"][()], neuron=iv["neuron"][()], kind=strs(iv["kind"]),
                          value=iv["value"][()])))
b, i = pos_group("base"), pos_group("intervened")
print(f"p({TARGET!r}): {attr(b, 'target_prob'):.4f} -> {attr(i, 'target_prob'):.4f}; "
      f"rank {attr(b, 'target_rank')} -> {attr(i, 'target_rank')}")
if "generated_tokens" in f["base"]:
    for r in runs:
        print(f"{r:>10}: " + "".join(strs(f[r]["generated_tokens"])))
# %% tags=["plot"] requires=intervened,h5
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
b, i = pos_group("base"), pos_group("intervened")
ids = list(dict.fromkeys(b["top_ids"][()].tolist() + i["top_ids"][()].tolist()))[:12]
pb = np.exp(b["logits"][()] - np.max(b["logits"][()]))
pb /= pb.sum()
pi = np.exp(i["logits"][()] - np.max(i["logits"][()]))
pi /= pi.sum()
y = np.arange(len(ids))[::-1]
a1.barh(y + 0.2, pb[ids], height=0.4, label="base")
a1.barh(y - 0.2, pi[ids], height=0.4, label="intervened")
a1.set_yticks(y)
a1.set_yticklabels([repr(name(t)) for t in ids], fontsize=8)
a1.set_xlabel("probability")
a1.set_title(f"prediction at position {POS}")
a1.legend(fontsize=8)
x = np.arange(n_layer)
a2.plot(x, b["lens_post_target_prob"][()], "-o", label="base")
a2.plot(x, i["lens_post_target_prob"][()], "--s", label="intervened")
a2.set_xlabel("layer")
a2.set_xticks(x)
a2.set_ylabel(f"p({TARGET!r}) after the FFN (lens)")
a2.legend(fontsize=8)
a2.grid(alpha=0.3)
fig.tight_layout()
plt.show()
# %% tags=["plot"] requires=intervened,csv
d = subs[(subs.position == POS) & (subs.ranking == "contribution")]
s = d.groupby(["layer", "run"]).contribution.sum().unstack("run").reindex(columns=runs)
fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(s) + 2), 3.8))
w = 0.4
for k, r in enumerate(runs):
    ax.bar(np.arange(len(s)) + (k - 0.5) * w, s[r].fillna(0), width=w, label=r)
ax.set_xticks(np.arange(len(s)))
ax.set_xticklabels([str(L) for L in s.index])
ax.axhline(0, color="grey", lw=0.6)
ax.set_xlabel("layer")
ax.set_ylabel(f"sum of listed contributions to logit({TARGET!r})")
ax.set_title("listed sub-updates, base vs intervened")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
