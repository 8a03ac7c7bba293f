"""The language model trains (loss falls), decodes under the grammar, saves and loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from level5_discovery.corpus import generate_corpus
from level5_discovery.lm import (
    Tokenizer,
    delexicalize,
    generate_constrained,
    generate_free,
    load_lm,
    parse_hypothesis,
    perplexity,
    save_lm,
    train_lm,
)
from level5_discovery.world import draw_world


@pytest.fixture(scope="module")
def trained():  # noqa: ANN201
    docs = [d for s in (1, 2) for d in generate_corpus(draw_world(s), s)]
    result = train_lm([d.text for d in docs], [d.claim for d in docs], steps=80,
                      cfg_overrides={"n_embd": 48, "n_layer": 1})  # fmt: skip
    return result, docs


def test_loss_falls(trained) -> None:  # noqa: ANN001
    result, _ = trained
    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-10:])
    assert last < 0.5 * first


def test_held_out_perplexity_near_the_measured_figure(trained) -> None:  # noqa: ANN001
    """Measured 4.81 (vocabulary 210) for this 80-step, 1-layer model, identical on every run
    (one torch thread); the 15% margin covers other BLAS builds, not run-to-run noise."""
    result, _ = trained
    held = generate_corpus(draw_world(99), 99)[:60]
    ppl = perplexity(
        result.model, result.tokenizer, [d.text for d in held], [d.claim for d in held]
    )
    assert 1.0 < ppl < 5.5


def test_constrained_decoding_always_parses(trained) -> None:  # noqa: ANN001
    result, docs = trained
    world = draw_world(1)
    passages = [d.text for d in docs[:40]]
    hyps = generate_constrained(result.model, result.tokenizer, passages, world.genes)
    for doc, hyp in zip(docs[:40], hyps, strict=True):
        if doc.kind == "irrelevant":  # mentions no two lab genes: no hypothesis about the lab
            assert hyp is None
            continue
        assert parse_hypothesis(hyp.text, world.genes) is not None
        assert {hyp.source, hyp.target} == {doc.claim[0], doc.claim[2]}  # genes of the passage
        assert 0.0 < hyp.probability <= 1.0 and 0.5 <= hyp.sign_confidence <= 1.0
    assert isinstance(generate_free(result.model, result.tokenizer, passages[0], world.genes), str)


def test_delexicalize_masks_genes_in_order_of_mention() -> None:
    lab = ["SOX2", "PAX6"]
    masked, genes = delexicalize("PAX6 is upregulated by SOX2 ; PAX6 again .", lab)
    assert masked == "GENE1 is upregulated by GENE2 ; GENE1 again ."
    assert genes == ["PAX6", "SOX2"]
    assert delexicalize("no genes here .", lab) == ("no genes here .", [])
    # Only the names given are masked: any naming scheme, no built-in list.
    assert delexicalize("Rgn3 represses Rgn7 , not SOX2", ["Rgn3", "Rgn7"])[0] == (
        "GENE1 represses GENE2 , not SOX2"
    )


def test_grammar() -> None:
    genes = ["SOX2", "PAX6"]
    assert parse_hypothesis("SOX2 activates PAX6", genes) == ("SOX2", "activates", "PAX6")
    assert parse_hypothesis("SOX2 inhibits SOX2", genes) is None
    assert parse_hypothesis("SOX2 binds PAX6", genes) is None
    assert parse_hypothesis("FOO1 activates PAX6", genes) is None
    assert parse_hypothesis("Rgn1 inhibits Rgn2", ["Rgn1", "Rgn2"]) == ("Rgn1", "inhibits", "Rgn2")
    tok = Tokenizer.build(["SOX2 appears to activate PAX6 ."])
    assert tok.decode(tok.encode("SOX2 activates PAX6")) == "SOX2 activates PAX6"
    assert tok.encode("zzz")[0] == tok.unk


def test_save_and_load_roundtrip(trained, tmp_path) -> None:  # noqa: ANN001
    result, docs = trained
    save_lm(result, tmp_path / "lm.pt")
    loaded = load_lm(tmp_path / "lm.pt")
    ids = torch.tensor([result.tokenizer.encode(docs[0].text)[:20]])
    torch.testing.assert_close(loaded.model(ids), result.model.eval()(ids))


def test_training_is_bit_reproducible() -> None:
    """Same seed, same weights (one torch thread): why a fresh benchmark reproduces the README."""
    docs = generate_corpus(draw_world(5), 5)[:80]
    runs = [train_lm([d.text for d in docs], [d.claim for d in docs], steps=15, seed=3,
                     cfg_overrides={"n_embd": 32, "n_layer": 1}) for _ in range(2)]  # fmt: skip
    for name, tensor in runs[0].model.state_dict().items():
        assert torch.equal(tensor, runs[1].model.state_dict()[name]), name
