// Fuzz target: the whole `quick` pipeline on an in-memory export, through the same run_quick_checks that
// `mgcheck quick` and `deep` run (harness/src/quick.cc) — only the bytes come from memory (MemoryFiles)
// instead of the disk. Input = state_dict.bin, separator, compression_state_dict.bin: two parts are an
// export directory, one part is a lone file checked in the role its content says. The byte pass reads
// in small chunks with two threads, so records and tensors straddle many read and group boundaries.
// Oracle, not just a crash check: for each file read, the mapped route the byte pass replaced (CRCs
// inside read_checkpoint, scan_weights over the mapping) must give the same CRC and weights findings.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <tuple>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/weights_scan.h"
#include "mgcheck/harness/quick.h"
#include "split_input.h"

namespace {

using namespace mgcheck;

using Keys = std::multiset<std::tuple<std::string, uint64_t, std::string, std::string>>;

// CRC and weights findings of one file.
Keys crc_and_weights(const format::Findings& f, const std::string& path) {
  Keys k;
  for (const auto& x : f.items())
    if (x.file == path && (x.code.rfind("MG-ZIP-CRC", 0) == 0 || x.code.rfind("MG-WEIGHTS-", 0) == 0))
      k.insert({x.code, x.offset.value_or(UINT64_MAX), x.name, x.message});
  return k;
}

void check_mapped_route(const harness::LoadedFile& f, format::FileRole role, const harness::Report& report) {
  if (!f.checkpoint || !f.source) return;
  // A file checked twice (a `pretrained` reference naming the other file) has its findings twice.
  size_t times = 0;
  for (const auto& fi : report.files) times += fi.path == f.path;
  if (times != 1) return;
  format::Findings mapped;
  mapped.set_cap(static_cast<size_t>(report.limits.max_findings));
  auto ck = format::read_checkpoint(*f.source, report.limits, format::ReadOptions{}, mapped);
  if (!ck) std::abort();  // it succeeded without CRCs; CRC findings are never fatal
  if (f.info.best_state_ok) {
    format::WeightsScanOptions wo;
    wo.expected_float_dtype = role == format::FileRole::lm ? format::DType::float16 : format::DType::float32;
    wo.path_prefix = f.info.best_state_prefix;
    (void)format::scan_weights(*ck, wo, mapped);
  }
  if (report.findings.dropped() != 0 || mapped.dropped() != 0 || report.findings.has_code("MG-IO-READ")) return;
  if (crc_and_weights(report.findings, f.path) != crc_and_weights(mapped, f.path)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = fuzz::split_input(data, size, 2);
  harness::MemoryFiles files;
  format::Target target;
  target.lm_path = "state_dict.bin";
  target.lm_exists = true;
  files.add(target.lm_path, parts[0]);
  if (parts.size() > 1) {
    target.kind = format::TargetKind::directory;
    target.arg = "export";
    target.compression_path = "compression_state_dict.bin";
    target.compression_exists = true;
    files.add(target.compression_path, parts[1]);
  } else {
    target.kind = format::TargetKind::file;
    target.arg = target.compression_path = target.lm_path;
  }
  harness::QuickOptions opts;
  opts.env = format::Env{};  // `pretrained` names resolve against nothing (no HF cache), as offline
  opts.hash = false;
  opts.byte_pass_chunk_bytes = 256;
  opts.byte_pass_threads = 2;  // the group cut and the ordered merge of findings are checked by the oracle
  opts.byte_pass_parallel_min_bytes = 0;
  harness::Report report;
  report.limits.max_pickle_opcodes = 1000000;
  report.findings.set_cap(static_cast<size_t>(report.limits.max_findings));
  harness::QuickResult q = harness::run_quick_checks(target, files, opts, report);
  check_mapped_route(q.lm, format::FileRole::lm, report);
  check_mapped_route(q.compression, format::FileRole::compression, report);
  return 0;
}
