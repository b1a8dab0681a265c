// Fuzz target: the whole `quick` pipeline on an in-memory export. Input = state_dict.bin, separator,
// compression_state_dict.bin. The orchestration mirrors harness/src/quick.cc with the format API only
// (read, schema, xp.cfg, typed configs, inventory, weights scan, cross-file consistency); no filesystem,
// no harness, no report.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/configs.h"
#include "mgcheck/format/inventory.h"
#include "mgcheck/format/schema.h"
#include "mgcheck/format/weights_scan.h"
#include "mgcheck/format/xpcfg.h"
#include "split_input.h"

namespace {

using namespace mgcheck::format;

struct Checked {
  std::optional<LmConfig> lm;
  std::optional<CompressionConfig> compression;
};

std::vector<FoundTensor> found_tensors(const Checkpoint& ck, const std::string& prefix) {
  std::vector<FoundTensor> out;
  for (const auto& n : ck.named)
    if (n.path.rfind(prefix, 0) == 0) out.push_back({n.path.substr(prefix.size()), ck.tensors.at(n.tensor).sizes});
  return out;
}

void check_one(std::span<const uint8_t> bytes, FileRole role, Checked& out, const Limits& limits) {
  MemorySource src(bytes.data(), bytes.size(), role == FileRole::lm ? "state_dict.bin" : "compression_state_dict.bin");
  Findings findings;
  findings.set_cap(limits.max_findings);
  auto ck = read_checkpoint(src, limits, ReadOptions{}, findings);
  if (!ck) return;
  // An empty Env: `pretrained` names resolve against nothing (no HF cache), as on an offline machine.
  ExportInfo info = role == FileRole::lm ? classify_and_check_lm(*ck, findings)
                                         : classify_and_check_compression(*ck, Env{}, findings);
  std::vector<ExpectedTensor> expected;
  InventoryRules rules;
  if (info.xp_cfg && (info.kind == ExportKind::lm_export || info.kind == ExportKind::compression_export)) {
    auto cfg = XpCfg::parse(*info.xp_cfg, src.name());
    if (cfg && role == FileRole::lm) {
      if (auto c = lm_config_from_xpcfg(*cfg, findings)) {
        out.lm = *c;
        expected = expected_lm_tensors(*c);
        rules = lm_inventory_rules(*c);
        (void)count_elements(expected);
      }
    } else if (cfg) {
      if (auto c = compression_config_from_xpcfg(*cfg, findings)) {
        out.compression = *c;
        expected = expected_compression_tensors(*c);
      }
    }
  }
  if (!expected.empty() && info.best_state_ok)
    (void)compare_inventory(expected, found_tensors(*ck, info.best_state_prefix), src.name(), findings, rules);
  if (info.best_state_ok) {
    WeightsScanOptions wo;
    wo.expected_float_dtype = role == FileRole::lm ? DType::float16 : DType::float32;
    wo.path_prefix = info.best_state_prefix;
    (void)scan_weights(*ck, wo, findings);
  }
  (void)looks_like_training_checkpoint(*ck);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = mgcheck::fuzz::split_input(data, size, 2);
  Limits limits;
  limits.max_pickle_opcodes = 1000000;
  Checked c;
  check_one(parts[0], FileRole::lm, c, limits);
  if (parts.size() > 1) check_one(parts[1], FileRole::compression, c, limits);
  if (c.lm && c.compression) {
    Findings findings;
    check_consistency(*c.lm, *c.compression, findings, "state_dict.bin", "compression_state_dict.bin");
  }
  return 0;
}
