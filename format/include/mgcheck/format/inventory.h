// The tensors an export must contain for its config (names + shapes), and the diff against what the
// file holds: missing, unexpected, mis-shaped, FSDP-sharded (musicgen-model.md §3.1, §3.2, §6.1, §7).
// Findings of one kind that differ only by a layer index are grouped into one finding whose name
// collapses the indices into ranges: `transformer.layers.{0-23}.linear1.weight`.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mgcheck/format/configs.h"
#include "mgcheck/format/finding.h"

namespace mgcheck::format {

// A dimension of -1 means "any size" (the cfg does not determine it).
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};

struct FoundTensor {
  std::string name;
  std::vector<int64_t> shape;
};

// How the comparison treats names beyond exact equality.
struct InventoryRules {
  // A non-custom (torch MHA) attention also loads the custom names: `P.in_proj_weight` is renamed to
  // `P.mha.in_proj_weight` while loading (mirrors audiocraft/modules/transformer.py _load_from_state_dict).
  bool accept_custom_attention_names = false;
  // Tensors under these prefixes are expected but not inventoried (e.g. a fine-tuned T5 encoder);
  // one MG-SHAPE-NOT-INVENTORIED warning per prefix says so.
  std::vector<std::pair<std::string, std::string>> open_prefixes;  // prefix, reason
};

std::vector<ExpectedTensor> expected_lm_tensors(const LmConfig& lm);
InventoryRules lm_inventory_rules(const LmConfig& lm);
std::vector<ExpectedTensor> expected_compression_tensors(const CompressionConfig& c);
// The same, built up to `max_tensors` entries: `complete` is false when the config describes more (a
// corrupt num_layers, n_q or n_residual_layers), and the list is then cut there.
std::vector<ExpectedTensor> expected_lm_tensors(const LmConfig& lm, uint64_t max_tensors, bool& complete);
std::vector<ExpectedTensor> expected_compression_tensors(const CompressionConfig& c, uint64_t max_tensors,
                                                         bool& complete);

// Total elements (dimensions of -1 count as 0 for that tensor).
uint64_t count_elements(const std::vector<ExpectedTensor>& tensors);

// Diffs the file's tensors against the expected ones. Codes: MG-SHAPE-MISSING, MG-SHAPE-UNEXPECTED,
// MG-SHAPE-MISMATCH, MG-SHAPE-FSDP-SHARDED, MG-SHAPE-NOT-INVENTORIED. Returns true when everything matched.
bool compare_inventory(const std::vector<ExpectedTensor>& expected, const std::vector<FoundTensor>& found,
                       const std::string& file, Findings& findings, const InventoryRules& rules = {});

// "{0-3,5,7-9}" for {0,1,2,3,5,7,8,9}; "{4}" for one value. Input in any order, duplicates ignored.
std::string collapse_ranges(std::vector<int64_t> values);
// "[2048, 128]"
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace mgcheck::format
