// The BERT sentence encoder: a tiny random model against a naive reference,
// batched == one at a time, load errors, and all-MiniLM-L6-v2 against
// sentence-transformers (tests/golden/router/embeddings.*).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/mapped_file.h"
#include "model/bert/bert_model.h"
#include "router_test_util.h"
#include "test_util.h"
#include "tiny_bert.h"

namespace tokenlora {
namespace {

using testing::Cosine;
using testing::SourcePath;
using testing::TinyBert;
using testing::TinyBertFiles;
using testing::WriteTinyBert;

TEST(BertTiny, MatchesReferenceForward) {
  const TinyBertFiles files = TinyBert();
  const auto model = BertModel::Load(WriteTinyBert(files));
  EXPECT_EQ(model->dim(), 16);
  EXPECT_EQ(model->max_pieces(), 6);
  EXPECT_TRUE(model->sentence().normalize);
  ThreadPool pool(2);
  BertWorkspace ws;
  for (const std::string text :
       {"", "the cat", "the cats sat on the mat.", "cat cat cat cat cat cat cat cat"}) {
    const std::vector<int32_t> ids = model->Tokenize(text);
    ASSERT_LE(ids.size(), 8u);
    std::vector<float> got(16);
    model->Embed({&ids, 1}, pool, ws, got.data());
    const std::vector<float> want = testing::ReferenceEmbedding(files, ids);
    for (size_t j = 0; j < 16; ++j) EXPECT_NEAR(got[j], want[j], 2e-5) << "'" << text << "' dim " << j;
  }
}

TEST(BertTiny, TruncatesOnTheRight) {
  const auto model = BertModel::Load(WriteTinyBert(TinyBert()));
  const auto ids = model->Tokenize("the cat sat on the mat . the cat");
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 5, 6, 7, 8, 5, 9, 3}));  // [CLS] 6 pieces [SEP]
}

TEST(BertTiny, BatchedEqualsOneAtATime) {
  const auto model = BertModel::Load(WriteTinyBert(TinyBert()));
  ThreadPool pool(3);
  BertWorkspace ws;
  const std::vector<std::string> texts = {"the", "the cat sat", "", "mats on the cat .", "sat sat"};
  std::vector<float> batched(texts.size() * 16);
  model->EmbedTexts(texts, pool, ws, batched.data());
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<float> single(16);
    BertWorkspace fresh;
    model->EmbedTexts({&texts[i], 1}, pool, fresh, single.data());
    // Equal up to float rounding: MatMul sums in a different order for 1..4
    // tokens (its decode path) than for more (prefill tiles).
    for (size_t j = 0; j < 16; ++j) ASSERT_NEAR(single[j], batched[i * 16 + j], 1e-6) << texts[i];
  }
}

void ExpectLoadError(const TinyBertFiles& files, const std::string& needle) {
  try {
    BertModel::Load(WriteTinyBert(files));
    ADD_FAILURE() << "expected an InputError containing " << needle;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(BertTiny, LoadErrorsNameFileAndField) {
  TinyBertFiles f = TinyBert();
  f.config["model_type"] = "roberta";
  ExpectLoadError(f, "config.json: model_type 'roberta' is not supported");
  f = TinyBert();
  f.config["hidden_act"] = "relu";
  ExpectLoadError(f, "hidden_act 'relu'");
  f = TinyBert();
  f.config["num_attention_heads"] = 5;
  ExpectLoadError(f, "hidden_size 16 is not divisible by num_attention_heads 5");
  f = TinyBert();
  f.config.erase("intermediate_size");
  ExpectLoadError(f, "missing key 'intermediate_size'");
  f = TinyBert();
  std::erase_if(f.tensors,
                [](const auto& t) { return t.first == "encoder.layer.0.attention.self.key.bias"; });
  ExpectLoadError(f, "missing tensor 'encoder.layer.0.attention.self.key.bias'");
  f = TinyBert();
  f.config["intermediate_size"] = 32;
  ExpectLoadError(f,
                  "tensor 'encoder.layer.0.intermediate.dense.weight' has shape [24, 16], expected [32, 16]");
  f = TinyBert();
  f.config["num_hidden_layers"] = 1;
  ExpectLoadError(f, "belongs to layer 1, but config.json says 1 layers");
  f = TinyBert();
  f.modules[2]["type"] = "sentence_transformers.models.Dense";
  ExpectLoadError(f, "module type 'sentence_transformers.models.Dense' is not supported");
  f = TinyBert();
  f.pooling["pooling_mode_max_tokens"] = true;
  ExpectLoadError(f, "concatenated poolings are not supported");
  f = TinyBert();
  f.pooling["pooling_mode_mean_tokens"] = false;
  f.pooling["pooling_mode_weightedmean_tokens"] = true;
  ExpectLoadError(f, "'pooling_mode_weightedmean_tokens' is not supported");
  f = TinyBert();
  f.pooling["word_embedding_dimension"] = 384;
  ExpectLoadError(f, "word_embedding_dimension 384 does not match the encoder's hidden_size 16");
  f = TinyBert();
  f.sentence_config["max_seq_length"] = 64;
  ExpectLoadError(f, "max_seq_length 64 must be in [2, 10]");
}

// Adds an I64 tensor to a safetensors file, as transformers < 4.31 saved
// embeddings.position_ids.
void AddInt64Tensor(const std::string& path, const std::string& name) {
  std::string bytes = ReadTextFile(path);
  uint64_t header_bytes;
  std::memcpy(&header_bytes, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_bytes));
  std::string data = bytes.substr(8 + header_bytes);
  header[name] = {{"dtype", "I64"}, {"shape", {1, 10}}, {"data_offsets", {data.size(), data.size() + 80}}};
  for (int64_t i = 0; i < 10; ++i) data.append(reinterpret_cast<const char*>(&i), 8);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();
  WriteFileAtomically(path, std::string(reinterpret_cast<const char*>(&n), 8) + text + data);
}

TEST(BertTiny, IgnoresTheInt64PositionIdsBuffer) {
  const TinyBertFiles files = TinyBert();
  const std::string dir = WriteTinyBert(files);
  AddInt64Tensor(dir + "/model.safetensors", "embeddings.position_ids");
  const auto model = BertModel::Load(dir);
  ThreadPool pool(1);
  BertWorkspace ws;
  const auto ids = model->Tokenize("the cat");
  std::vector<float> e(16);
  model->Embed({&ids, 1}, pool, ws, e.data());
  const std::vector<float> want = testing::ReferenceEmbedding(files, ids);
  for (size_t j = 0; j < 16; ++j) EXPECT_NEAR(e[j], want[j], 2e-5);
  // Any other tensor of a dtype tokenlora cannot hold is still an error.
  AddInt64Tensor(dir + "/model.safetensors", "encoder.layer.0.extra");
  try {
    BertModel::Load(dir);
    ADD_FAILURE() << "expected an error for an I64 tensor the encoder does not know";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layer.0.extra"), std::string::npos) << e.what();
  }
}

TEST(BertTiny, GgufGivesTheSameEmbeddings) {
  const TinyBertFiles files = TinyBert();
  const auto st = BertModel::Load(WriteTinyBert(files));
  const auto f32 = BertModel::Load(testing::WriteTinyBertGguf(files, DType::kF32));
  const auto f16 = BertModel::Load(testing::WriteTinyBertGguf(files, DType::kF16));
  EXPECT_TRUE(f32->sentence().normalize);
  EXPECT_EQ(f32->max_pieces(), 8);  // context_length 10: no sentence_bert_config.json beside the GGUF
  ThreadPool pool(1);
  BertWorkspace ws;
  for (const std::string text : {"the cat", "[MASK] cats sat on the mat.", "The MAT"}) {
    const auto ids = st->Tokenize(text);
    ASSERT_EQ(f32->tokenizer().Encode(text), st->tokenizer().Encode(text))
        << text;  // phantom-space vocabulary read back
    std::vector<float> a(16), b(16), c(16);
    st->Embed({&ids, 1}, pool, ws, a.data());
    f32->Embed({&ids, 1}, pool, ws, b.data());
    f16->Embed({&ids, 1}, pool, ws, c.data());
    EXPECT_EQ(a, b) << text;
    EXPECT_GT(Cosine(a.data(), c.data(), 16), 0.999) << text;
  }
}

TEST(BertTiny, GgufErrors) {
  TinyBertFiles f = TinyBert();
  std::erase_if(f.tensors, [](const auto& t) { return t.first == "encoder.layer.1.output.dense.bias"; });
  try {
    BertModel::Load(testing::WriteTinyBertGguf(f, DType::kF32));
    ADD_FAILURE() << "expected a missing-tensor error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'blk.1.ffn_down.bias'"), std::string::npos)
        << e.what();
  }
}

TEST(BertTiny, PoolingModes) {
  for (const char* mode : {"pooling_mode_cls_token", "pooling_mode_max_tokens"}) {
    TinyBertFiles f = TinyBert();
    f.pooling["pooling_mode_mean_tokens"] = false;
    f.pooling[mode] = true;
    f.modules.erase(2);  // no Normalize
    const auto model = BertModel::Load(WriteTinyBert(f));
    EXPECT_FALSE(model->sentence().normalize);
    ThreadPool pool(1);
    BertWorkspace ws;
    const auto ids = model->Tokenize("the cat sat");
    std::vector<float> e(16);
    model->Embed({&ids, 1}, pool, ws, e.data());
    double norm = 0;
    for (float v : e) norm += double{v} * v;
    EXPECT_GT(std::abs(norm - 1.0), 1e-3) << mode << ": not normalised";
    if (std::string(mode) == "pooling_mode_cls_token") {
      EXPECT_EQ(e[0], ws.hidden()[0]);  // row 0 is [CLS]
    } else {
      for (int j = 0; j < 16; ++j) {
        float mx = ws.hidden()[j];
        for (int t = 1; t < 5; ++t) mx = std::max(mx, ws.hidden()[t * 16 + j]);
        EXPECT_EQ(e[static_cast<size_t>(j)], mx);
      }
    }
  }
}

// all-MiniLM-L6-v2 against sentence-transformers on the golden texts.
TEST(MiniLm, EmbeddingsMatchSentenceTransformers) {
  const std::string dir = testing::MiniLmDir();
  if (dir.empty()) GTEST_SKIP() << "models/all-MiniLM-L6-v2 absent (scripts/fetch-models)";
  const auto model = BertModel::Load(dir);
  EXPECT_EQ(model->max_pieces(), 254);
  EXPECT_EQ(model->sentence().pooling, Pooling::kMean);
  EXPECT_TRUE(model->sentence().normalize);
  std::ifstream in(SourcePath("tests/golden/router/embeddings.json"));
  const auto meta = nlohmann::json::parse(in);
  const auto golden = testing::ReadF16File(SourcePath("tests/golden/router/embeddings.f16"));
  const size_t dim = meta["dim"].get<size_t>();
  ASSERT_EQ(golden.size(), meta["texts"].size() * dim);
  std::vector<std::string> texts;
  std::vector<size_t> rows;
  for (size_t i = 0; i < meta["texts"].size(); ++i) {
    if (auto t = testing::GoldenText(meta["texts"][i])) {
      texts.push_back(*t);
      rows.push_back(i);
    }
  }
  if (texts.size() < meta["texts"].size()) {
    testing::MissingData(std::to_string(meta["texts"].size() - texts.size()) + " golden texts' source records");
    return;
  }
  ThreadPool pool(ThreadPool::PhysicalCores());
  BertWorkspace ws;
  std::vector<float> got(texts.size() * dim);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t b = 0; b < texts.size(); b += 16) {
    const size_t n = std::min<size_t>(16, texts.size() - b);
    model->EmbedTexts({texts.data() + b, n}, pool, ws, got.data() + b * dim);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double min_cos = 1.0;
  size_t long_texts = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const double cos = Cosine(got.data() + i * dim, golden.data() + rows[i] * dim, dim);
    min_cos = std::min(min_cos, cos);
    long_texts += model->tokenizer().Encode(texts[i], false).size() > 254;
    // The golden is stored as f16, which alone costs about 1e-8 of cosine;
    // measured 2026-12-06: 1 - 2.8e-8 at worst. 0.9999 would pass a wrong
    // layer norm or pooling.
    EXPECT_GE(cos, 1.0 - 2e-7) << "text " << rows[i] << ": " << texts[i].substr(0, 80);
  }
  EXPECT_GE(long_texts, 10u);
  // One at a time gives the batch's embeddings (up to float rounding).
  for (size_t i = 0; i < texts.size(); i += texts.size() / 8) {
    std::vector<float> one(dim);
    model->EmbedTexts({&texts[i], 1}, pool, ws, one.data());
    for (size_t j = 0; j < dim; ++j) ASSERT_NEAR(one[j], got[i * dim + j], 1e-6) << "text " << rows[i];
  }
  std::printf("[ MiniLM   ] %zu texts (%zu over 256 pieces): min cosine 1 - %.1e, %.1f ms per text\n",
              texts.size(), long_texts, 1.0 - min_cos, 1000 * secs / static_cast<double>(texts.size()));
}

}  // namespace
}  // namespace tokenlora
