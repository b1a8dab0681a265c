// Fuzz target: the whole `quick` pipeline on an in-memory export. Input = state_dict.bin, separator,
// compression_state_dict.bin. The orchestration mirrors harness/src/quick.cc with the format API only
// (read, schema, xp.cfg, typed configs, inventory, weights scan, cross-file consistency); no filesystem,
// no harness, no report. As in quick.cc the CRCs and the weights scan come from one byte_pass (small
// reads here, so records and tensors straddle many read boundaries); the mapped route it replaced
// (CRCs inside read_checkpoint, scan_weights over the mapping) runs too, and any difference in their
// CRC or weights findings aborts: an oracle, not just a crash check.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "mgcheck/format/byte_pass.h"
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
  ReadOptions no_crc;
  no_crc.verify_crc = false;
  auto ck = read_checkpoint(src, limits, no_crc, findings);
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
  BytePassOptions bo;
  bo.chunk_bytes = 256;
  bo.threads = 2;  // the group cut and the ordered merge of findings are checked by the oracle below
  bo.parallel_min_bytes = 0;
  bo.scan = info.best_state_ok;
  bo.path_prefix = info.best_state_prefix;
  BytePass pass = byte_pass(src, *ck, bo, findings);
  WeightsScanOptions wo;
  wo.expected_float_dtype = role == FileRole::lm ? DType::float16 : DType::float32;
  wo.path_prefix = info.best_state_prefix;
  if (info.best_state_ok) {
    WeightsScanOptions pre = wo;
    pre.precomputed = &pass.counts;
    (void)scan_weights(*ck, pre, findings);
  }
  (void)looks_like_training_checkpoint(*ck);

  // Oracle: the mapped route gives the same CRC and weights findings.
  Findings mapped;
  mapped.set_cap(limits.max_findings);
  auto ck2 = read_checkpoint(src, limits, ReadOptions{}, mapped);
  if (!ck2) std::abort();  // it succeeded without CRCs; CRC findings are never fatal
  if (info.best_state_ok) (void)scan_weights(*ck2, wo, mapped);
  if (findings.dropped() == 0 && mapped.dropped() == 0 && !pass.read_failed) {
    auto keys = [](const Findings& f) {
      std::multiset<std::tuple<std::string, uint64_t, std::string, std::string>> k;
      for (const auto& x : f.items())
        if (x.code.rfind("MG-ZIP-CRC", 0) == 0 || x.code.rfind("MG-WEIGHTS-", 0) == 0)
          k.insert({x.code, x.offset.value_or(UINT64_MAX), x.name, x.message});
      return k;
    };
    if (keys(findings) != keys(mapped)) std::abort();
  }
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
