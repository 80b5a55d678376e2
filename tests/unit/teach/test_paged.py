"""Unit and property tests of llmserve.teach.paged, the teaching paged KV cache."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from llmserve.teach.paged import (
    OutOfBlocks,
    PagedKVCache,
    full_block_prefix_hits,
    paged_waste,
    shareable_prefix_tokens,
    static_reservation_waste,
)

# --- vLLM V1's sharing rule: full blocks only ----------------------------------------------


def test_shareable_prefix_is_whole_blocks_short_of_the_last_token():
    assert shareable_prefix_tokens(141, 128) == 128
    assert shareable_prefix_tokens(256, 128) == 128      # the last token is always computed
    assert shareable_prefix_tokens(257, 128) == 256
    assert shareable_prefix_tokens(50, 128) == 0
    assert shareable_prefix_tokens(0, 128) == 0
    with pytest.raises(ValueError):
        shareable_prefix_tokens(10, 0)


def test_full_block_prefix_hits_replays_the_hash_lookup():
    # What vLLM 0.32 reported for n=2 on three prompts (141, 281, 50 tokens, the 281-token one
    # starting with the 141-token one's first block): 512 cached tokens in all.
    a = list(range(141))
    b = list(range(128)) + [1000 + i for i in range(153)]
    c = list(range(2000, 2050))
    hits = full_block_prefix_hits([a, a, b, b, c, c], 128)
    assert hits == [0, 128, 128, 256, 0, 0] and sum(hits) == 512
    # a later block matches only if every block before it matched (the hash chains the prefix)
    d = [7] * 128 + list(range(128))
    assert full_block_prefix_hits([a, d], 128) == [0, 0]


@given(prompt=st.lists(st.integers(0, 50), min_size=1, max_size=40), block=st.integers(1, 6),
       tails=st.lists(st.lists(st.integers(0, 50), max_size=15), min_size=1, max_size=3))
def test_v1_style_fork_at_a_block_boundary_never_copies(prompt, block, tails):
    cache = PagedKVCache(num_blocks=64, block_size=block)
    cache.add_sequence("parent", prompt)
    shared = shareable_prefix_tokens(len(prompt), block)
    for i, tail in enumerate(tails):
        cache.fork("parent", i, num_tokens=shared)
        cache.append(i, prompt[shared:] + tail)
        assert cache.tokens(i) == prompt + tail
    cache.append("parent", [1, 2, 3])
    assert cache.stats().copies_on_write == 0
    assert cache.tokens("parent") == prompt + [1, 2, 3]


# --- examples -------------------------------------------------------------------------------


def test_allocates_blocks_only_when_the_last_one_is_full():
    cache = PagedKVCache(num_blocks=4, block_size=4)
    assert cache.add_sequence("a", [1, 2, 3]) == [0]
    cache.append("a", 4)
    assert cache.used_blocks == 1
    cache.append("a", 5)
    assert cache.used_blocks == 2 and cache.block_table("a") == [0, 1]
    assert cache.tokens("a") == [1, 2, 3, 4, 5]
    stats = cache.stats()
    assert stats.stored_tokens == 5 and stats.allocated_slots == 8
    assert stats.internal_fragmentation == pytest.approx(3 / 8)


def test_fork_shares_blocks_and_copy_on_write_keeps_views_apart():
    cache = PagedKVCache(num_blocks=8, block_size=4)
    cache.add_sequence("a", [1, 2, 3, 4, 5])
    assert cache.fork("a", "b") == cache.block_table("a")
    assert [cache.refcount(b) for b in cache.block_table("a")] == [2, 2]
    assert cache.used_blocks == 2  # nothing copied yet
    copies = cache.append("b", [6])
    assert len(copies) == 1 and copies[0][0] == cache.block_table("a")[1]
    assert cache.tokens("a") == [1, 2, 3, 4, 5] and cache.tokens("b") == [1, 2, 3, 4, 5, 6]
    assert cache.block_table("a")[0] == cache.block_table("b")[0]  # the full block stays shared
    cache.append("a", [7])  # "a" is now the only owner of its tail: written in place
    assert cache.tokens("a") == [1, 2, 3, 4, 5, 7] and cache.stats().copies_on_write == 1


def test_fork_of_a_prefix_inside_a_block():
    cache = PagedKVCache(num_blocks=8, block_size=4)
    cache.add_sequence("a", [1, 2, 3, 4, 5, 6])
    cache.fork("a", "b", num_tokens=5)
    assert cache.tokens("b") == [1, 2, 3, 4, 5]
    cache.free("a")  # "b" owns the block that still holds token 6 of "a"
    cache.append("b", [9])
    assert cache.tokens("b") == [1, 2, 3, 4, 5, 9]


def test_full_shared_block_is_not_copied():
    cache = PagedKVCache(num_blocks=4, block_size=2)
    cache.add_sequence("a", [1, 2])
    cache.fork("a", "b")
    assert cache.append("b", [3]) == []  # a new block, no copy: the shared block is full
    assert cache.used_blocks == 2


def test_out_of_blocks_is_clear_and_changes_nothing():
    cache = PagedKVCache(num_blocks=2, block_size=4)
    cache.add_sequence("a", [1, 2, 3, 4, 5])
    before = (cache.block_table("a"), cache.tokens("a"), cache.free_blocks)
    with pytest.raises(OutOfBlocks, match="needs 1 free block"):
        cache.append("a", [6, 7, 8, 9])
    assert (cache.block_table("a"), cache.tokens("a"), cache.free_blocks) == before
    with pytest.raises(OutOfBlocks):
        cache.add_sequence("b", [1])
    assert "b" not in cache


def test_free_returns_blocks_and_errors():
    cache = PagedKVCache(num_blocks=3, block_size=2)
    cache.add_sequence("a", [1, 2, 3])
    cache.fork("a", "b")
    assert cache.free("a") == 0  # still referenced by "b"
    assert cache.free("b") == 2
    assert cache.free_blocks == 3
    with pytest.raises(KeyError):
        cache.free("a")
    with pytest.raises(ValueError):
        PagedKVCache(num_blocks=0, block_size=4)


def test_waste_helpers():
    assert static_reservation_waste([10, 30], 40) == pytest.approx(0.5)
    assert paged_waste([10, 30], 16) == pytest.approx(1 - 40 / 48)
    with pytest.raises(ValueError):
        static_reservation_waste([50], 40)


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=50), st.sampled_from([1, 8, 16, 128]))
def test_paged_waste_is_below_one_block_per_request(lengths, block_size):
    wasted_slots = paged_waste(lengths, block_size) * sum(-(-n // block_size) * block_size for n in lengths)
    assert wasted_slots < len(lengths) * block_size + 1e-6


# --- properties: a random sequence of operations never breaks the invariants ---------------


class PagedCacheMachine(RuleBasedStateMachine):
    """Random add / append / fork / free against a model of what each sequence must read back."""

    def __init__(self):
        super().__init__()
        self.cache = PagedKVCache(num_blocks=12, block_size=3)
        self.expected: dict[int, list[int]] = {}
        self.next_id = 0
        self.next_token = 1000

    def _fresh_tokens(self, n):
        tokens = list(range(self.next_token, self.next_token + n))
        self.next_token += n
        return tokens

    @rule(n=st.integers(0, 10))
    def add(self, n):
        tokens = self._fresh_tokens(n)
        seq = self.next_id
        self.next_id += 1
        needed = self.cache.blocks_needed(n)
        if needed > self.cache.free_blocks:
            with pytest.raises(OutOfBlocks):
                self.cache.add_sequence(seq, tokens)
        else:
            self.cache.add_sequence(seq, tokens)
            self.expected[seq] = tokens

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), n=st.integers(1, 7))
    def append(self, data, n):
        seq = data.draw(st.sampled_from(sorted(self.expected)))
        tokens = self._fresh_tokens(n)
        free_before, views_before = self.cache.free_blocks, self._views()
        try:
            self.cache.append(seq, tokens)
        except OutOfBlocks:
            assert self.cache.free_blocks == free_before and self._views() == views_before
            return
        self.expected[seq] = self.expected[seq] + tokens

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def fork(self, data):
        parent = data.draw(st.sampled_from(sorted(self.expected)))
        keep = data.draw(st.integers(0, len(self.expected[parent])))
        child = self.next_id
        self.next_id += 1
        used_before = self.cache.used_blocks
        self.cache.fork(parent, child, keep)
        assert self.cache.used_blocks == used_before  # sharing allocates nothing
        self.expected[child] = self.expected[parent][:keep]

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def free(self, data):
        seq = data.draw(st.sampled_from(sorted(self.expected)))
        self.cache.free(seq)
        del self.expected[seq]

    def _views(self):
        return {seq: self.cache.tokens(seq) for seq in self.cache.sequences()}

    @invariant()
    def every_sequence_reads_back_its_own_tokens(self):
        # copy-on-write never lets one sequence's write show up in another's view
        assert self._views() == self.expected

    @invariant()
    def tokens_fit_their_blocks(self):
        for seq in self.cache.sequences():
            table, n = self.cache.block_table(seq), self.cache.num_tokens(seq)
            assert len(table) == self.cache.blocks_needed(n)

    @invariant()
    def refcounts_match_block_tables(self):
        counts = [0] * self.cache.num_blocks
        for seq in self.cache.sequences():
            for block in self.cache.block_table(seq):
                counts[block] += 1
        assert counts == [self.cache.refcount(b) for b in range(self.cache.num_blocks)]
        # no leak: a block is free exactly when nobody references it; capacity is never exceeded
        assert self.cache.free_blocks == counts.count(0)
        assert self.cache.used_blocks <= self.cache.num_blocks

    @invariant()
    def stats_are_consistent(self):
        stats = self.cache.stats()
        assert stats.logical_tokens == sum(len(t) for t in self.expected.values())
        assert stats.stored_tokens <= stats.allocated_slots
        assert stats.stored_tokens <= stats.logical_tokens or stats.num_sequences == 0

    def teardown(self):
        for seq in list(self.cache.sequences()):
            self.cache.free(seq)
        assert self.cache.free_blocks == self.cache.num_blocks  # nothing leaked after freeing all


TestPagedCacheMachine = PagedCacheMachine.TestCase
TestPagedCacheMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
