"""A small GPT trained here on the corpus, and hypothesis generation with a grammar.

The model is a decoder-only transformer in the style of nanoGPT (token + position embeddings,
pre-norm blocks of causal self-attention and MLP, tied output head), all in this file. Each
training sequence is one abstract followed by its hypothesis::

    <bos> abstract words ... <hyp> SOX2 inhibits PAX6 <eos>

so the model learns the language of the corpus and to read a passage's hedged claim out as a
hypothesis. Gene symbols are **delexicalised** first (entity masking, standard in relation
extraction): the genes a passage mentions become ``GENE1``, ``GENE2``, … in order of first
mention, for the passage and its hypothesis alike, and are put back after decoding. The model then
learns *who regulates whom* from the wording ("B is upregulated by A" → ``GENE2 activates GENE1``)
instead of having to copy rare symbols; without it, this 2-layer model read the direction of a
claim no better than chance (48–68% per phrasing, 36% for "B expression was diminished upon loss
of A"), though it read the verb perfectly. At inference the model is conditioned on a retrieved
passage and decoding is constrained to the grammar ``GENE (activates|inhibits) GENE <eos>`` over
the lab genes the passage mentions: at every step, tokens the grammar forbids get probability
zero, so every constrained output parses. The unconstrained parse rate is
measured too, as a check of how well the model learned the grammar by itself.

:class:`OpenAICompatibleBackend` is an optional alternative for users with a real LLM endpoint;
it is off by default and nothing in the tests or the benchmark calls it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

SPECIALS = ("<pad>", "<bos>", "<hyp>", "<eos>", "<unk>")
VERBS = ("activates", "inhibits")
SLOTS = tuple(f"GENE{k}" for k in range(1, 7))  # delexicalised gene mentions, in order
_TOKEN = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")


def delexicalize(text: str, genes: Iterable[str]) -> tuple[str, list[str]]:
    """Replace the symbols of ``genes`` by ``GENE1``, ``GENE2``, … (order of first mention).

    ``genes``: the symbols to mask — the lab's genes at inference, a claim's two genes in
    training. The caller names them, so any naming scheme works (there is no built-in list).
    Returns the masked text and the genes behind the slots (``genes[k]`` is ``GENE{k+1}``).
    Genes beyond the last slot are left as they are.
    """
    known = frozenset(genes)
    mentioned: list[str] = []
    words = []
    for word in _TOKEN.findall(text):
        if word in known:
            if word not in mentioned and len(mentioned) < len(SLOTS):
                mentioned.append(word)
            if word in mentioned:
                word = SLOTS[mentioned.index(word)]
        words.append(word)
    return " ".join(words), mentioned


def lab_mentions(text: str, genes: Iterable[str]) -> list[str]:
    """The symbols of ``genes`` a text mentions, in order of first mention."""
    known = frozenset(genes)
    return list(dict.fromkeys(w for w in _TOKEN.findall(text) if w in known))


def _slot(gene: str, genes: list[str]) -> str:
    return SLOTS[genes.index(gene)] if gene in genes else gene


class Tokenizer:
    """Word-level tokenizer: gene symbols, verbs and corpus words are single tokens."""

    def __init__(self, vocabulary: list[str]) -> None:
        self.itos = list(vocabulary)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad, self.bos, self.hyp, self.eos, self.unk = (self.stoi[s] for s in SPECIALS)

    @classmethod
    def build(cls, texts: list[str]) -> Tokenizer:
        """Vocabulary from (delexicalised) texts, plus the verbs and the gene slots.

        No gene symbol is in it: genes are masked before the model sees them.
        """
        words = {w for t in texts for w in _TOKEN.findall(t)} | set(VERBS)
        words = sorted(words | set(SLOTS))
        return cls(list(SPECIALS) + [w for w in words if w not in SPECIALS])

    def encode(self, text: str) -> list[int]:
        """Token ids of a text (unknown words map to ``<unk>``)."""
        return [self.stoi.get(w, self.unk) for w in _TOKEN.findall(text)]

    def decode(self, ids: list[int]) -> str:
        """Text of token ids."""
        return " ".join(self.itos[i] for i in ids)

    def __len__(self) -> int:
        return len(self.itos)


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the transformer."""

    vocab_size: int
    context: int = 48
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 96
    dropout: float = 0.0  # small model, many steps over templated text: dropout only slowed it


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with a causal mask."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
            nn.GELU(),
            nn.Linear(4 * cfg.n_embd, cfg.n_embd),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """The language model: embeddings, blocks, final norm, head tied to the token embedding."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.context, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, time, vocab]``."""
        t = ids.shape[1]
        x = self.drop(self.tok(ids) + self.pos(torch.arange(t, device=ids.device)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def training_sequence(
    tok: Tokenizer, text: str, claim: tuple[str, str, str], context: int
) -> list[int]:
    """``<bos> passage <hyp> A verb B <eos>``, delexicalised, cut so the whole fits the context.

    The genes masked are the claim's two genes (each abstract is about exactly those).
    """
    source, verb, target = claim
    masked, genes = delexicalize(text, (source, target))
    tail = [tok.hyp, *tok.encode(f"{_slot(source, genes)} {verb} {_slot(target, genes)}"), tok.eos]
    body = tok.encode(masked)[: context - len(tail) - 1]
    return [tok.bos, *body, *tail]


def _batch(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s)
    targets = ids[:, 1:].clone()
    targets[targets == pad] = -100
    return ids[:, :-1], targets


def _hypothesis_mask(inputs: torch.Tensor, hyp: int) -> torch.Tensor:
    """True at positions whose *next* token belongs to the hypothesis (after ``<hyp>``)."""
    return torch.cumsum((inputs == hyp).int(), dim=1) > 0


@dataclass
class TrainResult:
    """A trained model with its tokenizer and loss curve."""

    model: TinyGPT
    tokenizer: Tokenizer
    losses: list[float]


def train_lm(
    texts: list[str],
    claims: list[tuple[str, str, str]],
    steps: int = 400,
    batch_size: int = 32,
    lr: float = 3e-3,
    hypothesis_weight: float = 4.0,
    seed: int = 0,
    cfg_overrides: dict | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train the model on abstracts and their claims with AdamW; returns losses per step.

    The loss is next-token cross-entropy over the whole sequence, with the hypothesis tokens
    weighted ``hypothesis_weight`` times: the abstracts' filler sentences are random and would
    otherwise dominate the gradient, while the hypothesis is what the agent needs.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tok = Tokenizer.build([delexicalize(t, (c[0], c[2]))[0] for t, c in zip(texts, claims,
                                                                            strict=True)])
    cfg = GPTConfig(vocab_size=len(tok), **(cfg_overrides or {}))
    seqs = [training_sequence(tok, t, c, cfg.context) for t, c in zip(texts, claims, strict=True)]
    model = TinyGPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    losses = []
    iterator = range(steps)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="training language model", leave=False)
    model.train()
    for _ in iterator:
        pick = rng.integers(0, len(seqs), batch_size)
        ids, targets = _batch([seqs[int(i)] for i in pick], tok.pad)
        logits = model(ids)
        token_loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
        ).view_as(targets)
        valid = (targets != -100).float()
        weight = valid * (1.0 + (hypothesis_weight - 1.0) * _hypothesis_mask(ids, tok.hyp).float())
        loss = (token_loss * weight).sum() / weight.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    return TrainResult(model, tok, losses)


@torch.no_grad()
def perplexity(
    model: TinyGPT, tok: Tokenizer, texts: list[str], claims: list[tuple[str, str, str]]
) -> float:
    """exp(mean next-token cross-entropy) over held-out sequences."""
    model.eval()
    seqs = [
        training_sequence(tok, t, c, model.cfg.context) for t, c in zip(texts, claims, strict=True)
    ]
    total, count = 0.0, 0
    for start in range(0, len(seqs), 64):
        ids, targets = _batch(seqs[start : start + 64], tok.pad)
        logits = model(ids)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        )
        total += float(loss)
        count += int((targets != -100).sum())
    return math.exp(total / max(count, 1))


@dataclass(frozen=True)
class Hypothesis:
    """A generated hypothesis and the model's probability for it."""

    source: str
    verb: str
    target: str
    probability: float
    sign_confidence: float  # P(verb | passage, source), renormalised over the two verbs

    @property
    def text(self) -> str:
        """``A activates B``."""
        return f"{self.source} {self.verb} {self.target}"

    @property
    def sign(self) -> int:
        """+1 activates, -1 inhibits."""
        return 1 if self.verb == "activates" else -1


# Cue words of a negative relation, written by someone who read the corpus: the keyword reader
# below uses them (an ablation baseline for the language model, not part of the agent).
_NEGATIVE_CUES = frozenset(
    ("represses", "suppress", "elevated", "derepressed", "downregulated", "silenced",
     "negative", "accumulates")
)  # fmt: skip


def keyword_hypotheses(passages: list[str], genes: list[str]) -> list[Hypothesis | None]:
    """A reader without a language model (ablation): the first lab gene a passage mentions
    regulates the second, negatively if a negative cue word occurs, positively otherwise.

    It reads the sign as well as the LM does but gets the direction wrong whenever a passage
    names the target first ("B is upregulated by A"), which is what the LM learned to read.
    """
    lab = set(genes)
    out: list[Hypothesis | None] = []
    for passage in passages:
        words = _TOKEN.findall(passage)
        mentioned = list(dict.fromkeys(w for w in words if w in lab))
        if len(mentioned) < 2:
            out.append(None)
            continue
        verb = "inhibits" if _NEGATIVE_CUES & set(words) else "activates"
        out.append(Hypothesis(mentioned[0], verb, mentioned[1], 1.0, 1.0))
    return out


def _prompt(tok: Tokenizer, masked: str, context: int) -> list[int]:
    return [tok.bos, *tok.encode(masked)[: context - 6], tok.hyp]


@torch.no_grad()
def generate_constrained(
    model: TinyGPT, tok: Tokenizer, passages: list[str], genes: list[str]
) -> list[Hypothesis | None]:
    """Greedy decoding under the grammar ``GENE verb GENE <eos>``, one hypothesis per passage.

    The grammar's genes are the lab ``genes`` the passage mentions (as their slots); subject
    differs from object. A passage mentioning fewer than two lab genes says nothing about the
    lab's network: its entry is None.
    """
    model.eval()
    verb_ids = torch.tensor([tok.stoi[v] for v in VERBS])
    out: list[Hypothesis | None] = []
    for passage in passages:
        masked, mentioned = delexicalize(passage, genes)
        slots = SLOTS[: len(mentioned)]
        if len(slots) < 2:
            out.append(None)
            continue
        slot_ids = torch.tensor([tok.stoi[s] for s in slots])
        ids = _prompt(tok, masked, model.cfg.context)
        chosen, logp = [], 0.0
        sign_conf = 0.0
        for step, allowed in enumerate((slot_ids, verb_ids, slot_ids)):
            if step == 2:
                allowed = allowed[allowed != chosen[0]]
            logits = model(torch.tensor([ids]))[0, -1]
            logprobs = F.log_softmax(logits, dim=-1)
            sub = logprobs[allowed]
            best = int(torch.argmax(sub))
            token = int(allowed[best])
            if step == 1:
                sign_conf = float(torch.softmax(logits[allowed], dim=-1)[best])
            logp += float(sub[best])
            chosen.append(token)
            ids.append(token)
        source, verb, target = (tok.itos[t] for t in chosen)
        source, target = (mentioned[SLOTS.index(x)] for x in (source, target))
        out.append(Hypothesis(source, verb, target, math.exp(logp), sign_conf))
    return out


@torch.no_grad()
def generate_free(
    model: TinyGPT, tok: Tokenizer, passage: str, genes: Iterable[str], max_tokens: int = 6
) -> str:
    """Greedy decoding with no grammar, up to ``<eos>``: to measure the unconstrained parse rate.

    ``genes``: the symbols to mask (the lab's). Slots in the output are put back as the
    passage's genes (an unknown slot stays, and fails to parse).
    """
    model.eval()
    masked, genes = delexicalize(passage, genes)
    ids = _prompt(tok, masked, model.cfg.context)
    out = []
    for _ in range(max_tokens):
        nxt = int(torch.argmax(model(torch.tensor([ids]))[0, -1]))
        if nxt == tok.eos:
            break
        out.append(nxt)
        ids.append(nxt)
    words = tok.decode(out).split()
    return " ".join(
        genes[SLOTS.index(w)] if w in SLOTS and SLOTS.index(w) < len(genes) else w for w in words
    )


_GRAMMAR = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*) (activates|inhibits) ([A-Za-z][A-Za-z0-9]*)\s*$")


def parse_hypothesis(text: str, genes: Iterable[str]) -> tuple | None:
    """``(A, verb, B)`` if the text is a well-formed hypothesis about ``genes``, else None."""
    genes = frozenset(genes)
    match = _GRAMMAR.match(text)
    if not match or match.group(1) not in genes or match.group(3) not in genes:
        return None
    if match.group(1) == match.group(3):
        return None
    return match.group(1), match.group(2), match.group(3)


def save_lm(result: TrainResult, path) -> None:  # noqa: ANN001
    """Save weights, config and vocabulary (atomically)."""
    from ml_common.atomic import atomic_write

    with atomic_write(path, mode="wb") as fh:
        torch.save(
            {"state": result.model.state_dict(), "cfg": result.model.cfg.__dict__,
             "vocab": result.tokenizer.itos, "losses": result.losses},
            fh,
        )  # fmt: skip


def load_lm(path) -> TrainResult:  # noqa: ANN001
    """Load what :func:`save_lm` wrote."""
    blob = torch.load(path, weights_only=False)
    model = TinyGPT(GPTConfig(**blob["cfg"]))
    model.load_state_dict(blob["state"])
    model.eval()
    return TrainResult(model, Tokenizer(blob["vocab"]), blob["losses"])


class OpenAICompatibleBackend:
    """Hypotheses from any OpenAI-compatible chat endpoint (optional, off by default).

    Not exercised by tests or benchmarks (no network here); its answers go through the same
    grammar check as the local model's.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key

    def generate(self, passages: list[str], genes: list[str]) -> list[Hypothesis | None]:
        """One hypothesis per passage; None where the answer does not parse."""
        import httpx

        out = []
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        for passage in passages:
            prompt = (
                "Read the passage and state the regulatory claim it makes, exactly in the form "
                f"'GENE activates GENE' or 'GENE inhibits GENE', genes from {genes}.\n\n{passage}"
            )
            response = httpx.post(
                f"{self.base_url}/chat/completions",
                json={"model": self.model, "messages": [{"role": "user", "content": prompt}]},
                headers=headers,
                timeout=60,
            )
            response.raise_for_status()
            answer = response.json()["choices"][0]["message"]["content"].strip()
            parsed = parse_hypothesis(answer, genes)
            out.append(
                Hypothesis(*parsed, probability=1.0, sign_confidence=1.0) if parsed else None
            )
        return out
