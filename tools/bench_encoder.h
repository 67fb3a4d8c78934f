// `tokenlora bench --encoder 16,64,128,256`: the router encoder's cost per
// call in each precision (f32, int8), interleaved in one run, on windows of
// exactly N word pieces cut from the benchmark passage; with the cosine
// between the two precisions' embeddings of the same window.
#pragma once

#include <string>
#include <vector>

namespace tokenlora::cli {

struct EncoderBenchArgs {
  std::string embedder;     // directory ("" = the built-in MiniLM)
  std::vector<int> pieces;  // word pieces per window, [CLS]/[SEP] not counted
  int batch = 1;            // windows per encoder call (as the scheduler batches due routes)
  int reps = 5, threads = 0;
  bool json = false;
};

int RunEncoderBench(const EncoderBenchArgs& args);

}  // namespace tokenlora::cli
