// How a sequence's adapter weights change while it generates. The scheduler
// asks before each step and applies the weights to the sequence's rows only,
// so sequences with different schedules share one forward pass.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace tokenlora {

class Embedder;
struct EmbedderState;

class MixtureSchedule {
 public:
  virtual ~MixtureSchedule() = default;
  // Before the forward pass whose logits pick new token `step` (step 0: the
  // prompt's prefill). `output_text`: what was generated so far, as decoded
  // (before stop strings are cut). Returns true when the weights changed.
  virtual bool BeforeStep(int step, std::string_view output_text) = 0;
  // Token `step` was sampled; `piece` is the text it completed (may be empty
  // inside a UTF-8 character). Not called for an end-of-generation token.
  virtual void AfterToken(int step, int32_t token, std::string_view piece) {}
  // When the weights change: false keeps every past key/value as computed
  // under the weights of its own step; true re-runs the whole text under the
  // new weights (what the reference does: no KV cache).
  virtual bool recompute_past() const { return false; }
  // The weights in effect, by adapter-bank slot ([n_slots]; slots past the
  // end weigh 0; empty: the base model).
  virtual std::span<const float> slot_weights() const = 0;
  // Bit i set: the schedule may ever weigh bank slot i (a scheduler checks
  // up front that the mix mode can mix them). 0: not known.
  virtual uint64_t possible_slots() const { return 0; }

  // Batched form of BeforeStep, for a scheduler whose sequences route in the
  // same step: BeginStep does BeforeStep's work up to the embedder and, when
  // an embedding must be computed, returns the embedder and the state whose
  // `pending` input it must embed (Embedder::EmbedPending, one call for all
  // sequences); FinishStep then completes the step (encoder_ms: this
  // sequence's share of that call) and returns what BeforeStep would.
  // Default: BeginStep runs BeforeStep.
  struct EncoderRequest {
    Embedder* embedder = nullptr;
    EmbedderState* state = nullptr;
  };
  virtual EncoderRequest BeginStep(int step, std::string_view output_text) {
    begun_changed_ = BeforeStep(step, output_text);
    return {};
  }
  virtual bool FinishStep(double encoder_ms) { return begun_changed_; }

 private:
  bool begun_changed_ = false;
};

}  // namespace tokenlora
