"""Gene names come from one place (settings): a world with another naming scheme is drawn,
written about, read by the language model and explored end to end; a reader that cannot read
the literature says so and falls back."""

from __future__ import annotations

import numpy as np
import pytest

from level5_discovery.agent import CombinedDesigner
from level5_discovery.corpus import generate_corpus
from level5_discovery.lm import train_lm
from level5_discovery.loop import MIN_PARSE_RATE, run_session
from level5_discovery.session import prepare_world, session_config, world_spec
from level5_discovery.settings import DEFAULT_GENE_POOL, load
from level5_discovery.train import RENAMED_POOL, evaluate_lm, lm_cache_key
from level5_discovery.world import draw_world
from ml_common.config import ConfigError

RENAMED = list(RENAMED_POOL)


@pytest.fixture(scope="module")
def small_lm():  # noqa: ANN201
    """A small reader trained on default-named worlds only (as the cached one is)."""
    docs = [d for s in (1, 2) for d in generate_corpus(draw_world(s), s)]
    return train_lm([d.text for d in docs], [d.claim for d in docs], steps=150,
                    cfg_overrides={"n_embd": 48, "n_layer": 1})  # fmt: skip


def test_world_and_corpus_use_the_settings_names() -> None:
    settings = load(gene_pool=RENAMED, n_genes=6)
    world = draw_world(3, world_spec(settings))
    assert set(world.genes) <= set(RENAMED)
    named = {g for d in generate_corpus(world, 3) for g in (d.claim[0], d.claim[2])}
    assert named <= set(RENAMED)  # the irrelevant abstracts' genes too
    assert not named & set(DEFAULT_GENE_POOL)


def test_lm_cache_key_holds_the_names() -> None:
    assert lm_cache_key(load()) != lm_cache_key(load(gene_pool=RENAMED))
    assert lm_cache_key(load()) == lm_cache_key(load(gene_pool=list(DEFAULT_GENE_POOL)))


def test_bad_gene_pools_are_refused() -> None:
    with pytest.raises(ConfigError):
        load(gene_pool=["A1", "A1", *RENAMED[:20]])
    with pytest.raises(ConfigError):
        load(gene_pool=["not a symbol", *RENAMED[:20]])
    with pytest.raises(ConfigError):
        load(gene_pool=RENAMED[:5], n_genes=12)


def test_renamed_world_end_to_end(small_lm) -> None:  # noqa: ANN001
    """Read by a model that never saw these names: every passage about two lab genes parses,
    the prior holds the right edges, and a session runs to a graded network."""
    settings = load(gene_pool=RENAMED, n_genes=6, bench={"lm_eval_worlds": 1})
    prepared = prepare_world(5, settings, small_lm)
    lit = prepared.literature
    assert lit.reader == "lm" and lit.note is None
    assert lit.parse_rate >= 0.9
    claims = lit.claims()
    assert claims, "an empty prior: the reader read nothing"
    # Same seed, other names: the same network and literature, so reading every abstract gives
    # the same prior as with the default names (the reader sees masked genes only).
    renamed_all = prepare_world(5, settings, small_lm, read_all=True).literature.prior
    default_all = prepare_world(5, load(n_genes=6), small_lm, read_all=True).literature.prior
    np.testing.assert_allclose(renamed_all, default_all, atol=1e-6)
    assert (renamed_all != 0).any()
    result = run_session(prepared.world, CombinedDesigner(None), lab_seed=6,
                         literature=lit, corpus=prepared.corpus,
                         config=session_config(settings))  # fmt: skip
    assert result.experiments >= 1 and 0.0 <= result.scores.f1 <= 1.0
    renamed = evaluate_lm(small_lm, settings)
    assert renamed["constrained_parse_rate"] >= 0.9


def test_a_reader_that_cannot_read_says_so_and_falls_back(small_lm, caplog) -> None:  # noqa: ANN001
    settings = load(n_genes=6)
    prepared = prepare_world(5, settings, small_lm, hypothesis_fn=lambda p, g: [None] * len(p))
    lit = prepared.literature
    assert lit.parse_rate < MIN_PARSE_RATE
    assert lit.reader == "keyword" and "falling back to the keyword reader" in lit.note
    assert lit.claims()  # the keyword reader still gives a prior
    assert any("falling back" in r.getMessage() for r in caplog.records)
