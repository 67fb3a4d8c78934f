#include "tokenizer/pretokenizer.h"

#include <algorithm>
#include <utility>

namespace tokenlora::tokenizer_internal {
namespace {

// One stretch of a piece: a match of the split pattern or the text between.
struct Stretch {
  size_t begin;
  size_t end;
  bool is_match;
};

// Covers [0, size) with gaps and matches in order (tokenizers' Pattern::find_matches).
template <typename FindMatches>
std::vector<Stretch> Stretches(size_t size, bool invert, FindMatches&& find) {
  std::vector<Stretch> out;
  size_t prev = 0;
  find([&](size_t begin, size_t end) {
    if (begin > prev) out.push_back({prev, begin, invert});
    out.push_back({begin, end, !invert});
    prev = end;
  });
  if (prev < size) out.push_back({prev, size, invert});
  return out;
}

// tokenizers' NormalizedString::split: merges stretches per `behavior` and
// returns the [begin, end) ranges to keep (empty ones are dropped later).
std::vector<std::pair<size_t, size_t>> ApplyBehavior(const std::vector<Stretch>& stretches,
                                                     SplitBehavior behavior) {
  std::vector<std::pair<size_t, size_t>> out;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Stretch& s : stretches) out.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::kRemoved:
      for (const Stretch& s : stretches) {
        if (!s.is_match) out.emplace_back(s.begin, s.end);
      }
      break;
    case SplitBehavior::kContiguous: {
      // Adjacent stretches of the same kind become one piece.
      bool previous_match = false;
      for (const Stretch& s : stretches) {
        if (!out.empty() && s.is_match == previous_match) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Stretch& s : stretches) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      // Walk backwards: a match joins the piece that follows it.
      bool previous_match = false;
      for (auto it = stretches.rbegin(); it != stretches.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().first = it->begin;
        } else {
          out.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  return out;
}

void ReplaceAll(std::string_view text, std::string_view from, std::string_view to, std::string* out) {
  out->clear();
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out->append(text.substr(pos, hit - pos));
    out->append(to);
    pos = hit + from.size();
  }
  out->append(text.substr(pos));
}

}  // namespace

// --- Normalizer ---------------------------------------------------------------

void Normalizer::AddPrepend(std::string prefix) {
  steps_.push_back({Kind::kPrepend, std::move(prefix), "", Regex()});
}

void Normalizer::AddReplace(std::string from, std::string to) {
  if (from.empty()) return;  // tokenizers: an empty pattern matches nothing
  steps_.push_back({Kind::kReplace, std::move(from), std::move(to), Regex()});
}

void Normalizer::AddReplaceRegex(Regex regex, std::string to) {
  steps_.push_back({Kind::kReplaceRegex, "", std::move(to), std::move(regex)});
}

std::string Normalizer::Apply(std::string_view text) const {
  std::string current(text);
  std::string next;
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Kind::kPrepend:
        if (!current.empty()) current.insert(0, step.pattern);
        continue;
      case Kind::kReplace:
        ReplaceAll(current, step.pattern, step.content, &next);
        break;
      case Kind::kReplaceRegex: {
        next.clear();
        size_t prev = 0;
        step.regex.ForEachMatch(current, [&](size_t begin, size_t end) {
          next.append(current, prev, begin - prev);
          next.append(step.content);
          prev = end;
        });
        next.append(current, prev, std::string::npos);
        break;
      }
    }
    current.swap(next);
  }
  return current;
}

// --- PreTokenizer -------------------------------------------------------------

void PreTokenizer::AddSplit(Regex regex, SplitBehavior behavior, bool invert) {
  Step step{Kind::kSplit, std::move(regex), "", behavior, invert};
  steps_.push_back(std::move(step));
}

void PreTokenizer::AddLiteralSplit(std::string literal, SplitBehavior behavior, bool invert) {
  Step step{Kind::kLiteralSplit, Regex(), std::move(literal), behavior, invert};
  steps_.push_back(std::move(step));
}

void PreTokenizer::AddDigits(bool individual_digits, const std::string& where) {
  // tokenizers uses char::is_numeric (categories Nd, Nl, No), i.e. \p{N}. A run
  // of digits split "contiguous" is the same as matching \p{N}+ isolated.
  AddSplit(Regex::Compile(individual_digits ? R"(\p{N})" : R"(\p{N}+)", where), SplitBehavior::kIsolated,
           false);
}

void PreTokenizer::AddByteLevel(bool add_prefix_space, bool use_regex, const std::string& where) {
  if (add_prefix_space) steps_.push_back(Step{Kind::kPrefixSpace, Regex(), " "});
  if (use_regex) AddSplit(Regex::Compile(kGpt2Pattern, where), SplitBehavior::kIsolated, false);
}

void PreTokenizer::AddMetaspace(std::string replacement, PrependScheme scheme, bool split) {
  Step step{Kind::kMetaspace, Regex(), std::move(replacement)};
  step.scheme = scheme;
  step.split = split;
  steps_.push_back(std::move(step));
}

void PreTokenizer::ApplyStep(const Step& step, const Piece& piece, Pieces* pieces,
                             std::vector<Piece>* out) const {
  const std::string_view text = piece.text;
  const auto emit_ranges = [&](std::string_view base, const std::vector<std::pair<size_t, size_t>>& ranges) {
    for (const auto& [begin, end] : ranges) {
      if (end > begin) out->push_back({base.substr(begin, end - begin), piece.at_text_start && begin == 0});
    }
  };
  switch (step.kind) {
    case Kind::kSplit: {
      const auto stretches = Stretches(
          text.size(), step.invert, [&](const auto& on_match) { step.regex.ForEachMatch(text, on_match); });
      emit_ranges(text, ApplyBehavior(stretches, step.behavior));
      return;
    }
    case Kind::kLiteralSplit: {
      const auto stretches = Stretches(text.size(), step.invert, [&](const auto& on_match) {
        if (step.literal.empty()) return;
        for (size_t pos = text.find(step.literal); pos != std::string_view::npos;
             pos = text.find(step.literal, pos + step.literal.size())) {
          on_match(pos, pos + step.literal.size());
        }
      });
      emit_ranges(text, ApplyBehavior(stretches, step.behavior));
      return;
    }
    case Kind::kPrefixSpace:
      if (!text.empty() && text.front() == ' ') {
        out->push_back(piece);
      } else {
        std::string& prefixed = pieces->storage.emplace_back();
        prefixed.reserve(text.size() + 1);
        prefixed.append(1, ' ').append(text);
        out->push_back({prefixed, piece.at_text_start});
      }
      return;
    case Kind::kMetaspace: {
      std::string replaced;
      ReplaceAll(text, " ", step.literal, &replaced);
      const bool starts_with_marker = replaced.compare(0, step.literal.size(), step.literal) == 0;
      const bool prepend =
          !starts_with_marker && (step.scheme == PrependScheme::kAlways ||
                                  (step.scheme == PrependScheme::kFirst && piece.at_text_start));
      if (prepend) replaced.insert(0, step.literal);
      pieces->storage.push_back(std::move(replaced));
      const std::string_view stored = pieces->storage.back();
      if (!step.split) {
        out->push_back({stored, piece.at_text_start});
        return;
      }
      const auto stretches = Stretches(stored.size(), false, [&](const auto& on_match) {
        for (size_t pos = stored.find(step.literal); pos != std::string_view::npos;
             pos = stored.find(step.literal, pos + step.literal.size())) {
          on_match(pos, pos + step.literal.size());
        }
      });
      emit_ranges(stored, ApplyBehavior(stretches, SplitBehavior::kMergedWithNext));
      return;
    }
  }
}

void PreTokenizer::Apply(std::string_view text, bool at_text_start, Pieces* out) const {
  if (text.empty()) return;
  std::vector<Piece> current{{text, at_text_start}};
  std::vector<Piece> next;
  for (const Step& step : steps_) {
    next.clear();
    for (const Piece& piece : current) ApplyStep(step, piece, out, &next);
    current.swap(next);
  }
  for (const Piece& piece : current) out->views.push_back(piece.text);
}

}  // namespace tokenlora::tokenizer_internal
