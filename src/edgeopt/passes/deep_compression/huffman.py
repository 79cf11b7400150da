"""Canonical Huffman coding of small-alphabet symbol streams (codebook indices, index gaps).

Deep Compression's third stage (Han, Mao, Dally, ICLR 2016, section 4) Huffman-codes the
weight-sharing indices and the relative positions of the non-zero weights, whose
distributions are far from uniform. The code lengths come from Huffman's algorithm
(a ``heapq`` of subtree weights); the codes themselves are *canonical* (DEFLATE,
RFC 1951 section 3.2.2): codes of one length are consecutive integers in symbol order
and shorter codes come first, so a table of code lengths (one byte per symbol) is all a
decoder needs.

Bit order: codes are written most significant bit first into a big-endian bit stream
(``np.packbits`` order); the last byte is zero-padded.

Decoding is vectorised: for *every* bit position the module reads the next
``max_len`` bits as one integer (a window), finds the code length by comparing with the
canonical left-justified limits, and the symbol by offset. Following the chain
``position -> position + length`` from bit 0 then picks the real code starts; only that
walk is a Python loop (about 0.1 us per symbol). Positions are processed in chunks of
4 Mi bits so memory stays bounded on large layers.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from ...errors import EdgeoptError

#: Longest code allowed. 57 bits + a shift of up to 7 fit a 64-bit window; 32 keeps the
#: windows small. Frequencies are flattened until the code fits (see code_lengths).
MAX_CODE_LENGTH = 32


class HuffmanError(EdgeoptError):
    """A Huffman bit stream or code table is inconsistent (corrupt or truncated data)."""


def code_lengths(counts: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code lengths (bits) for symbols with the given occurrence counts.

    Huffman's algorithm (Huffman 1952) with a binary heap: repeatedly merge the two
    lightest subtrees; a symbol's length is its depth. Ties break on a running counter
    so the result is deterministic. A single used symbol gets length 1 (a code needs at
    least one bit). If the longest code exceeds ``max_length``, counts are halved (kept
    >= 1 for used symbols) and the tree rebuilt, as zlib-style coders do; this never
    triggers for streams under ~2 million symbols with max_length 32.

    Args:
        counts: (A,) non-negative integer counts, A = alphabet size.
        max_length: longest code allowed, bits (1..57).

    Returns:
        (A,) uint8 lengths; 0 for symbols with count 0.

    Raises:
        ValueError: negative counts or max_length too small for the alphabet.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("counts must be a 1-D array of non-negative integers")
    used = np.flatnonzero(counts)
    if len(used) > (1 << max_length):
        raise ValueError(f"{len(used)} symbols cannot have codes of at most {max_length} bits")
    lengths = np.zeros(len(counts), dtype=np.uint8)
    if len(used) == 0:
        return lengths
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    weights = counts[used]
    while True:
        depth = _tree_depths(weights)
        if depth.max() <= max_length:
            lengths[used] = depth
            return lengths
        weights = np.maximum(weights // 2, 1)


def _tree_depths(weights: np.ndarray) -> np.ndarray:
    """Depth of each leaf in a Huffman tree over ``weights`` (all > 0, len >= 2)."""
    n = len(weights)
    # Heap items: (weight, tie-break order, node id); nodes >= n are internal.
    heap = [(int(w), i, i) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    parent = np.zeros(2 * n - 1, dtype=np.int64)
    next_id = n
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        parent[a] = parent[b] = next_id
        heapq.heappush(heap, (w1 + w2, next_id, next_id))
        next_id += 1
    root = next_id - 1
    depth = np.zeros(2 * n - 1, dtype=np.int64)
    # Internal nodes are created in increasing id order with parents after children, so
    # walking ids downward from the root visits every parent before its children.
    for node in range(root - 1, -1, -1):
        depth[node] = depth[parent[node]] + 1
    return depth[:n]


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical codes for the given code lengths (RFC 1951 section 3.2.2).

    Args:
        lengths: (A,) code lengths in bits, 0 = symbol unused.

    Returns:
        (A,) uint64 code values (the low ``lengths[s]`` bits of ``codes[s]``); 0 for
        unused symbols.

    Raises:
        HuffmanError: the lengths over-subscribe the code space (Kraft sum > 1).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    _check_kraft(lengths)
    codes = np.zeros(len(lengths), dtype=np.uint64)
    code = 0
    prev_len = 0
    # Sorting by (length, symbol) and incrementing, shifting left when the length grows,
    # is exactly DEFLATE's bl_count/next_code construction.
    for s in np.lexsort((np.arange(len(lengths)), lengths)):
        n = int(lengths[s])
        if n == 0:
            continue
        code <<= n - prev_len
        codes[s] = code
        code += 1
        prev_len = n
    return codes


def _check_kraft(lengths: np.ndarray) -> None:
    if (lengths < 0).any() or (lengths > MAX_CODE_LENGTH).any():
        raise HuffmanError(
            f"Huffman code lengths must be in 0..{MAX_CODE_LENGTH}: the table is corrupt; "
            f"re-create the archive"
        )
    used = lengths[lengths > 0]
    if used.size and int(np.sum(np.left_shift(1, MAX_CODE_LENGTH - used).astype(np.uint64))) > (
            1 << MAX_CODE_LENGTH):
        raise HuffmanError("Huffman code lengths over-subscribe the code space (Kraft sum > 1): "
                           "the table is corrupt; re-create the archive")


@dataclass(frozen=True)
class HuffmanStream:
    """One Huffman-coded stream.

    Attributes:
        lengths: (A,) uint8 canonical code lengths (the table a decoder needs; A bytes).
        data: the packed bit stream, MSB first, zero-padded to whole bytes.
        nbits: bits used in ``data`` (the rest of the last byte is padding).
        count: number of symbols coded.
    """

    lengths: np.ndarray
    data: bytes
    nbits: int
    count: int

    @property
    def table_bytes(self) -> int:
        """Bytes of the code-length table (one uint8 per alphabet symbol)."""
        return int(self.lengths.size)


def encode(symbols: np.ndarray, alphabet_size: int) -> HuffmanStream:
    """Huffman-code a stream of integer symbols in ``[0, alphabet_size)``.

    Args:
        symbols: (n,) non-negative integers < alphabet_size (any integer dtype).
        alphabet_size: A, at most 2**16 (table is one byte per symbol).

    Returns:
        a HuffmanStream; ``decode(stream)`` returns ``symbols`` exactly.

    Raises:
        ValueError: a symbol is outside the alphabet.
    """
    symbols = np.asarray(symbols).ravel().astype(np.int64)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet_size):
        raise ValueError(f"symbols must lie in [0, {alphabet_size})")
    lengths = code_lengths(np.bincount(symbols, minlength=alphabet_size))
    codes = canonical_codes(lengths)
    sym_len = lengths[symbols].astype(np.int64)
    total = int(sym_len.sum())
    if total == 0:
        return HuffmanStream(lengths, b"", 0, int(symbols.size))
    # Expand every code into its bits: bit j of a code of length L is (code >> (L-1-j)) & 1.
    starts = np.cumsum(sym_len) - sym_len
    rep_code = np.repeat(codes[symbols], sym_len)
    rep_len = np.repeat(sym_len, sym_len)
    j = np.arange(total, dtype=np.int64) - np.repeat(starts, sym_len)
    bits = (rep_code >> (rep_len - 1 - j).astype(np.uint64)) & np.uint64(1)
    return HuffmanStream(lengths, np.packbits(bits.astype(np.uint8)).tobytes(), total,
                         int(symbols.size))


def decode(stream: HuffmanStream) -> np.ndarray:
    """Decode a HuffmanStream back to its symbols.

    Returns:
        (count,) int64 symbols.

    Raises:
        HuffmanError: the stream is shorter than ``nbits``, holds a bit pattern that is
            no code, or does not end after exactly ``count`` symbols at ``nbits``.
    """
    lengths = np.asarray(stream.lengths, dtype=np.int64)
    n, nbits = int(stream.count), int(stream.nbits)
    if n == 0:
        if nbits:
            raise HuffmanError("an empty Huffman stream claims bits: the archive is corrupt; "
                               "re-create it")
        return np.zeros(0, dtype=np.int64)
    if len(stream.data) * 8 < nbits or nbits < n:
        raise HuffmanError(f"Huffman stream holds {len(stream.data) * 8} bits, needs {nbits} "
                           f"for {n} symbols: the archive is truncated; re-create it")
    if not (lengths > 0).any():
        raise HuffmanError("Huffman table has no codes for a non-empty stream: the archive is "
                           "corrupt; re-create it")
    _check_kraft(lengths)  # a corrupt table could otherwise decode to garbage
    max_len = int(lengths.max())
    # Symbols sorted canonically and, per length l, the first code and its offset there.
    order = np.lexsort((np.arange(len(lengths)), lengths))
    order = order[lengths[order] > 0]
    count_l = np.bincount(lengths[order], minlength=max_len + 1)
    count_l[0] = 0
    first_code = np.zeros(max_len + 1, dtype=np.int64)
    offset = np.zeros(max_len + 1, dtype=np.int64)
    code = 0
    for l in range(1, max_len + 1):  # DEFLATE's next_code recurrence
        code = (code + int(count_l[l - 1])) << 1
        first_code[l] = code
        offset[l] = offset[l - 1] + count_l[l - 1]
    # Left-justified exclusive upper limit of the codes of length <= l, for l = 1..max_len:
    # canonical codes make these limits increase with l.
    limit = np.array([(int(first_code[l]) + int(count_l[l])) << (max_len - l)
                      for l in range(1, max_len + 1)], dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    done, pos = 0, 0
    # Chunks of bit positions bound the memory of the per-position arrays (8 bytes each).
    for chunk in range(0, nbits, _CHUNK_BITS):
        stop = min(chunk + _CHUNK_BITS, nbits)
        if pos >= stop:
            continue
        window = _windows(stream.data, chunk, stop, nbits, max_len)
        length_at = np.searchsorted(limit, window, side="right") + 1  # code length at each bit
        bad = length_at > max_len
        length_at = np.minimum(length_at, max_len)
        rank = (window >> (max_len - length_at)) - first_code[length_at] + offset[length_at]
        symbol_at = order[np.clip(rank, 0, len(order) - 1)]
        # Walk the chain of code starts inside this chunk.
        step = length_at.tolist()
        starts = []
        while pos < stop and done + len(starts) < n:
            starts.append(pos - chunk)
            pos += step[pos - chunk]
        idx = np.asarray(starts, dtype=np.int64)
        if bad[idx].any():
            break
        out[done:done + idx.size] = symbol_at[idx]
        done += idx.size
    if done != n or pos != nbits:
        raise HuffmanError(f"Huffman stream does not decode to {n} symbols in {nbits} bits: "
                           f"the archive is corrupt; re-create it")
    return out


_CHUNK_BITS = 1 << 22


def _windows(data: bytes, start: int, stop: int, nbits: int, width: int) -> np.ndarray:
    """For each bit position start <= p < stop, the ``width`` bits from p as an integer.

    Bits at or past ``nbits`` read as zero. ``width`` <= 57 so 8 bytes cover a window.
    """
    first, last = start >> 3, min((stop + 7) >> 3, (nbits + 7) >> 3)
    buf = np.frombuffer(data, dtype=np.uint8)[first:last + 8]
    padded = np.zeros(last - first + 8, dtype=np.uint64)
    padded[: len(buf)] = buf
    words = np.zeros(last - first, dtype=np.uint64)  # 64-bit big-endian word at each byte
    for k in range(8):
        words |= padded[k: k + len(words)] << np.uint64(56 - 8 * k)
    pos = np.arange(start, stop, dtype=np.int64)
    w = words[(pos >> 3) - first] << (pos & 7).astype(np.uint64)
    w = w >> np.uint64(64 - width)
    # Padding bits after nbits must not change a decode, whatever they hold.
    tail = nbits - pos
    short = tail < width
    if short.any():
        keep = np.left_shift(np.uint64(1), tail[short].astype(np.uint64)) - np.uint64(1)
        w[short] &= keep << (width - tail[short]).astype(np.uint64)
    return w.astype(np.int64)
