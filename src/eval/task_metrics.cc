#include "eval/task_metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tokenlora::eval {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Numbers as GSM8K writes them: optional '-', digits with ',' separators, an
// optional decimal part. Returns [begin, end) pairs in order.
std::vector<std::pair<size_t, size_t>> FindNumbers(std::string_view s) {
  std::vector<std::pair<size_t, size_t>> found;
  size_t i = 0;
  while (i < s.size()) {
    if (!IsDigit(s[i])) {
      ++i;
      continue;
    }
    size_t begin = i;
    if (begin > 0 && s[begin - 1] == '-') --begin;
    size_t end = i;
    while (end < s.size() && (IsDigit(s[end]) || (s[end] == ',' && end + 1 < s.size() && IsDigit(s[end + 1])))) ++end;
    if (end + 1 < s.size() && s[end] == '.' && IsDigit(s[end + 1])) {
      ++end;
      while (end < s.size() && IsDigit(s[end])) ++end;
    }
    found.emplace_back(begin, end);
    i = end;
  }
  return found;
}

std::string CleanNumber(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != ',') out.push_back(c);
  }
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// Python's str.split(): runs of Unicode whitespace separate words.
std::vector<std::string> SplitPythonSpaces(std::string_view s) {
  std::vector<std::string> words;
  std::string word;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t n = tokenizer_internal::DecodeUtf8(s, i, &cp);
    if (n > 0 && tokenizer_internal::IsPythonSpace(cp)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.append(s.substr(i, n == 0 ? 1 : n));
    }
    i += n == 0 ? 1 : n;
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::string JoinWords(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

}  // namespace

std::optional<std::string> Gsm8kFinalNumber(std::string_view text) {
  if (const size_t mark = text.find("####"); mark != std::string_view::npos) {
    const std::string_view after = text.substr(mark + 4);
    const auto numbers = FindNumbers(after);
    if (!numbers.empty()) return CleanNumber(after.substr(numbers[0].first, numbers[0].second - numbers[0].first));
    return std::nullopt;
  }
  const auto numbers = FindNumbers(text);
  if (numbers.empty()) return std::nullopt;
  return CleanNumber(text.substr(numbers.back().first, numbers.back().second - numbers.back().first));
}

bool Gsm8kNumbersEqual(const std::string& predicted, const std::string& reference) {
  if (predicted.empty() || reference.empty()) return false;
  char* end_p = nullptr;
  char* end_r = nullptr;
  const double p = std::strtod(predicted.c_str(), &end_p);
  const double r = std::strtod(reference.c_str(), &end_r);
  if (*end_p != '\0' || *end_r != '\0') return predicted == reference;
  return std::fabs(p - r) <= 1e-9 * std::max(1.0, std::fabs(r));
}

std::string ArcAnswerLabel(std::string_view output, const std::vector<std::string>& labels) {
  auto label_at = [&](std::string_view s, size_t pos) -> std::string {
    for (const std::string& label : labels) {
      if (label.empty() || s.substr(pos, label.size()) != label) continue;
      const size_t after = pos + label.size();
      if (after < s.size() && IsAlnum(s[after])) continue;
      if (pos > 0 && IsAlnum(s[pos - 1])) continue;
      return label;
    }
    return "";
  };
  const size_t start = output.find_first_not_of(" \t\n");
  if (start == std::string_view::npos) return "";
  const std::string_view s = output.substr(start);
  // "(B)" is as clear as "B".
  if (std::string label = label_at(s, s.starts_with("(") ? 1 : 0); !label.empty()) return label;
  const std::string_view line = s.substr(0, s.find('\n'));
  for (std::string_view cue : {"answer is ", "Answer: ", "answer: "}) {
    if (const size_t pos = line.find(cue); pos != std::string_view::npos) {
      size_t at = pos + cue.size();
      if (at < line.size() && line[at] == '(') ++at;
      if (std::string label = label_at(line, at); !label.empty()) return label;
    }
  }
  return "";
}

std::string SquadNormalize(std::string_view text) {
  // lower(), drop string.punctuation, replace \b(a|an|the)\b by a space
  // (Unicode word boundaries, as Python's re), then split on whitespace
  // (Python's str.split: Unicode spaces too) and join with single spaces.
  std::string s;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 128 && std::ispunct(u)) continue;
    s.push_back(u < 128 ? static_cast<char>(std::tolower(u)) : c);
  }
  static const tokenizer_internal::Regex kArticles =
      tokenizer_internal::Regex::Compile("\\b(a|an|the)\\b", "SQuAD normalization");
  std::string no_articles;
  size_t copied = 0;
  kArticles.ForEachMatch(s, [&](size_t begin, size_t end) {
    no_articles.append(s, copied, begin - copied).push_back(' ');
    copied = end;
  });
  no_articles.append(s, copied, std::string::npos);
  return JoinWords(SplitPythonSpaces(no_articles));
}

double SquadExactMatch(std::string_view prediction, const std::vector<std::string>& references) {
  const std::string p = SquadNormalize(prediction);
  for (const std::string& r : references) {
    if (SquadNormalize(r) == p) return 1.0;
  }
  return 0.0;
}

double SquadF1(std::string_view prediction, const std::vector<std::string>& references) {
  const std::vector<std::string> p = SplitPythonSpaces(SquadNormalize(prediction));
  double best = 0;
  for (const std::string& ref : references) {
    const std::vector<std::string> r = SplitPythonSpaces(SquadNormalize(ref));
    std::map<std::string, int> counts;
    for (const std::string& w : r) ++counts[w];
    int common = 0;
    for (const std::string& w : p) {
      if (auto it = counts.find(w); it != counts.end() && it->second > 0) {
        --it->second;
        ++common;
      }
    }
    if (common == 0) continue;
    const double precision = static_cast<double>(common) / static_cast<double>(p.size());
    const double recall = static_cast<double>(common) / static_cast<double>(r.size());
    best = std::max(best, 2 * precision * recall / (precision + recall));
  }
  return best;
}

std::vector<std::string> RougeTokens(std::string_view text) {
  std::vector<std::string> tokens;
  std::string token;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const char lower = u < 128 ? static_cast<char>(std::tolower(u)) : c;
    if ((lower >= 'a' && lower <= 'z') || IsDigit(lower)) {
      token.push_back(lower);
    } else if (!token.empty()) {
      tokens.push_back(std::move(token));
      token.clear();
    }
  }
  if (!token.empty()) tokens.push_back(std::move(token));
  return tokens;
}

double RougeL(std::string_view prediction, std::string_view reference) {
  const std::vector<std::string> p = RougeTokens(prediction);
  const std::vector<std::string> r = RougeTokens(reference);
  if (p.empty() || r.empty()) return 0.0;
  // LCS length by dynamic programming over one row.
  std::vector<int> row(r.size() + 1, 0);
  for (const std::string& pw : p) {
    int diagonal = 0;
    for (size_t j = 1; j <= r.size(); ++j) {
      const int above = row[j];
      row[j] = pw == r[j - 1] ? diagonal + 1 : std::max(row[j], row[j - 1]);
      diagonal = above;
    }
  }
  const double lcs = row[r.size()];
  if (lcs == 0) return 0.0;
  const double precision = lcs / static_cast<double>(p.size());
  const double recall = lcs / static_cast<double>(r.size());
  return 2 * precision * recall / (precision + recall);
}

}  // namespace tokenlora::eval
