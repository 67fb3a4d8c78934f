// The batched engine on tiny models: eight sequences with different prompt
// lengths and mixtures (the base, one adapter, a fixed mix, routed every 1 /
// 2 / once, KV keep and recompute, greedy and sampled), joining at
// different steps, must each produce exactly what the same request produces
// alone (Generator::Generate, the one-sequence case). Also: cancellation and
// KV memory accounting, admission under a KV budget, bad requests.
#include "generate/scheduler.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/error.h"
#include "generate/token_routing.h"
#include "lora/adapter_bank.h"
#include "lora/lora_test_util.h"
#include "router/tiny_bert.h"
#include "routing_test_util.h"
#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora {
namespace {

const std::vector<std::string> kTasks = {"math", "science", "code"};

// One request of the mixed batch.
struct Spec {
  std::string name;
  int prompt_len = 8;
  int max_new = 10;
  enum Mixture { kBase, kOneAdapter, kFixedMix, kRouted } mixture = kBase;
  int route_every = 2;
  KvPolicy kv = KvPolicy::kKeep;
  float temperature = 0;
  uint64_t seed = 0;
};

std::vector<Spec> MixedSpecs() {
  return {
      {"base", 5, 12, Spec::kBase},
      {"one-adapter", 11, 9, Spec::kOneAdapter},
      {"fixed-mix-sampled", 8, 14, Spec::kFixedMix, 0, KvPolicy::kKeep, 0.9f, 42},
      {"routed-every-1", 13, 10, Spec::kRouted, 1},
      {"routed-every-2", 7, 15, Spec::kRouted, 2},
      {"routed-prompt", 9, 8, Spec::kRouted, 0},
      {"routed-every-2-recompute", 6, 11, Spec::kRouted, 2, KvPolicy::kRecompute},
      {"routed-every-1-recompute-sampled", 10, 9, Spec::kRouted, 1, KvPolicy::kRecompute, 0.8f, 7},
  };
}

// activations: "f32" (the tiny llama in safetensors f32) or "int8" (the same
// shapes as GGUF Q8_0, run with int8 activations).
class SchedulerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    if (GetParam() == "int8") {
      ModelOptions mo;
      mo.int8_activations = true;
      model_ = Model::Load(testing::WriteTinyModel({"llama", "gguf", DType::kQ8_0}, dir_), mo);
      if (model_->int8_projections() == 0) GTEST_SKIP() << "no int8 kernel on this CPU (needs AVX2)";
    } else {
      model_ = Model::Load(testing::WriteTinyLlamaSafetensors(dir_));
    }
    bank_ = testing::RandomTaskAdapters(*model_, kTasks);
    embedder_dir_ = testing::WriteTinyBert(testing::TinyBert(64, 64));
    embedder_ = Embedder::Load(embedder_dir_, 1);
    const RouterFile f =
        testing::RouterFileFromTexts(*embedder_, kTasks, {"the cat", "the cat ? ? ? ? ? ?", "mat mat on mat"});
    router_ = std::make_unique<Router>(f, "router.json", *embedder_,
                                       RoutingPolicy::Make("softmax", 0.05f, 1, "", kTasks), RouteWindow{});
    mixer_ = std::make_unique<LoraMixer>(*bank_);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::remove_all(embedder_dir_);
  }

  std::vector<int32_t> Prompt(int len) const {
    std::vector<int32_t> ids = {256};
    const std::string text = "the cat sat on the mat and looked at the dog";
    for (int i = 1; i < len; ++i) ids.push_back(static_cast<unsigned char>(text[static_cast<size_t>(i) % text.size()]));
    return ids;
  }
  std::vector<float> SlotRow(const std::map<std::string, float>& w) const {
    std::vector<float> row(kTasks.size(), 0.0f);
    for (const auto& [name, v] : w) row[static_cast<size_t>(bank_->Require(name))] = v;
    return row;
  }
  SequenceRequest Request(const Spec& s) const {
    SequenceRequest r;
    r.prompt_ids = Prompt(s.prompt_len);
    r.options.max_new_tokens = s.max_new;
    r.options.stop_at_eos = false;
    r.options.sampling.temperature = s.temperature;
    r.options.sampling.seed = s.seed;
    r.options.prefill_batch = kChunk;
    if (s.mixture == Spec::kOneAdapter) r.weights = SlotRow({{"science", 1.0f}});
    if (s.mixture == Spec::kFixedMix) r.weights = SlotRow({{"math", 0.5f}, {"code", 1.2f}});
    if (s.mixture == Spec::kRouted) {
      r.owned_schedule = std::make_unique<TokenRouting>(*router_, *bank_, "the cat", TokenRoutingOptions{s.route_every, s.kv});
    }
    return r;
  }
  // The request alone, through the one-sequence path.
  GenerateResult Alone(const Spec& s, ThreadPool& pool) {
    SequenceRequest r = Request(s);
    Generator g(*model_, pool);
    if (r.weights.empty()) {
      mixer_->Clear();
    } else {
      mixer_->SetTokenWeights(r.weights, 1, static_cast<int>(r.weights.size()));
    }
    return g.Generate(r.prompt_ids, r.options, {}, mixer_.get(), r.owned_schedule.get());
  }

  static constexpr int kChunk = 4;  // prompt tokens per step: long prompts take several steps
  std::string dir_, embedder_dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<AdapterBank> bank_;
  std::unique_ptr<Embedder> embedder_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<LoraMixer> mixer_;
};

TEST_P(SchedulerTest, EachSequenceOfAMixedBatchEqualsItsRunAlone) {
  ThreadPool pool(2);
  const std::vector<Spec> specs = MixedSpecs();
  std::vector<GenerateResult> alone;
  for (const Spec& s : specs) alone.push_back(Alone(s, pool));

  SchedulerOptions so;
  so.max_sequences = 8;
  so.max_tokens_per_step = 12;  // less than all prompts at once: chunks wait for room
  so.prefill_chunk = kChunk;
  Scheduler scheduler(*model_, pool, mixer_.get(), so);
  std::vector<GenerateResult> batched(specs.size());
  std::vector<std::string> streamed(specs.size());
  auto submit = [&](size_t i) {
    SequenceRequest r = Request(specs[i]);
    r.on_text = [&streamed, i](const std::string& piece) {
      streamed[i] += piece;
      return true;
    };
    r.on_done = [&batched, i](GenerateResult&& g) { batched[i] = std::move(g); };
    scheduler.Submit(std::move(r));
  };
  // Sequences join at different steps: three at once, then one every few steps.
  for (size_t i = 0; i < 3; ++i) submit(i);
  size_t next = 3;
  int steps = 0;
  size_t max_running = 0;
  while (!scheduler.idle() || next < specs.size()) {
    if (next < specs.size() && steps % 3 == 2) submit(next++);
    scheduler.Step();
    max_running = std::max(max_running, scheduler.n_running());
    ++steps;
  }
  EXPECT_GE(max_running, 5u) << "the sequences hardly overlapped; the test is too weak";
  EXPECT_EQ(scheduler.kv_bytes_in_use(), 0u);
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(batched[i].output_ids, alone[i].output_ids) << specs[i].name;
    EXPECT_EQ(batched[i].text, alone[i].text) << specs[i].name;
    EXPECT_EQ(streamed[i], batched[i].text) << specs[i].name;
    EXPECT_EQ(batched[i].stop_reason, alone[i].stop_reason) << specs[i].name;
    EXPECT_EQ(batched[i].recomputed_tokens, alone[i].recomputed_tokens) << specs[i].name;
    EXPECT_EQ(static_cast<int>(batched[i].output_ids.size()), specs[i].max_new) << specs[i].name;
  }
  // The routed sequences' encoder windows ran in shared batches.
  EXPECT_LT(scheduler.stats().encoder_batches, scheduler.stats().routed);
}

TEST_P(SchedulerTest, RoutingWeightsInABatchEqualThoseAlone) {
  ThreadPool pool(2);
  const std::vector<Spec> specs = MixedSpecs();
  std::vector<std::vector<RoutingTraceStep>> alone_traces;
  for (const Spec& s : specs) {
    if (s.mixture != Spec::kRouted) continue;
    SequenceRequest r = Request(s);
    Generator g(*model_, pool);
    g.Generate(r.prompt_ids, r.options, {}, mixer_.get(), r.owned_schedule.get());
    alone_traces.push_back(static_cast<TokenRouting*>(r.owned_schedule.get())->trace());
  }
  SchedulerOptions so;
  so.prefill_chunk = kChunk;
  Scheduler scheduler(*model_, pool, mixer_.get(), so);
  std::vector<std::unique_ptr<TokenRouting>> routings;
  for (const Spec& s : specs) {
    if (s.mixture != Spec::kRouted) continue;
    SequenceRequest r = Request(s);
    routings.emplace_back(static_cast<TokenRouting*>(r.owned_schedule.release()));
    r.schedule = routings.back().get();
    scheduler.Submit(std::move(r));
  }
  scheduler.RunUntilIdle();
  ASSERT_EQ(routings.size(), alone_traces.size());
  for (size_t i = 0; i < routings.size(); ++i) {
    const std::vector<RoutingTraceStep>& got = routings[i]->trace();
    ASSERT_EQ(got.size(), alone_traces[i].size());
    for (size_t t = 0; t < got.size(); ++t) {
      EXPECT_EQ(got[t].rerouted, alone_traces[i][t].rerouted);
      for (size_t k = 0; k < kTasks.size(); ++k) EXPECT_NEAR(got[t].weights[k], alone_traces[i][t].weights[k], 1e-6);
    }
  }
}

TEST_P(SchedulerTest, CancellationFreesTheSlotAtOnce) {
  ThreadPool pool(1);
  SchedulerOptions so;
  so.prefill_chunk = kChunk;
  so.max_tokens_per_step = kChunk + 2;
  Scheduler scheduler(*model_, pool, mixer_.get(), so);
  std::map<SequenceId, std::string> reasons;
  auto submit = [&](int prompt_len, int max_new) {
    Spec s;
    s.prompt_len = prompt_len;
    s.max_new = max_new;
    SequenceRequest r = Request(s);
    auto holder = std::make_shared<SequenceId>(0);
    r.on_done = [&reasons, holder](GenerateResult&& g) { reasons[*holder] = g.stop_reason; };
    *holder = scheduler.Submit(std::move(r));
    return *holder;
  };
  const SequenceId decoding = submit(3, 50);
  const SequenceId prefilling = submit(30, 50);  // 30 prompt tokens: many steps of kChunk
  const SequenceId waiting_id = submit(3, 5);
  scheduler.Step();
  scheduler.Step();
  ASSERT_EQ(scheduler.n_running(), 3u);
  const size_t bytes_three = scheduler.kv_bytes_in_use();
  ASSERT_GT(bytes_three, 0u);
  EXPECT_TRUE(scheduler.Cancel(prefilling));  // mid-prefill
  EXPECT_EQ(reasons[prefilling], "cancelled");
  EXPECT_EQ(scheduler.n_running(), 2u);
  EXPECT_LT(scheduler.kv_bytes_in_use(), bytes_three);
  scheduler.Step();
  EXPECT_TRUE(scheduler.Cancel(decoding));  // mid-decode
  EXPECT_EQ(reasons[decoding], "cancelled");
  EXPECT_FALSE(scheduler.Cancel(decoding));  // no longer in flight
  scheduler.RunUntilIdle();
  EXPECT_EQ(reasons[waiting_id], "length");
  EXPECT_EQ(scheduler.kv_bytes_in_use(), 0u);
  EXPECT_TRUE(scheduler.idle());

  // A caller that stops reading cancels its sequence; the others go on.
  Spec s;
  s.max_new = 20;
  SequenceRequest stop_early = Request(s);
  int pieces = 0;
  std::string reason_a, reason_b;
  stop_early.on_text = [&pieces](const std::string&) { return ++pieces < 3; };
  stop_early.on_done = [&reason_a](GenerateResult&& g) { reason_a = g.stop_reason; };
  SequenceRequest other = Request(s);
  other.on_done = [&reason_b](GenerateResult&& g) { reason_b = g.stop_reason; };
  scheduler.Submit(std::move(stop_early));
  scheduler.Submit(std::move(other));
  scheduler.RunUntilIdle();
  EXPECT_EQ(reason_a, "cancelled");
  EXPECT_EQ(reason_b, "length");
  EXPECT_EQ(scheduler.kv_bytes_in_use(), 0u);
}

TEST_P(SchedulerTest, AKvBudgetQueuesWhatDoesNotFitAndRefusesWhatNeverWill) {
  ThreadPool pool(1);
  Spec s;
  s.prompt_len = 6;
  s.max_new = 6;
  const int ctx = s.prompt_len + s.max_new;
  SchedulerOptions so;
  so.prefill_chunk = kChunk;
  so.kv_memory_bytes = 2 * KvCache::BytesFor(model_->config(), ctx, DType::kF32);  // two at a time
  Scheduler scheduler(*model_, pool, mixer_.get(), so);
  ThreadPool alone_pool(1);
  const GenerateResult want = Alone(s, alone_pool);
  std::vector<GenerateResult> got(5);
  for (size_t i = 0; i < got.size(); ++i) {
    SequenceRequest r = Request(s);
    r.on_done = [&got, i](GenerateResult&& g) { got[i] = std::move(g); };
    scheduler.Submit(std::move(r));
  }
  size_t max_running = 0;
  while (!scheduler.idle()) {
    scheduler.Step();
    max_running = std::max(max_running, scheduler.n_running());
    EXPECT_LE(scheduler.kv_bytes_in_use() + scheduler.kv_bytes_cached(), so.kv_memory_bytes);
  }
  EXPECT_EQ(max_running, 2u);
  // Finished sequences' caches were kept and reused (the later sequences
  // found stale keys and values in them and still match the run alone).
  EXPECT_GT(scheduler.kv_bytes_cached(), 0u);
  for (const GenerateResult& g : got) EXPECT_EQ(g.output_ids, want.output_ids);

  Spec big = s;
  big.max_new = 500;
  try {
    scheduler.Submit(Request(big));
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_TRUE(testing::Contains(e.what(), "KV cache"));
    EXPECT_TRUE(testing::Contains(e.what(), "budget"));
  }
  EXPECT_TRUE(scheduler.idle());
}

TEST_P(SchedulerTest, BadRequestsAreRefusedBeforeTheyRun) {
  ThreadPool pool(1);
  Scheduler scheduler(*model_, pool, mixer_.get(), SchedulerOptions{});
  Spec s;
  SequenceRequest empty = Request(s);
  empty.prompt_ids.clear();
  EXPECT_THROW(scheduler.Submit(std::move(empty)), InputError);
  SequenceRequest bad_id = Request(s);
  bad_id.prompt_ids.push_back(1 << 20);
  EXPECT_THROW(scheduler.Submit(std::move(bad_id)), InputError);
  SequenceRequest free_slot = Request(s);
  free_slot.weights = std::vector<float>(10, 0.0f);
  free_slot.weights[9] = 1;  // slot 9 holds no adapter
  EXPECT_THROW(scheduler.Submit(std::move(free_slot)), InputError);
  SequenceRequest nan = Request(s);
  nan.weights = {std::nanf(""), 0, 0};
  EXPECT_THROW(scheduler.Submit(std::move(nan)), InputError);
  SchedulerOptions bad;
  bad.prefill_chunk = 600;
  EXPECT_THROW(Scheduler(*model_, pool, nullptr, bad), InputError);
  Scheduler no_adapters(*model_, pool, nullptr, SchedulerOptions{});
  s.mixture = Spec::kOneAdapter;
  EXPECT_THROW(no_adapters.Submit(Request(s)), InputError);
  EXPECT_TRUE(scheduler.idle());
}

INSTANTIATE_TEST_SUITE_P(Activations, SchedulerTest, ::testing::Values("f32", "int8"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenlora
