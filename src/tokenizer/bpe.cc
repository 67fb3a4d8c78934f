#include "tokenizer/bpe.h"

#include <algorithm>
#include <functional>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tokenlora::tokenizer_internal {

// --- BpeMerges ----------------------------------------------------------------

void BpeMerges::Add(int32_t left, int32_t right, int32_t result, int32_t rank) {
  map_[Key(left, right)] = Entry{rank, result};
}

void BpeMerges::Apply(std::vector<int32_t>* symbols) const {
  const int n = static_cast<int>(symbols->size());
  if (n < 2) return;
  struct Symbol {
    int32_t id;
    int prev;
    int next;
    bool alive;
  };
  std::vector<Symbol> sym(n);
  for (int i = 0; i < n; ++i) sym[i] = {(*symbols)[i], i - 1, i + 1 < n ? i + 1 : -1, true};

  // A candidate merge of the symbol at `pos` with its successor. Entries go
  // stale when either side changes; they are checked when popped.
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t result;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push = [&](int pos) {
    if (const Entry* e = Find(sym[pos].id, sym[sym[pos].next].id)) queue.push({e->rank, pos, e->result});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    // Same staleness test as tokenizers: the pair here must still produce this result.
    const Entry* current = Find(left.id, right.id);
    if (current == nullptr || current->result != top.result) continue;
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    if (left.next >= 0) push(top.pos);
  }

  symbols->clear();
  for (int i = 0; i >= 0; i = sym[i].next) symbols->push_back(sym[i].id);
}

// --- SpmMerger ----------------------------------------------------------------

SpmMerger::SpmMerger(TokenMap pieces, std::vector<float> scores, std::vector<bool> unused,
                     std::vector<int32_t> byte_ids, int32_t unk_id)
    : pieces_(std::move(pieces)),
      scores_(std::move(scores)),
      unused_(std::move(unused)),
      byte_ids_(std::move(byte_ids)),
      unk_id_(unk_id) {
  TL_CHECK(byte_ids_.size() == 256);
}

void SpmMerger::Encode(std::string_view text, std::vector<int32_t>* out) const {
  if (text.empty()) return;
  // Symbols start as single characters (an invalid byte is one of its own).
  struct Symbol {
    size_t begin;
    size_t size;  // 0 once merged into its left neighbour
    int prev;
    int next;
  };
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = CharLength(text, pos);
    const int index = static_cast<int>(sym.size());
    sym.push_back({pos, n, index - 1, -1});
    if (index > 0) sym[index - 1].next = index;
    pos += n;
  }

  struct Bigram {
    float score;
    int left;
    int right;
    size_t size;
    // Highest score first; on ties the leftmost.
    bool operator<(const Bigram& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::priority_queue<Bigram> agenda;
  // Pieces that came from a merge, to split unused pieces back (sentencepiece's rev_merge).
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> formed_from;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string_view piece = text.substr(sym[left].begin, sym[left].size + sym[right].size);
    const auto it = pieces_.find(piece);
    if (it == pieces_.end()) return;
    agenda.push({scores_[it->second], left, right, piece.size()});
    if (unused_[it->second]) {
      formed_from[piece] = {text.substr(sym[left].begin, sym[left].size),
                            text.substr(sym[right].begin, sym[right].size)};
    }
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!agenda.empty()) {
    const Bigram top = agenda.top();
    agenda.pop();
    Symbol& left = sym[top.left];
    Symbol& right = sym[top.right];
    // Stale: one side was merged away or grew since this entry was queued.
    if (left.size == 0 || right.size == 0 || left.size + right.size != top.size) continue;
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.left;
    try_add(left.prev, top.left);
    try_add(top.left, left.next);
  }

  // Each remaining symbol is a piece, an unused piece to split back, or a
  // character outside the vocabulary that falls back to bytes (or <unk>).
  const std::function<void(std::string_view)> emit = [&](std::string_view piece) {
    const auto it = pieces_.find(piece);
    if (it != pieces_.end()) {
      if (unused_[it->second]) {
        const auto split = formed_from.find(piece);
        if (split != formed_from.end()) {
          emit(split->second.first);
          emit(split->second.second);
          return;
        }
      }
      out->push_back(it->second);
      return;
    }
    const bool have_bytes = std::all_of(piece.begin(), piece.end(),
                                        [&](char c) { return byte_ids_[static_cast<uint8_t>(c)] >= 0; });
    if (have_bytes) {
      for (const char c : piece) out->push_back(byte_ids_[static_cast<uint8_t>(c)]);
    } else if (unk_id_ >= 0) {
      out->push_back(unk_id_);
    }
  };
  for (int i = 0; i >= 0; i = sym[i].next) emit(text.substr(sym[i].begin, sym[i].size));
}

}  // namespace tokenlora::tokenizer_internal
