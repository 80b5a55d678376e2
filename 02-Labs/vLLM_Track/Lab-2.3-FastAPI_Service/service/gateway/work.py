"""CPU-bound work for Lab 2.3 · 02: counting primes by trial division, in pure Python.

It stands for any CPU-bound step a service might run per request (pre- or post-processing written in
Python, a parser, a scorer). Being pure Python it holds the GIL while it runs, which is what makes the
difference between the three ways of calling it (in the event loop, in a thread, in another process).
"""
from __future__ import annotations


def count_primes(start: int, stop: int) -> int:
    """The number of primes p with start <= p < stop."""
    count = 0
    for candidate in range(max(start, 2), stop):
        if candidate < 4:
            count += 1
            continue
        if candidate % 2 == 0:
            continue
        divisor, prime = 3, True
        while divisor * divisor <= candidate:
            if candidate % divisor == 0:
                prime = False
                break
            divisor += 2
        count += prime
    return count


def count_primes_where(start: int, stop: int) -> tuple[int, int]:
    """`count_primes`, and the id of the process that computed it (to show where a pool ran it)."""
    import os
    return count_primes(start, stop), os.getpid()


def chunk_bounds(n: int, chunks: int) -> list[tuple[int, int]]:
    """[0, n) split into `chunks` consecutive ranges of (nearly) equal length."""
    chunks = max(1, min(chunks, n))
    edges = [round(i * n / chunks) for i in range(chunks + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))
