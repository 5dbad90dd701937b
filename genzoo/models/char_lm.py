"""Character-level language models: text as a product of conditionals, one character at a time.

    p(w_0, ..., w_L) = prod_t p(w_t | w_<t)   (Shannon 1951; Bengio et al. 2003, Eq. 1)

One family, three networks (`network`), trained and sampled the same way, so that they compare at one
budget by changing one key:
- `lstm` (Hochreiter & Schmidhuber 1997) and `gru` (Cho et al. 2014): the recurrent networks of
  Karpathy's char-rnn and Graves, "Generating Sequences With Recurrent Neural Networks" (2013),
  Sec. 2: an embedding, stacked recurrent layers, a linear layer to the logits;
- `transformer`: a small causal decoder (Vaswani et al. 2017; pre-norm blocks as in GPT-2, Radford
  et al. 2019), learned position embeddings, causal self-attention, 4x GELU MLP: nanoGPT's
  character model at a smaller size.
A window of the data (L + 1 tokens w_0 .. w_L) is read after a start token (BOS, one more input
embedding), so the model gives p(w_0 | BOS) and p(w_t | BOS, w_<t): trained with teacher forcing on
the cross-entropy of all L + 1 tokens, and `nll` is the exact -log p(window) in nats, L + 1 tokens
(bits per character = nll / ((L + 1) log 2); p(w_0 | BOS) is the model's guess of a character from
anywhere in the text, one token in L + 1). Recurrent networks may truncate back-propagation through
time (`bptt`): the state runs through the whole window but gradients stop every `bptt` tokens
(Williams & Peng 1990; char-rnn's seq_length).

Decoding (`generate`, `complete`) runs one token at a time on a cached state: the recurrent state, or
the transformer's keys and values of every earlier position (KV cache). Past the transformer's
context (L + 1 positions) each token recomputes the last L tokens after BOS in full.
- sampling at a temperature T: p_T(w) ∝ p(w)^(1/T) (softmax of logits / T; Hinton et al. 2015,
  Eq. 1), T -> 0 approaching greedy decoding; optionally from the k most likely tokens only (top-k,
  Fan et al. 2018, Sec. 5.4);
- beam search with B beams: after each token keep the B partial sequences of highest total
  log-probability sum_t log p(w_t | w_<t) among all one-token extensions of the kept ones (exact beam
  search, no length penalty; B = 1 is greedy decoding); returns the n best.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt, model_validator
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, GenerativeModel, Likelihood
from genzoo.nn import sequential_cpu
from genzoo.registry import MODELS

State = Any  # a network's decoding state: (h, c), h, or the transformer's tokens and KV cache

# ----------------------------------------------------------------------------- config


class CharLMConfig(FamilyConfig):
    network: Literal["lstm", "gru", "transformer"] = "lstm"
    width: PositiveInt = 256  # recurrent units per layer, or the transformer's model dimension
    layers: PositiveInt = 2  # recurrent layers, or transformer blocks
    heads: PositiveInt = 4  # transformer attention heads (width must be a multiple)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # between layers (recurrent) or in the blocks (transformer)
    bptt: PositiveInt | None = None  # recurrent: gradients stop every this many tokens; None: the whole window
    temperature: PositiveFloat = 1.0  # default sampling temperature
    top_k: PositiveInt | None = None  # default: sample from every token

    @model_validator(mode="after")
    def _consistent(self) -> CharLMConfig:
        if self.network == "transformer" and self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        if self.network == "transformer" and self.bptt is not None:
            raise ValueError("bptt is for recurrent networks; a transformer attends to the whole window")
        return self


# ----------------------------------------------------------------------------- networks


class Recurrent(nn.Module):
    """Embedding -> LSTM or GRU layers -> logits. Input tokens 0..V-1, and V for BOS."""

    def __init__(self, kind: str, vocab: int, width: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(vocab + 1, width)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = rnn(width, width, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens: Tensor, state: State = None) -> tuple[Tensor, State]:
        """tokens (B, T) -> logits (B, T, V) and the state after the last token."""
        hidden, state = self.rnn(self.dropout(self.embedding(tokens)), state)  # (B, T, width)
        return self.head(self.dropout(hidden)), state

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """One more token per sequence: tokens (B,) -> logits (B, V) and the new state."""
        logits, state = self(tokens[:, None], state)
        return logits[:, 0], state

    @staticmethod
    def detach(state: State) -> State:
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    @staticmethod
    def select(state: State, index: Tensor) -> State:
        """The states of sequences `index` (B',): batch is dim 1 of (layers, B, width)."""
        return tuple(s[:, index] for s in state) if isinstance(state, tuple) else state[:, index]


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)) (pre-norm, GPT-2); attention with a KV cache."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm_attention, self.norm_mlp = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.projection = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.Dropout(dropout))
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, cache: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, T, d) for the T positions after the cached ones -> (B, T, d) and the keys and values of
        every position so far, (B, heads, T_all, d / heads) each."""
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2)
                   for t in self.qkv(self.norm_attention(x)).chunk(3, dim=-1))  # (B, heads, T, d/heads) each
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        # softmax(q k^T / sqrt(d_k)) v (Vaswani et al. 2017, Eq. 1), position t attending to positions <= t;
        # one new position after a cache attends to all of it, so the causal mask is needed only without one
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and q.shape[2] > 1,
                                                  dropout_p=self.dropout if self.training else 0.0)  # (B, heads, T, d/heads)
        x = x + self.residual_dropout(self.projection(attended.transpose(1, 2).flatten(2)))
        return x + self.mlp(self.norm_mlp(x)), (k, v)


class Transformer(nn.Module):
    """Token and position embeddings -> causal blocks -> LayerNorm -> logits, over `context` positions."""

    def __init__(self, vocab: int, width: int, layers: int, heads: int, dropout: float, context: int) -> None:
        super().__init__()
        self.context = context
        self.embedding = nn.Embedding(vocab + 1, width)  # + BOS
        self.position = nn.Embedding(context, width)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens: Tensor, caches: list | None = None) -> tuple[Tensor, list]:
        """tokens (B, T) after the positions in `caches` -> logits (B, T, V) and the caches with them."""
        start = 0 if caches is None else caches[0][0].shape[2]
        if caches is not None and tokens.shape[1] > 1:
            raise ValueError("a cached forward takes one new position at a time")
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)  # (T,)
        x = self.dropout(self.embedding(tokens) + self.position(positions))  # (B, T, d)
        new_caches = []
        for i, block in enumerate(self.blocks):
            x, cache = block(x, None if caches is None else caches[i])
            new_caches.append(cache)
        return self.head(self.norm(x)), new_caches

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """One more token per sequence. state: (every input so far (B, t), caches or None)."""
        seen, caches = state
        seen = tokens[:, None] if seen is None else torch.cat([seen, tokens[:, None]], dim=1)  # (B, t + 1)
        if seen.shape[1] <= self.context:  # within the context: only the new position, on the cache
            logits, caches = self(tokens[:, None], caches)
        else:  # past it: BOS and the last context - 1 tokens, in full (positions shift, so no cache)
            seen = torch.cat([seen[:, :1], seen[:, 1 - self.context :]], dim=1)  # (B, context)
            logits, caches = self(seen)[0], None
        return logits[:, -1], (seen, caches)

    @staticmethod
    def select(state: State, index: Tensor) -> State:
        seen, caches = state
        caches = None if caches is None else [(k[index], v[index]) for k, v in caches]
        return (None if seen is None else seen[index], caches)


# ----------------------------------------------------------------------------- model


@MODELS.register("char-lm")
class CharLM(GenerativeModel):
    Config = CharLMConfig
    modality = "text"
    ema_modules = ("network",)
    requires = ("tokens",)

    def __init__(self, config: CharLMConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if not info.vocab_size or not info.sequence_length:
            raise GenzooError("a char-lm model needs text data (data.name=fortunes, or data.name=text data.root=FILE).")
        self.vocab, self.length = info.vocab_size, info.sequence_length
        self.bos = self.vocab  # the start token's input id
        # exact -log p(window) of the L + 1 tokens of a window
        unit = "byte" if info.vocabulary is None else "char"
        self.likelihood = Likelihood(exact=True, item="window", dims=self.length + 1, dim_name=unit, offset=0.0)
        if config.network == "transformer":
            self.network: nn.Module = Transformer(self.vocab, config.width, config.layers, config.heads, config.dropout,
                                                  context=self.length + 1)
        else:
            self.network = Recurrent(config.network, self.vocab, config.width, config.layers, config.dropout)

    def _inputs(self, tokens: Tensor) -> Tensor:
        """BOS, w_0 .. w_{T-2}: what the network reads to predict w_0 .. w_{T-1}. (B, T)"""
        bos = torch.full_like(tokens[:, :1], self.bos)
        return torch.cat([bos, tokens[:, :-1]], dim=1)

    def logits(self, tokens: Tensor) -> Tensor:
        """Teacher forcing: logits (B, T, V) of p(w_t | BOS, w_<t) for tokens (B, T)."""
        inputs = self._inputs(tokens)
        bptt = self.config.bptt
        if isinstance(self.network, Transformer) or bptt is None or bptt >= inputs.shape[1]:
            return self.network(inputs)[0]
        pieces, state = [], None
        for start in range(0, inputs.shape[1], bptt):  # truncated back-propagation through time
            logits, state = self.network(inputs[:, start : start + bptt], state)
            pieces.append(logits)
            state = Recurrent.detach(state)
        return torch.cat(pieces, dim=1)

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        tokens = batch["tokens"]  # (B, L + 1)
        nats = F.cross_entropy(self.logits(tokens).float().transpose(1, 2), tokens)  # mean over B (L + 1) tokens
        return {"total": nats, "bits_per_char": nats.detach() / math.log(2)}

    @torch.no_grad()
    def nll(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """Exact -log p(window) in nats per window (B,), over its L + 1 tokens; nothing is sampled."""
        tokens = batch["tokens"]  # (B, L + 1)
        nats = F.cross_entropy(self.logits(tokens).float().transpose(1, 2), tokens, reduction="none")  # (B, L + 1)
        return nats.sum(1)

    # ------------------------------------------------------------------------- decoding

    def start(self, n: int) -> tuple[Tensor, State]:
        """Logits (n, V) of the first token after BOS, and the state after it."""
        bos = torch.full((n,), self.bos, dtype=torch.long, device=self.device)
        return self.network.step(bos, (None, None) if isinstance(self.network, Transformer) else None)

    def _prompt(self, prompt: str | Tensor | None, n: int) -> Tensor:
        """The prompt as tokens (n, P) (P = 0 without one)."""
        if prompt is None:
            return torch.zeros(n, 0, dtype=torch.long, device=self.device)
        if isinstance(prompt, str):
            from genzoo.data.text import encode

            prompt = encode(prompt, self.info)
        prompt = torch.as_tensor(prompt, dtype=torch.long, device=self.device)
        if prompt.numel() and (prompt.min() < 0 or prompt.max() >= self.vocab):
            raise GenzooError(f"prompt tokens must be in [0, {self.vocab - 1}]; encode the prompt with this model's vocabulary.")
        return prompt.expand(n, -1) if prompt.dim() == 1 else prompt

    def _check(self, temperature: float, top_k: int | None, length: int) -> None:
        if not temperature > 0:
            raise GenzooError(f"the temperature must be above 0 (got {temperature}); use beam=1 (--beam 1) for greedy decoding.")
        if top_k is not None and top_k < 1:
            raise GenzooError(f"top-k must be at least 1 (got {top_k}); leave it unset to sample from every token.")
        if length < 0:
            raise GenzooError(f"the length must be 0 or more tokens (got {length}).")

    def _draw(self, logits: Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> Tensor:
        """A token (B,) from logits (B, V) at `temperature`, among the top_k most likely when given."""
        logits = logits.float() / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            threshold = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1): the k-th largest
            logits = logits.masked_fill(logits < threshold, -math.inf)
        return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[:, 0]

    def _feed(self, tokens: Tensor, logits: Tensor, state: State) -> tuple[Tensor, State]:
        """Feed given tokens (B, T) one at a time; the logits and state after the last."""
        for t in range(tokens.shape[1]):
            logits, state = self.network.step(tokens[:, t], state)
        return logits, state

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
                 length: int | None = None, temperature: float | None = None, top_k: int | None = None,
                 prompt: str | Tensor | None = None, beam: int | None = None) -> Tensor:
        """n texts (n, P + length) int64: the prompt's P tokens, then `length` more (default L) sampled at
        `temperature` (from the top_k most likely), or the n best of a beam search with `beam` beams."""
        if labels is not None:
            raise GenzooError("a char-lm model is not conditioned on labels; drop them (use a prompt instead).")
        length = self.length if length is None else length
        temperature = self.config.temperature if temperature is None else temperature
        top_k = self.config.top_k if top_k is None else top_k
        self._check(temperature, top_k, length)
        if beam is not None:
            return self.beam_search(n, beam, length, prompt)
        given = self._prompt(prompt, n)  # (n, P)
        drawn = []
        with sequential_cpu(self.device):  # many tiny steps: one thread is fastest (genzoo.nn.decoding)
            logits, state = self._feed(given, *self.start(n))
            for _ in range(length):
                tokens = self._draw(logits, temperature, top_k, generator)  # (n,)
                drawn.append(tokens)
                logits, state = self.network.step(tokens, state)
        return torch.cat([given, *[t[:, None] for t in drawn]], dim=1)

    @torch.no_grad()
    def beam_search(self, n: int, beams: int, length: int, prompt: str | Tensor | None = None) -> Tensor:
        """The n most likely of the `beams` sequences exact beam search keeps: (n, P + length), best first."""
        if beams < 1 or n > beams:
            raise GenzooError(f"beam search returns its best sequences: give at least as many beams as sequences "
                              f"(beam={beams}, n={n}).")
        given = self._prompt(prompt, 1)  # (1, P): one prompt for every beam
        sequences = given.new_zeros(1, 0)  # (b, t)
        scores = torch.zeros(1, device=self.device)  # (b,) total log-probabilities
        with sequential_cpu(self.device):
            logits, state = self._feed(given, *self.start(1))
            for _ in range(length):
                totals = scores[:, None] + torch.log_softmax(logits.float(), dim=-1)  # (b, V)
                scores, flat = totals.flatten().topk(min(beams, totals.numel()))  # the best one-token extensions
                parent, tokens = flat // self.vocab, flat % self.vocab  # (b',) each
                sequences = torch.cat([sequences[parent], tokens[:, None]], dim=1)
                logits, state = self.network.step(tokens, self.network.select(state, parent))
        if len(sequences) < n:  # length 0, or fewer sequences than asked exist
            raise GenzooError(f"only {len(sequences)} distinct sequences of length {length} exist; ask for fewer.")
        return torch.cat([given.expand(n, -1), sequences[:n]], dim=1)

    @torch.no_grad()
    def complete(self, x: Tensor, mask: Tensor, generator: torch.Generator | None = None,
                 temperature: float | None = None, top_k: int | None = None) -> Tensor:
        """Token windows x (B, T) with the tokens where `mask` is true kept (the prompt part) and the others
        sampled left to right, each given every token before it."""
        if mask.shape != x.shape:
            raise GenzooError(f"the mask has shape {tuple(mask.shape)} but the tokens {tuple(x.shape)}; give one of each size.")
        temperature = self.config.temperature if temperature is None else temperature
        top_k = self.config.top_k if top_k is None else top_k
        self._check(temperature, top_k, 0)
        x, mask = x.to(self.device).clone(), mask.to(self.device).bool()
        with sequential_cpu(self.device):
            logits, state = self.start(len(x))
            for t in range(x.shape[1]):
                if not mask[:, t].all():
                    x[:, t] = torch.where(mask[:, t], x[:, t], self._draw(logits, temperature, top_k, generator))
                if t + 1 < x.shape[1]:
                    logits, state = self.network.step(x[:, t], state)
        return x

    @torch.no_grad()
    def preview(self, batch: dict[str, Tensor], n: int, seed: int = 0) -> list[str]:
        """n texts of L characters sampled at the default temperature."""
        from genzoo.data.text import decode

        generator = torch.Generator(device=self.device).manual_seed(seed)
        return decode(self.generate(n, generator=generator), self.info)
