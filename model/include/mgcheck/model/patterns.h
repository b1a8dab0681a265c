// AudioCraft's codebook interleaving patterns (musicgen-model.md §4), as plain C++: the layout of
// (timestep, codebook) coordinates per sequence step, and the index tables that build an interleaved
// sequence from codes and revert it. Implemented in generate.cc (format-free, no libtorch types here).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/format/configs.h"

namespace mgcheck::model {

struct LayoutCoord {
  int64_t t = 0;
  int64_t q = 0;
  bool operator==(const LayoutCoord& o) const { return t == o.t && q == o.q; }
};

// mirrors audiocraft/modules/codebooks_patterns.py Pattern
struct CodebookPattern {
  std::vector<std::vector<LayoutCoord>> layout;  // layout[0] is always empty
  int64_t timesteps = 0;
  int64_t n_q = 0;

  int64_t max_delay() const;
  // The layout up to its valid (fully defined) steps.
  size_t valid_steps() const;
  // First step holding timestep t (optionally codebook q); nullopt when none.
  std::optional<int64_t> first_step_with_timestep(int64_t t, std::optional<int64_t> q = std::nullopt) const;

  // Index tables over a flattened [K·T (+1 special)] input: index[q][s] = t + q·T, or K·T where absent.
  // Returned row-major [K, S]; mask 1 where a coordinate is placed.
  void build_indexes(int64_t T, bool keep_only_valid_steps, std::vector<int64_t>& index,
                     std::vector<uint8_t>& mask, int64_t& steps) const;
  // Revert tables for a sequence of S steps: index[q][t] = s + q·S or K·S. `is_model_output` drops the
  // initial step (logits predict the next step).
  void revert_indexes(int64_t S, bool keep_only_valid_steps, bool is_model_output, std::vector<int64_t>& index,
                      std::vector<uint8_t>& mask) const;
};

// Builds the pattern for `timesteps` from the config (delay, parallel, unroll, coarse_first, musiclm).
// Returns nullopt with `error` set when the parameters are invalid (AudioCraft would assert).
std::optional<CodebookPattern> make_pattern(const format::PatternConfig& cfg, int64_t n_q, int64_t timesteps,
                                            std::string* error = nullptr);

}  // namespace mgcheck::model
