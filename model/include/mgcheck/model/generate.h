// LMModel.generate (musicgen-model.md §5): the step loop over the interleaved sequence with a
// preallocated KV cache, classifier-free guidance (one 2B batch, two-step, or double CFG), greedy /
// top-k / top-p / temperature sampling with a seeded generator, pattern reversion, and optional
// decoding to audio through a caller-supplied decoder (the EnCodec model; the dependency stays one-way).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "mgcheck/model/lm.h"

namespace mgcheck::model {

struct SamplingParams {
  bool use_sampling = true;
  double temperature = 1.0;
  int64_t top_k = 250;
  double top_p = 0.0;
};

struct GenerateParams {
  int64_t max_gen_len = 8;                 // frames T
  SamplingParams sampling;
  std::optional<double> cfg_coef;          // nullopt → classifier_free_guidance.inference_coef
  std::optional<double> cfg_coef_beta;     // double CFG (MusicGen-Style): needs `wav_conditions`
  std::optional<bool> two_step_cfg;        // nullopt → transformer_lm.two_step_cfg
  bool use_cfg = true;                     // false: AudioCraft's empty condition list (no CFG)
  uint64_t seed = 0;                       // seeds the CPU generator used for sampling
  bool record_step_logits = false;         // keep the CFG-combined logits of item 0 per step
};

struct GenerateResult {
  torch::Tensor codes;        // [B, K, T] int64
  torch::Tensor audio;        // [B, C, T·hop] when a decoder was given
  torch::Tensor step_logits;  // [steps, K, card] float32 (item 0), when recorded
  int64_t steps = 0;          // forward calls
};

// Decoder for codes [B, K, T] → audio; e.g. [&](const torch::Tensor& c) { return encodec.decode(c); }.
using CodesDecoder = std::function<torch::Tensor(const torch::Tensor&)>;

// Generates `batch` items. `conditions` is the conditional block [B] in provider order (for
// unconditional generation pass lm.null_conditions(B)); the null block is built with lm.null_conditions.
// `wav_conditions` is the description-dropped block for double CFG. Throws on misuse.
GenerateResult generate(const LmModel& lm, const ConditionList& conditions, int64_t batch,
                        const GenerateParams& params, const CodesDecoder& decoder = {},
                        const ConditionList* wav_conditions = nullptr);

// AudioCraft's sampling on logits [B, K, card] (float): returns [B, K, 1] int64.
torch::Tensor sample_next_token(const torch::Tensor& logits, const SamplingParams& params,
                                at::Generator& generator);

// The stored state of an export's reference tensors (refs.pt) comparison, one stage per tensor group.
struct LmStageResult {
  std::string stage;        // e.g. "lm/logits_null"
  bool passed = false;
  bool informative = false; // sampled stages: reported, never failing
  double max_abs_diff = 0;  // floats; for codes the number of differing entries
  double tolerance = 0;
  std::string detail;
};

}  // namespace mgcheck::model
