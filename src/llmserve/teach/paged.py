"""A teaching implementation of a paged KV cache (PagedAttention's block manager).

Kwon et al., "Efficient Memory Management for Large Language Model Serving with
PagedAttention" (SOSP 2023); theory 2.1, section 4.

The cache is a pool of `num_blocks` physical blocks of `block_size` token slots. Each
sequence owns a *block table*: logical block i of the sequence -> a physical block id.
Blocks are allocated only when the last one is full, freed when the sequence ends, and
can be *shared* by several sequences with a reference count.

Two ways of sharing, both expressible here:

- **Full blocks only** (vLLM's V1 engine, what the course runs): `fork` at a block boundary,
  `shareable_prefix_tokens(len, block_size)` tokens, and append the rest to the child. The
  children of an `n > 1` request and requests with a common prefix share full blocks found by
  hash in the prefix cache (`full_block_prefix_hits` replays that lookup); the partly filled
  last block is private, so nothing is ever copied.
- **Partial blocks with copy-on-write** (the PagedAttention paper and vLLM's earlier V0
  engine): `fork` anywhere; a sequence that writes into a block it shares gets a copy first,
  so no sequence ever sees another one's tokens.

A real engine stores key and value vectors in each slot; here a slot stores the token id,
which is enough to check that every sequence reads back exactly its own tokens.

    cache = PagedKVCache(num_blocks=8, block_size=4)
    cache.add_sequence("a", [1, 2, 3, 4, 5])      # 2 blocks, the second one holds 1 token
    cache.fork("a", "b")                          # "b" shares both blocks (refcount 2)
    cache.append("b", [6])                        # "b" copies the shared partial block first
    cache.tokens("a"), cache.tokens("b")          # [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]
    cache.free("a"); cache.free("b")              # every block back in the pool
"""
from __future__ import annotations

import numbers
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field


class OutOfBlocks(MemoryError):
    """The pool has fewer free blocks than an operation needs; nothing was changed."""


@dataclass
class _SequenceState:
    block_table: list[int] = field(default_factory=list)
    num_tokens: int = 0


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of the pool. Slots are token positions (block_size per block)."""
    num_blocks: int
    block_size: int
    used_blocks: int
    free_blocks: int
    num_sequences: int
    logical_tokens: int      # sum over sequences of their lengths (shared tokens counted per sequence)
    stored_tokens: int       # tokens physically stored (a shared block counts once)
    copies_on_write: int     # blocks copied so far because a sequence wrote into a shared block

    @property
    def allocated_slots(self) -> int:
        return self.used_blocks * self.block_size

    @property
    def internal_fragmentation(self) -> float:
        """Fraction of the slots of allocated blocks that hold no token (the unfilled block tails)."""
        return 0.0 if self.used_blocks == 0 else 1.0 - self.stored_tokens / self.allocated_slots

    @property
    def utilization(self) -> float:
        """Fraction of the whole pool's blocks in use."""
        return self.used_blocks / self.num_blocks


class PagedKVCache:
    """Block tables over a fixed pool of physical blocks, with reference counts and copy-on-write."""

    def __init__(self, num_blocks: int, block_size: int):
        for name, value in (("num_blocks", num_blocks), ("block_size", block_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        # Lowest ids first, like a fresh pool; a real engine's order does not matter.
        self._free: list[int] = list(range(num_blocks - 1, -1, -1))
        self._refcount = [0] * num_blocks
        self._slots: list[list[int]] = [[] for _ in range(num_blocks)]  # token ids written to each block
        self._seqs: dict[Hashable, _SequenceState] = {}
        self.copies_on_write = 0

    # ---------------------------------------------------------------- queries
    @property
    def free_blocks(self) -> int:
        return len(self._free)

    @property
    def used_blocks(self) -> int:
        return self.num_blocks - len(self._free)

    def __contains__(self, seq_id: Hashable) -> bool:
        return seq_id in self._seqs

    def sequences(self) -> list[Hashable]:
        return list(self._seqs)

    def block_table(self, seq_id: Hashable) -> list[int]:
        """Physical block ids of the sequence's logical blocks 0, 1, ... (a copy)."""
        return list(self._state(seq_id).block_table)

    def num_tokens(self, seq_id: Hashable) -> int:
        return self._state(seq_id).num_tokens

    def refcount(self, block: int) -> int:
        return self._refcount[block]

    def tokens(self, seq_id: Hashable) -> list[int]:
        """The sequence's tokens read back through its block table (what attention would gather)."""
        return self._read(self._state(seq_id))

    def stats(self) -> CacheStats:
        used = [b for b in range(self.num_blocks) if self._refcount[b] > 0]
        # Tokens a block holds for its sequences: the most any sequence referencing it uses.
        held: dict[int, int] = {}
        for state in self._seqs.values():
            for i, block in enumerate(state.block_table):
                in_block = min(self.block_size, state.num_tokens - i * self.block_size)
                held[block] = max(held.get(block, 0), in_block)
        return CacheStats(num_blocks=self.num_blocks, block_size=self.block_size,
                          used_blocks=len(used), free_blocks=self.free_blocks,
                          num_sequences=len(self._seqs),
                          logical_tokens=sum(s.num_tokens for s in self._seqs.values()),
                          stored_tokens=sum(held.values()),
                          copies_on_write=self.copies_on_write)

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def can_append(self, seq_id: Hashable, num_new_tokens: int) -> bool:
        return self._new_blocks_for_append(self._state(seq_id), num_new_tokens) <= self.free_blocks

    # ---------------------------------------------------------------- operations
    def add_sequence(self, seq_id: Hashable, tokens: Iterable[int] = ()) -> list[int]:
        """Register a sequence and store its prompt tokens; returns its block table."""
        if seq_id in self._seqs:
            raise KeyError(f"sequence {seq_id!r} already exists")
        tokens = [int(t) for t in tokens]
        needed = self.blocks_needed(len(tokens))
        self._require(needed, f"add sequence {seq_id!r} with {len(tokens)} tokens")
        state = _SequenceState()
        self._seqs[seq_id] = state
        self._write(state, tokens)
        return list(state.block_table)

    def append(self, seq_id: Hashable, tokens: int | Sequence[int]) -> list[tuple[int, int]]:
        """Append generated token(s) to a sequence.

        Returns the copy-on-write events as (source block, new block) pairs: a real engine
        copies those blocks' K/V before the attention kernel writes the new token.
        Atomic: raises OutOfBlocks and changes nothing when the pool is too small.
        """
        tokens = [int(tokens)] if isinstance(tokens, numbers.Integral) else [int(t) for t in tokens]
        state = self._state(seq_id)
        needed = self._new_blocks_for_append(state, len(tokens))
        self._require(needed, f"append {len(tokens)} token(s) to {seq_id!r}")
        return self._write(state, tokens)

    def fork(self, parent: Hashable, child: Hashable, num_tokens: int | None = None) -> list[int]:
        """Create `child` sharing the first `num_tokens` tokens (default: all) of `parent`.

        No block is copied: the child's block table points at the parent's blocks and their
        reference counts rise. With `num_tokens` a multiple of the block size (vLLM V1: full
        blocks only, see `shareable_prefix_tokens`) no later write ever needs a copy; forking
        inside a block shares that partial block, and the first write into it copies it
        (the paper's and vLLM V0's copy-on-write).
        """
        if child in self._seqs:
            raise KeyError(f"sequence {child!r} already exists")
        source = self._state(parent)
        num_tokens = source.num_tokens if num_tokens is None else num_tokens
        if not 0 <= num_tokens <= source.num_tokens:
            raise ValueError(f"num_tokens must lie in [0, {source.num_tokens}], got {num_tokens}")
        shared = source.block_table[:self.blocks_needed(num_tokens)]
        for block in shared:
            self._refcount[block] += 1
        self._seqs[child] = _SequenceState(block_table=list(shared), num_tokens=num_tokens)
        return list(shared)

    def free(self, seq_id: Hashable) -> int:
        """Drop a sequence; blocks nobody references any more go back to the pool. Returns their number."""
        state = self._seqs.pop(seq_id)
        released = 0
        for block in state.block_table:
            self._refcount[block] -= 1
            if self._refcount[block] == 0:
                self._slots[block] = []
                self._free.append(block)
                released += 1
        return released

    # ---------------------------------------------------------------- internals
    def _state(self, seq_id: Hashable) -> _SequenceState:
        try:
            return self._seqs[seq_id]
        except KeyError:
            raise KeyError(f"unknown sequence {seq_id!r}") from None

    def _require(self, needed: int, what: str) -> None:
        if needed > self.free_blocks:
            raise OutOfBlocks(f"cannot {what}: needs {needed} free block(s), {self.free_blocks} of "
                              f"{self.num_blocks} free (block size {self.block_size})")

    def _read(self, state: _SequenceState) -> list[int]:
        # A block shared with a longer sequence may hold more tokens than this one owns.
        out: list[int] = []
        remaining = state.num_tokens
        for block in state.block_table:
            take = min(remaining, self.block_size)
            out.extend(self._slots[block][:take])
            remaining -= take
        return out

    def _tail_is_shared(self, state: _SequenceState) -> bool:
        """True when the last block is referenced by another sequence too (writing needs a copy)."""
        return self._refcount[state.block_table[-1]] > 1

    def _new_blocks_for_append(self, state: _SequenceState, count: int) -> int:
        if count < 0:
            raise ValueError("cannot append a negative number of tokens")
        if count == 0:
            return 0
        total = self.blocks_needed(state.num_tokens + count) - len(state.block_table)
        room_in_tail = len(state.block_table) * self.block_size - state.num_tokens
        if room_in_tail > 0 and self._tail_is_shared(state):
            total += 1  # the shared partial tail must be copied first
        return total

    def _allocate(self) -> int:
        block = self._free.pop()
        assert self._refcount[block] == 0 and not self._slots[block]
        self._refcount[block] = 1
        return block

    def _write(self, state: _SequenceState, tokens: list[int]) -> list[tuple[int, int]]:
        copies: list[tuple[int, int]] = []
        position = 0
        while position < len(tokens):
            room = len(state.block_table) * self.block_size - state.num_tokens
            if room == 0:
                state.block_table.append(self._allocate())
                room = self.block_size
            elif self._tail_is_shared(state):
                # Copy-on-write: another sequence references the partial tail block; give this
                # sequence a private copy of its part of the block, then write into the copy.
                old = state.block_table[-1]
                new = self._allocate()
                self._slots[new] = self._slots[old][:self.block_size - room]
                self._refcount[old] -= 1
                state.block_table[-1] = new
                copies.append((old, new))
                self.copies_on_write += 1
            block = state.block_table[-1]
            # A private block may still hold tokens of a longer sequence it was shared with
            # (fork at a position inside the block, then that sequence ended): overwrite them.
            del self._slots[block][self.block_size - room:]
            chunk = tokens[position:position + room]
            self._slots[block].extend(chunk)
            state.num_tokens += len(chunk)
            position += len(chunk)
        return copies


def static_reservation_waste(used_tokens: Sequence[int], reserved_per_request: int) -> float:
    """Fraction of reserved slots that hold no token when every request reserves a fixed size."""
    if not used_tokens:
        raise ValueError("used_tokens must not be empty")
    if any(n > reserved_per_request for n in used_tokens):
        raise ValueError("a request used more tokens than it reserved")
    return 1.0 - sum(used_tokens) / (len(used_tokens) * reserved_per_request)


def paged_waste(used_tokens: Sequence[int], block_size: int) -> float:
    """Fraction of allocated slots that hold no token when each request gets whole blocks."""
    if not used_tokens:
        raise ValueError("used_tokens must not be empty")
    slots = sum(-(-n // block_size) * block_size for n in used_tokens)
    return 1.0 - sum(used_tokens) / slots


def shareable_prefix_tokens(num_tokens: int, block_size: int) -> int:
    """Tokens of a prompt that vLLM V1 can take from its prefix cache: whole blocks, at most num_tokens - 1.

    The last prompt token is always computed (its logits give the first output token), so a
    prompt of exactly k full blocks reuses k - 1 of them (`max_cache_hit_length = num_tokens - 1`
    in vllm/v1/core/kv_cache_manager.py, `get_computed_blocks`).
    """
    if num_tokens < 0 or block_size <= 0:
        raise ValueError("need num_tokens >= 0 and block_size > 0")
    return max(0, (num_tokens - 1) // block_size * block_size)


def full_block_prefix_hits(sequences: Iterable[Sequence[int]], block_size: int) -> list[int]:
    """Prefix-cache hits (tokens) of each sequence, in arrival order, under vLLM V1's rule.

    A full block is identified by its tokens and everything before it (vLLM hashes the block's
    tokens with its parent block's hash), so a sequence hits the longest run of leading full
    blocks that an earlier sequence already stored, capped by `shareable_prefix_tokens`. The
    `n` children of one request are `n` sequences with the same prompt. Assumes nothing was
    evicted (a cache large enough for the run); a preempted request that is recomputed would
    add hits of its own.
    """
    cached: set[tuple[int, ...]] = set()
    hits = []
    for tokens in sequences:
        tokens = [int(t) for t in tokens]
        limit = shareable_prefix_tokens(len(tokens), block_size)
        hit = 0
        while hit + block_size <= limit and tuple(tokens[:hit + block_size]) in cached:
            hit += block_size
        hits.append(hit)
        for end in range(block_size, len(tokens) + 1, block_size):  # its full blocks are cached now
            cached.add(tuple(tokens[:end]))
    return hits
