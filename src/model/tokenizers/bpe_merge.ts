/**
 * The BPE merge loop shared by the LLaMA (SentencePiece) and CLIP tokenizers: repeatedly merge the adjacent pair
 * with the best (lowest) rank, leftmost first on ties, until no adjacent pair has a rank.
 *
 * This is SentencePiece's `bpe_model.cc` agenda and HF tokenizers' `Word::merge_all`: a priority queue of candidate
 * pairs over a linked list of symbols, O(n log n). A LLaMA prompt has no pre-tokenizer, so the whole text (a
 * VideoMME subtitle block is thousands of characters) is one sequence; the quadratic "scan all pairs" loop of the
 * textbook BPE would be too slow there.
 */

/** Lower merges first; `undefined` means the pair never merges. */
export type PairRank = (left: string, right: string) => number | undefined;

interface Candidate {
  rank: number;
  left: number; // node index; also the tie-break (nodes are numbered left to right)
  right: number;
  leftVersion: number;
  rightVersion: number;
}

export function mergeSymbols(symbols: readonly string[], rank: PairRank): string[] {
  const n = symbols.length;
  if (n < 2) return symbols.slice();
  const piece = symbols.slice();
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  const version = new Int32Array(n); // bumped when a node's piece changes or the node dies
  const alive = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  const heap = new CandidateHeap();
  const consider = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const r = rank(piece[left], piece[right]);
    if (r === undefined) return;
    heap.push({ rank: r, left, right, leftVersion: version[left], rightVersion: version[right] });
  };
  for (let i = 0; i + 1 < n; i++) consider(i, i + 1);

  for (let top = heap.pop(); top; top = heap.pop()) {
    const { left, right } = top;
    if (!alive[left] || !alive[right] || next[left] !== right) continue;
    if (version[left] !== top.leftVersion || version[right] !== top.rightVersion) continue;
    piece[left] += piece[right];
    version[left]++;
    alive[right] = 0;
    version[right]++;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    consider(prev[left], left);
    consider(left, next[left]);
  }

  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(piece[i]);
  return out;
}

/** A binary min-heap ordered by (rank, left position). */
class CandidateHeap {
  private items: Candidate[] = [];

  push(item: Candidate): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): Candidate | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < items.length && before(items[l], items[best])) best = l;
        if (r < items.length && before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}

function before(a: Candidate, b: Candidate): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.left < b.left);
}
