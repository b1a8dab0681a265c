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
#include "mgcheck/model/reference.h"

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

// Tolerances of the LM stages (contract §5; corpus/audiocraft-tiny/README.md "Tolerances"), the one
// policy of the reference comparison, used by the tests and by `deep --reference` alike: LM logits 1e-4,
// greedy codes exact, greedy audio kAudioTolerance (1e-5), EnCodec codes exact and latents/audio 1e-5
// (reference.h). The contract names no tolerance for the conditioning stages: null conditions are compared
// exactly (zeros masked out, no arithmetic can differ) and the text conditioner's projection at 1e-5.
inline constexpr double kLogitsTolerance = 1e-4;
inline constexpr double kConditionTolerance = 1e-5;

// Recomputes every LM stage present in `refs` with `lm` (and `decoder` for audio): null_cond/* (exact),
// text_cond/description_emb (1e-5), lm/logits_null, lm/logits_text or its top-16 form, lm/pred_logits_null
// (1e-4, NaN pattern included), gen_greedy_{uncond,text}/codes (exact), their step_logits_cfg_item0 (1e-4)
// and audio (1e-5), gen_sampled_uncond/codes and audio (informative: reported, never failing). Text stages
// feed the recorded T5 state to the description conditioner and null conditions to any other provider.
// libtorch errors become failed stages. `deep --reference` runs exactly this (harness/deep).
std::vector<StageResult> compare_lm_stages(const LmModel& lm, const ReferenceSet& refs,
                                           const CodesDecoder& decoder = {});

}  // namespace mgcheck::model
