// run_quick_checks, the one quick pipeline behind `mgcheck quick`, `deep` and the fuzz target: the same
// export gives the same report whether its bytes come from the disk (run_quick) or from memory
// (MemoryFiles, what fuzz_quick feeds), damaged or not; and findings the CLI route reports (an xp.cfg that
// does not parse, a missing file) are reported from memory too.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "mgcheck/format/writer.h"
#include "mgcheck/harness/quick.h"
#include "test_support.h"

namespace mgcheck {
namespace {

using Row = std::tuple<std::string, std::string, uint64_t, std::string, std::string>;

std::vector<Row> rows(const harness::Report& r) {
  std::vector<Row> out;
  for (const auto& f : r.findings.items())
    out.emplace_back(f.code, f.file, f.offset.value_or(UINT64_MAX), f.name, f.message);
  return out;
}

std::vector<std::tuple<std::string, uint64_t, std::string, uint64_t>> files_of(const harness::Report& r) {
  std::vector<std::tuple<std::string, uint64_t, std::string, uint64_t>> out;
  for (const auto& f : r.files) out.emplace_back(f.path, f.bytes, f.format, f.tensors);
  return out;
}

// Writes the pair into a fresh directory, runs quick on it from the disk and from memory, and checks
// both reports agree on findings, files, model summary and inventory outcome. Returns the disk report.
harness::Report disk_and_memory_agree(const std::vector<uint8_t>& lm, const std::vector<uint8_t>& comp) {
  test::TempDir dir("quick-routes");
  test::write_file(dir.file("state_dict.bin"), lm);
  test::write_file(dir.file("compression_state_dict.bin"), comp);
  harness::QuickOptions opts;
  opts.hash = false;
  harness::Report disk;
  harness::QuickResult qd = harness::run_quick(dir.path(), opts, disk);
  EXPECT_TRUE(qd.resolved);
  if (!qd.resolved) return disk;

  harness::MemoryFiles files;
  files.add(qd.target->lm_path, lm);
  files.add(qd.target->compression_path, comp);
  harness::Report mem;
  harness::QuickResult qm = harness::run_quick_checks(*qd.target, files, opts, mem);
  EXPECT_EQ(rows(disk), rows(mem));
  EXPECT_EQ(files_of(disk), files_of(mem));
  EXPECT_EQ(disk.model, mem.model);
  EXPECT_EQ(disk.checks_run, mem.checks_run);
  EXPECT_EQ(disk.verdict(), mem.verdict());
  EXPECT_EQ(qd.lm_ready(), qm.lm_ready());
  EXPECT_EQ(qd.compression_ready(), qm.compression_ready());
  return disk;
}

TEST(QuickRoutes, DiskAndMemoryAgreeOnAValidExport) {
  for (const char* fx : {"a_small_like", "c_stereo_like"}) {
    SCOPED_TRACE(fx);
    auto lm = test::read_file(test::fixture_dir(fx) + "/state_dict.bin");
    auto comp = test::read_file(test::fixture_dir(fx) + "/compression_state_dict.bin");
    harness::Report r = disk_and_memory_agree(lm, comp);
    EXPECT_FALSE(r.findings.has_errors());
    EXPECT_TRUE(r.model.contains("lm") && r.model.contains("compression"));
  }
}

TEST(QuickRoutes, DiskAndMemoryAgreeOnDamagedBytes) {
  auto lm = test::read_file(test::fixture_dir("a_small_like") + "/state_dict.bin");
  auto comp = test::read_file(test::fixture_dir("a_small_like") + "/compression_state_dict.bin");
  // Tensor data makes up most of each file: bytes in the middle belong to a weight record, so its CRC
  // fails, and 0xFF bytes in a float make NaN or huge values the weights scan reports.
  for (size_t i = 0; i < 8; ++i) lm[lm.size() / 2 + i] = 0xFF;
  for (size_t i = 0; i < 8; ++i) comp[comp.size() / 2 + i] = 0xFF;
  harness::Report r = disk_and_memory_agree(lm, comp);
  EXPECT_TRUE(r.findings.has_code("MG-ZIP-CRC"));
  EXPECT_TRUE(r.findings.has_errors());
}

// Both files fail with the same fatal code: each file's finding is reported, naming its own file (a
// fatal finding is returned by the reader and pushed once by the pipeline, never deduplicated by code).
TEST(QuickRoutes, SameFatalCodeInBothFilesIsReportedForEach) {
  auto lm = test::read_file(test::fixture_dir("a_small_like") + "/state_dict.bin");
  auto comp = test::read_file(test::fixture_dir("a_small_like") + "/compression_state_dict.bin");
  lm.resize(1000);  // both truncated: no end-of-central-directory record
  comp.resize(1000);
  harness::Report r = disk_and_memory_agree(lm, comp);
  std::vector<std::string> files;
  for (const auto& f : r.findings.items())
    if (f.code == "MG-ZIP-NO-EOCD") files.push_back(f.file);
  ASSERT_EQ(files.size(), 2u) << "findings: " << r.findings.size();
  EXPECT_NE(files[0], files[1]);
  EXPECT_TRUE(files[0].ends_with("state_dict.bin")) << files[0];
  EXPECT_TRUE((files[0].ends_with("/state_dict.bin") && files[1].ends_with("compression_state_dict.bin")) ||
              (files[1].ends_with("/state_dict.bin") && files[0].ends_with("compression_state_dict.bin")))
      << files[0] << " " << files[1];
}

std::vector<uint8_t> lm_file_with_xp_cfg(const std::string& cfg) {
  format::WDict best_state;
  best_state.emplace_back("emb.0.weight", format::make_tensor(format::DType::float16, {4, 2},
                                                              std::vector<uint8_t>(16, 0x3c)));
  format::WDict root;
  root.emplace_back("best_state", best_state);
  root.emplace_back("xp.cfg", cfg);
  root.emplace_back("version", std::string("1.4.0a2"));
  root.emplace_back("exported", true);
  auto bytes = format::write_torch_save(root, format::WriteOptions{});
  EXPECT_TRUE(bytes);
  return bytes ? bytes.value() : std::vector<uint8_t>{};
}

// Runs quick's shared pipeline on `lm` from memory as the lone file "state_dict.bin".
harness::QuickResult quick_lone_lm_file(const std::vector<uint8_t>& lm, harness::Report& r) {
  harness::MemoryFiles files;
  files.add("state_dict.bin", lm);
  format::Target t;
  t.kind = format::TargetKind::file;
  t.arg = t.lm_path = t.compression_path = "state_dict.bin";
  t.lm_exists = true;
  harness::QuickOptions opts;
  opts.hash = false;
  return harness::run_quick_checks(t, files, opts, r);
}

TEST(QuickRoutes, AnXpCfgThatDoesNotParseIsReportedFromMemory) {
  auto lm = lm_file_with_xp_cfg("- a list\n- is not a mapping\n");
  harness::Report r;
  harness::QuickResult q = quick_lone_lm_file(lm, r);
  EXPECT_TRUE(q.single_file);
  bool found = false;
  for (const auto& f : r.findings.items()) found = found || (f.code == "MG-CONFIG-YAML" && f.file == "state_dict.bin");
  EXPECT_TRUE(found);
  EXPECT_FALSE(q.lm_config.has_value());
  EXPECT_EQ(r.verdict(), harness::Verdict::fail);
}

// The typed-config derivation returns a fatal finding without pushing it; quick pushes it once.
TEST(QuickRoutes, AFatalConfigFindingIsReportedOnce) {
  auto lm = lm_file_with_xp_cfg("lm_model: transformer_xl\ntransformer_lm:\n  dim: 4\n");
  harness::Report r;
  harness::QuickResult q = quick_lone_lm_file(lm, r);
  size_t n = 0;
  for (const auto& f : r.findings.items()) n += f.code == "MG-CONFIG-UNKNOWN-LM-MODEL";
  EXPECT_EQ(n, 1u);
  EXPECT_FALSE(q.lm_config.has_value());
  EXPECT_EQ(r.verdict(), harness::Verdict::fail);
}

TEST(QuickRoutes, AFileTheSourceDoesNotHoldIsMissing) {
  auto lm = test::read_file(test::fixture_dir("a_small_like") + "/state_dict.bin");
  harness::MemoryFiles files;
  files.add("x/state_dict.bin", lm);
  auto none = files.open("x/compression_state_dict.bin");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "MG-IO-OPEN");
  EXPECT_EQ(none.error().file, "x/compression_state_dict.bin");
  format::Target t;
  t.kind = format::TargetKind::directory;
  t.arg = "x";
  t.lm_path = "x/state_dict.bin";
  t.compression_path = "x/compression_state_dict.bin";
  t.lm_exists = true;
  harness::QuickOptions opts;
  opts.hash = false;
  harness::Report r;
  harness::QuickResult q = harness::run_quick_checks(t, files, opts, r);
  EXPECT_TRUE(q.lm_ready());
  EXPECT_FALSE(q.compression_ready());
  EXPECT_TRUE(r.findings.has_code("MG-SCHEMA-MISSING-FILE"));
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].path, "x/state_dict.bin");
}

}  // namespace
}  // namespace mgcheck
