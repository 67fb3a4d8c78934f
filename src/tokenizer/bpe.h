// The two BPE merge procedures.
//  * BpeMerges: Hugging Face tokenizers' BPE. Merges are ranked (their order
//    in tokenizer.json / GGUF); the adjacent pair with the lowest rank merges
//    first, the leftmost on ties.
//  * SpmMerger: SentencePiece BPE (sentencepiece's bpe_model.cc, llama.cpp's
//    SPM tokenizer). Any adjacent pair whose concatenation is a piece may
//    merge; the piece with the highest score merges first, the leftmost on
//    ties. Used for GGUF "llama" vocabularies, which carry scores, not merges.
// Both use a priority queue over a linked list of symbols: O(n log n) a word.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tokenlora::tokenizer_internal {

class BpeMerges {
 public:
  void Reserve(size_t n) { map_.reserve(n); }
  // Merging `left` then `right` gives `result`. A later Add for the same pair
  // replaces the earlier one, as tokenizers' merge map does.
  void Add(int32_t left, int32_t right, int32_t result, int32_t rank);
  size_t size() const { return map_.size(); }
  // Merges the symbol ids of one word in place.
  void Apply(std::vector<int32_t>* symbols) const;

 private:
  struct Entry {
    int32_t rank;
    int32_t result;
  };
  static uint64_t Key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const Entry* Find(int32_t left, int32_t right) const {
    const auto it = map_.find(Key(left, right));
    return it == map_.end() ? nullptr : &it->second;
  }
  std::unordered_map<uint64_t, Entry> map_;
};

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
// string -> id map that can be searched with a string_view.
using TokenMap = std::unordered_map<std::string, int32_t, StringViewHash, std::equal_to<>>;

class SpmMerger {
 public:
  // `pieces`: the pieces a merge may produce (SentencePiece's normal,
  // user-defined and unused pieces) with their scores. `unused`: ids that must
  // be split back into the pair that formed them. `byte_ids[b]`: the <0xNN>
  // piece of byte b or -1; `unk_id` for a character with neither (-1: drop).
  SpmMerger(TokenMap pieces, std::vector<float> scores, std::vector<bool> unused,
            std::vector<int32_t> byte_ids, int32_t unk_id);
  SpmMerger() = default;

  void Encode(std::string_view text, std::vector<int32_t>* out) const;

 private:
  TokenMap pieces_;
  std::vector<float> scores_;  // by id
  std::vector<bool> unused_;   // by id
  std::vector<int32_t> byte_ids_;
  int32_t unk_id_ = -1;
};

}  // namespace tokenlora::tokenizer_internal
