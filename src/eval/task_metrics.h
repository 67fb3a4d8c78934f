// Scoring of one generated answer against a task's reference, the way each
// data set is usually scored. Pure functions on text: no model, no I/O.
//   GSM8K       the final number ("#### N" when the output has one, else its
//               last number) equals the reference's "#### N" number
//   ARC         the answer label the output starts with equals answerKey
//   SQuAD v1.1  exact match / token F1 after the official normalization
//               (lower case, no ASCII punctuation, no a/an/the, single spaces;
//               non-ASCII letters keep their case), best over the references
//   CodeAlpaca  ROUGE-L F-measure with rouge-score's default tokenizer
//               (lower case, [a-z0-9]+ runs, no stemming)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokenlora::eval {

// The number a GSM8K text ends on: what follows the first "####" when there
// is one, else the last number in the text. Commas are dropped ("1,000" ->
// "1000"), a trailing '.' too. nullopt when the text has no number.
std::optional<std::string> Gsm8kFinalNumber(std::string_view text);
// Both are numbers and equal as numbers ("18" == "18.0" == "18.00").
bool Gsm8kNumbersEqual(const std::string& predicted, const std::string& reference);

// The choice label the output answers with: after leading spaces, one of
// `labels` ("A".."E" or "1".."5") not followed by a letter or digit ("B",
// "B.", "B) text"); else "The answer is B" anywhere in the first line; else "".
std::string ArcAnswerLabel(std::string_view output, const std::vector<std::string>& labels);

// The official SQuAD v1.1 normalize_answer.
std::string SquadNormalize(std::string_view text);
// 1 when the normalized prediction equals a normalized reference, else 0.
double SquadExactMatch(std::string_view prediction, const std::vector<std::string>& references);
// Token-overlap F1, best over the references.
double SquadF1(std::string_view prediction, const std::vector<std::string>& references);

// rouge-score's default tokenization: lower case, runs of [a-z0-9].
std::vector<std::string> RougeTokens(std::string_view text);
// ROUGE-L F-measure (longest common subsequence of tokens); 0 when either side has no token.
double RougeL(std::string_view prediction, std::string_view reference);

}  // namespace tokenlora::eval
