#!/usr/bin/env python3
"""How much a fraud graph adds to its node features, measured with gradient-boosted trees.

docs/results.md uses it to bound what any graph model can gain over a features-only baseline
on the Amazon U-P-U graph: trees on the standardised features, then with graph features added
(neighbour means, log degree, neighbour affinity, and the neighbours' maximum and mean of a
features-only tree's score). Stratified splits of the sizes basin's graph tasks use (train
ratio, then the rest 1:2 into validation and test); test ROC-AUC, mean ± sample std over seeds.

Needs numpy, scipy and scikit-learn (not basin's dependencies):

    python3 tools/graph_signal_probe.py ../shared/data/fraud-amazon-tam/Amazon.zip
"""
import argparse
import io
import zipfile

import numpy as np
import scipy.io
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split


def load(path):
    """Network, Attributes and Label of a TAM-layout .mat, alone or inside a .zip."""
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith(".mat"))
            m = scipy.io.loadmat(io.BytesIO(z.read(name)))
    else:
        m = scipy.io.loadmat(path)
    a = sp.csr_matrix(m["Network"], dtype=np.float64)
    x = m["Attributes"]
    x = np.asarray(x.todense() if sp.issparse(x) else x, dtype=np.float64)
    y = np.ravel(m["Label"]).astype(int)
    a = ((a + a.T) > 0).astype(np.float64).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    return a, x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("graph", help="a .mat or .zip in the TAM layout")
    ap.add_argument("--train-ratio", type=float, default=0.4)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()

    a, x, y = load(args.graph)
    deg = np.asarray(a.sum(1)).ravel()
    xs = (x - x.mean(0)) / (x.std(0) + 1e-9)
    mean_op = sp.diags(1 / np.maximum(deg, 1)) @ a
    unit = xs / np.linalg.norm(xs, axis=1, keepdims=True).clip(1e-9)
    affinity = np.asarray(a.multiply(unit @ unit.T).sum(1)).ravel() / np.maximum(deg, 1)
    print(f"{len(y)} nodes, {a.nnz} directed edges, mean degree {deg.mean():.1f}: "
          f"anomalous {deg[y == 1].mean():.1f}, normal {deg[y == 0].mean():.1f}")

    def neighbour_scores(train, seed):
        tree = HistGradientBoostingClassifier(random_state=seed).fit(xs[train], y[train])
        score = tree.predict_proba(xs)[:, 1]
        top = np.zeros(len(y))
        for i in range(len(y)):
            row = a.indices[a.indptr[i]:a.indptr[i + 1]]
            top[i] = score[row].max() if len(row) else 0.0
        return np.c_[top, mean_op @ score]

    variants = {
        "features": lambda tr, s: xs,
        "+ neighbour means": lambda tr, s: np.c_[xs, mean_op @ xs],
        "+ log degree": lambda tr, s: np.c_[xs, np.log1p(deg)],
        "+ means, degree, affinity": lambda tr, s: np.c_[xs, mean_op @ xs, np.log1p(deg), affinity],
        "+ degree, neighbour scores": lambda tr, s: np.c_[xs, np.log1p(deg),
                                                          neighbour_scores(tr, s)],
    }
    for name, features in variants.items():
        aucs = []
        for seed in range(args.seeds):
            idx = np.arange(len(y))
            train, rest = train_test_split(idx, train_size=args.train_ratio, stratify=y,
                                           random_state=seed)
            _, test = train_test_split(rest, test_size=0.67, stratify=y[rest], random_state=seed)
            f = features(train, seed)
            tree = HistGradientBoostingClassifier(random_state=seed).fit(f[train], y[train])
            aucs.append(roc_auc_score(y[test], tree.predict_proba(f[test])[:, 1]))
        print(f"{name:28s} test ROC-AUC {np.mean(aucs):.4f} ± {np.std(aucs, ddof=1):.4f}")


if __name__ == "__main__":
    main()
