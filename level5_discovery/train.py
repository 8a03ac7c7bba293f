"""Train (or load from cache) the two learned parts: the language model and the RL policy.

Both are trained on *training* worlds only: the LM on the corpora of worlds seeded from
``LM_SEED_BASE``, the policy on worlds seeded at or above ``RL_SEED_BASE``. Sessions and the
benchmark use other seeds (held-out worlds). Trained weights are cached under
``artifacts/level5/models`` with the settings that produced them; changed settings retrain.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

import numpy as np
import torch

from level5_discovery.agent import PolicyNet, load_policy, save_policy, train_policy
from level5_discovery.corpus import Abstract, make_corpus
from level5_discovery.lm import (
    TrainResult,
    generate_constrained,
    generate_free,
    load_lm,
    parse_hypothesis,
    perplexity,
    save_lm,
    train_lm,
)
from level5_discovery.settings import Level5Settings
from level5_discovery.world import WorldSpec, draw_world
from ml_common.atomic import write_json
from ml_common.logs import get_logger
from ml_common.paths import level_dir

LM_SEED_BASE = 1000
# The reader learns the language of the literature, which does not depend on the lab's size or
# on how often the literature is wrong: it is trained once, on 12-gene worlds with the default
# literature, and serves every size and error rate of the matrix.
LM_TRAIN_GENES = 12
RL_SEED_BASE = 100_000
log = get_logger(__name__)


def models_dir() -> Path:
    """Where trained weights are cached (``LEVEL5_MODELS_DIR`` moves it: a matrix case runs with
    its own artifacts folder but reads the models trained once by the benchmark)."""
    override = os.environ.get("LEVEL5_MODELS_DIR")
    path = Path(override) if override else level_dir(5) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _key(payload: dict, sources: tuple[str, ...] = (), extra: str = "") -> str:
    """Cache key of a trained model: its settings and the source of the code that trains it.

    The code is part of the key because a cache trained by an older version under the same
    settings is how a fresh benchmark once disagreed with the README (agent 2.20 vs 2.05,
    perplexity 1.509 vs 1.52): the README had been measured with a stale cached model.
    """
    here = Path(__file__).parent
    code = hashlib.sha256(
        b"".join((here / f).read_bytes() for f in sources) + extra.encode()
    ).hexdigest()
    blob = json.dumps({**payload, "code": code}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


LM_SOURCES = ("lm.py", "corpus.py", "world.py")  # the gene names enter the key as values
POLICY_SOURCES = ("agent.py", "env.py", "logic.py", "evidence.py", "structure.py", "corpus.py",
                  "world.py")  # fmt: skip


def training_corpus(settings: Level5Settings) -> list[Abstract]:
    """Abstracts of the LM's training worlds."""
    spec = WorldSpec(n_genes=LM_TRAIN_GENES, gene_pool=tuple(settings.gene_pool))
    docs: list[Abstract] = []
    for k in range(settings.lm.train_worlds):
        seed = LM_SEED_BASE + k
        docs.extend(make_corpus(draw_world(seed, spec), seed))
    return docs


def lm_cache_key(settings: Level5Settings) -> str:
    """Cache key of the language model: its settings, the gene names of its training worlds and
    the source of the code that trains it."""
    return _key({"lm": settings.lm.model_dump(), "n": LM_TRAIN_GENES,
                 "gene_pool": settings.gene_pool}, LM_SOURCES,
                inspect.getsource(training_corpus))  # fmt: skip


def lm_model(settings: Level5Settings, progress: bool = True) -> TrainResult:
    """The trained language model (cached under :func:`lm_cache_key`)."""
    path = models_dir() / f"lm-{lm_cache_key(settings)}.pt"
    if path.is_file():
        return load_lm(path)
    docs = training_corpus(settings)
    # One intra-op thread: reductions then run in one order, so training is bit-reproducible
    # (measured: two trainings give identical weights); more threads give different weights.
    torch.set_num_threads(1)
    log.info("training the language model on %d abstracts", len(docs))
    result = train_lm(
        [d.text for d in docs],
        [d.claim for d in docs],
        steps=settings.lm.steps,
        batch_size=settings.lm.batch_size,
        lr=settings.lm.lr,
        seed=settings.seed,
        progress=progress,
    )
    save_lm(result, path)
    return result


def rl_policy(settings: Level5Settings, progress: bool = True) -> PolicyNet:
    """The trained RL policy (cached; the key holds everything that changes its training:
    its own settings, the training sizes, the lab's noise and the literature's error rates)."""
    key = _key({"rl": settings.rl.model_dump(), "world": settings.world.model_dump(),
                "literature": settings.literature.model_dump()}, POLICY_SOURCES,
               inspect.getsource(rl_policy))  # fmt: skip
    path = models_dir() / f"policy-{key}.pt"
    if path.is_file():
        return load_policy(path)
    torch.set_num_threads(1)  # bit-reproducible training, as for the LM
    log.info("training the RL policy over %d episodes", settings.rl.episodes)
    policy, train_log = train_policy(
        episodes=settings.rl.episodes,
        batch=settings.rl.batch,
        lr=settings.rl.lr,
        seed=RL_SEED_BASE,
        progress=progress,
        sizes=tuple(settings.rl.sizes),
        prior_share=settings.rl.prior_share,
        world=settings.world.model_dump(),
        literature=settings.literature.model_dump(),
    )
    save_policy(policy, path)
    write_json(path.with_suffix(".json"), {"batch_lengths": train_log.batch_lengths})
    return policy


# Another naming scheme (mouse-style symbols, none shared with the default pool): the reader
# masks genes by the names it is given, so it should read these as well as the default ones.
RENAMED_POOL: tuple[str, ...] = tuple(f"Rgn{k}" for k in range(1, 41))


def evaluate_lm(
    lm: TrainResult, settings: Level5Settings, gene_pool: tuple[str, ...] | None = None
) -> dict[str, float]:
    """Held-out perplexity, unconstrained parse rate and constrained extraction accuracy.

    Held out: corpora of the first benchmark worlds, which the model never saw, drawn from
    ``gene_pool`` (default: the settings' names). Parse rates and accuracy are over passages
    about the lab (two lab genes); an abstract about genes outside the lab has nothing to read.
    ``constrained_parse_rate`` is the share of those passages the reader turned into a
    hypothesis about the right two genes: what :func:`read_literature` checks per session.
    """
    pool = gene_pool or tuple(settings.gene_pool)
    spec = WorldSpec(n_genes=settings.n_genes, gene_pool=pool)
    texts, claims, worlds_genes = [], [], []
    for k in range(settings.bench.lm_eval_worlds):
        seed = settings.bench.first_seed + k
        world = draw_world(seed, spec)
        for doc in make_corpus(world, seed):
            texts.append(doc.text)
            claims.append(doc.claim)
            worlds_genes.append(world.genes if doc.kind != "irrelevant" else None)
    ppl = perplexity(lm.model, lm.tokenizer, texts, claims)
    sample = np.random.default_rng(0).choice(len(texts), size=min(200, len(texts)), replace=False)
    relevant = [int(i) for i in sample if worlds_genes[int(i)] is not None]
    with torch.no_grad():
        free = [generate_free(lm.model, lm.tokenizer, texts[i], worlds_genes[i]) for i in relevant]
    parse_rate = float(np.mean([parse_hypothesis(f, worlds_genes[i]) is not None
                                for f, i in zip(free, relevant, strict=True)]))  # fmt: skip
    correct = parsed = 0
    for i in relevant:
        hyp = generate_constrained(lm.model, lm.tokenizer, [texts[i]], worlds_genes[i])[0]
        parsed += hyp is not None and {hyp.source, hyp.target} == {claims[i][0], claims[i][2]}
        correct += hyp is not None and (hyp.source, hyp.verb, hyp.target) == claims[i]
    return {
        "perplexity": ppl,
        "parse_rate": parse_rate,
        "constrained_parse_rate": parsed / max(len(relevant), 1),
        "constrained_accuracy": correct / max(len(relevant), 1),
        "free_examples": free[:5],
    }
