"""A literature corpus generated from a world: short abstracts in varied, hedged language.

Most abstracts state a true edge of the hidden network; some state it with the wrong sign, some
claim an edge that does not exist (often an indirect effect reported as direct, or the direction
reversed), and some are about genes of the pool that are not in this lab's network at all. Each
abstract carries its ground-truth claim (``claim``) and whether that claim is true, for training
the language model and for scoring retrieval; the agent itself only reads ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from level5_discovery.world import GeneNetwork

# Sentences that express "A activates B" / "A inhibits B" in different words and word orders.
ACTIVATES = (
    "{a} appears to activate {b}",
    "{a} promotes {b} expression",
    "knockdown of {a} reduced {b} levels",
    "{b} expression was diminished upon loss of {a}",
    "overexpression of {a} induced {b}",
    "{b} is upregulated by {a}",
    "{a} acts as a positive regulator of {b}",
    "{b} transcription depends on {a}",
)
INHIBITS = (
    "{a} represses {b}",
    "{a} appears to suppress {b} transcription",
    "loss of {a} elevated {b} levels",
    "{b} was derepressed in {a} deficient cells",
    "{b} is downregulated by {a}",
    "overexpression of {a} silenced {b}",
    "{a} acts as a negative regulator of {b}",
    "{b} accumulates when {a} is knocked out",
)
HEDGES = (
    "we show that",
    "our data suggest that",
    "it is likely that",
    "preliminary evidence indicates that",
    "we propose that",
    "these results confirm that",
    "surprisingly ,",
    "",
)
CONTEXT = (
    "we profiled {k} samples by rna sequencing .",
    "experiments were performed in murine fibroblasts .",
    "single cell data from {k} embryos were analysed .",
    "a crispr screen in human cell lines was used .",
    "expression was quantified by qpcr in {k} replicates .",
    "the study used a zebrafish model .",
)
CLOSING = (
    "further work is needed to confirm this mechanism .",
    "this may explain developmental defects .",
    "the effect was consistent across conditions .",
    "the relation may be indirect .",
    "these findings refine current models of the network .",
    "",
)


@dataclass(frozen=True)
class Abstract:
    """One generated abstract and the relation it states (``claim``: (A, verb, B))."""

    doc_id: int
    text: str
    claim: tuple[str, str, str]
    kind: str  # "true", "wrong_sign", "false_edge" or "irrelevant"

    @property
    def is_true(self) -> bool:
        """Whether the stated relation is an edge of the hidden network with the right sign."""
        return self.kind == "true"


def claim_sentence(source: str, verb: str, target: str, rng: np.random.Generator) -> str:
    """One sentence stating ``source verb target`` in a randomly chosen phrasing and hedge."""
    template = str(rng.choice(ACTIVATES if verb == "activates" else INHIBITS))
    hedge = str(rng.choice(HEDGES))
    body = template.format(a=source, b=target)
    return f"{hedge} {body} .".strip()


def _abstract(
    doc_id: int, claim: tuple[str, str, str], kind: str, rng: np.random.Generator
) -> Abstract:
    context = str(rng.choice(CONTEXT)).format(k=int(rng.integers(3, 60)))
    closing = str(rng.choice(CLOSING))
    text = " ".join(p for p in (context, claim_sentence(*claim, rng), closing) if p)
    return Abstract(doc_id, text, claim, kind)


def generate_corpus(
    world: GeneNetwork,
    seed: int,
    coverage: float = 0.8,
    papers_per_edge: float = 7.0,
    wrong_sign_rate: float = 0.12,
    false_edges: int = 4,
    irrelevant: int = 120,
) -> list[Abstract]:
    """Abstracts about the world's edges (most true), plus wrong and irrelevant ones.

    Args:
        world: the hidden network the literature is (imperfectly) about.
        seed: corpus seed (independent of the world's seed).
        coverage: share of true edges that appear in the literature at all.
        papers_per_edge: mean number of abstracts per covered edge (Poisson, at least 1).
        wrong_sign_rate: chance that an abstract on a true edge reports the opposite sign.
        false_edges: number of non-edges claimed by the literature (2-4 abstracts each).
        irrelevant: abstracts about genes outside the network.
    """
    rng = np.random.default_rng(seed)
    genes, weights = world.genes, world.weights
    raw: list[tuple[tuple[str, str, str], str]] = []
    for i, j in zip(*np.nonzero(weights), strict=True):
        if rng.random() > coverage:
            continue
        verb = "activates" if weights[i, j] > 0 else "inhibits"
        flipped = "inhibits" if verb == "activates" else "activates"
        for _ in range(max(1, int(rng.poisson(papers_per_edge)))):
            if rng.random() < wrong_sign_rate:
                raw.append(((genes[i], flipped, genes[j]), "wrong_sign"))
            else:
                raw.append(((genes[i], verb, genes[j]), "true"))
    reach = world.reachability()
    n = world.n_genes
    non_edges = [(i, j) for i in range(n) for j in range(n) if i != j and weights[i, j] == 0]
    # Plausible mistakes first: indirect effects reported as direct, and reversed edges.
    plausible = [(i, j) for i, j in non_edges if reach[i, j] or weights[j, i] != 0]
    pool = plausible if len(plausible) >= false_edges else non_edges
    picks = rng.choice(len(pool), size=min(false_edges, len(pool)), replace=False)
    for idx in picks:
        i, j = pool[int(idx)]
        verb = str(rng.choice(["activates", "inhibits"]))
        for _ in range(int(rng.integers(2, 5))):
            raw.append(((genes[i], verb, genes[j]), "false_edge"))
    outsiders = [g for g in world.spec.gene_pool if g not in genes]
    for _ in range(irrelevant):
        a, b = rng.choice(outsiders, size=2, replace=False)
        verb = str(rng.choice(["activates", "inhibits"]))
        raw.append(((str(a), verb, str(b)), "irrelevant"))
    order = rng.permutation(len(raw))
    return [_abstract(doc_id, *raw[int(k)], rng) for doc_id, k in enumerate(order)]


def wrong_relations(corpus: list[Abstract], world: GeneNetwork) -> set[tuple[int, int, int]]:
    """Distinct relations (source, target, sign) the corpus states about the network wrongly."""
    index = {g: k for k, g in enumerate(world.genes)}
    out = set()
    for doc in corpus:
        if doc.kind in ("wrong_sign", "false_edge"):
            a, verb, b = doc.claim
            out.add((index[a], index[b], 1 if verb == "activates" else -1))
    return out


def make_corpus(world: GeneNetwork, seed: int, **literature: float) -> list[Abstract]:
    """The corpus of a world (its own seed stream); ``literature``: :func:`generate_corpus`'s
    error rates (``LiteratureSettings``), its defaults otherwise."""
    return generate_corpus(world, seed=seed + 7919, **literature)
