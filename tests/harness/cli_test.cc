// End-to-end tests of the `mgcheck` binary (inspect, quick) on the bundled fixtures and on files written
// by Python torch at test time: verdicts, exit codes (contract §3) and the report formats (§6).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "test_support.h"

namespace fs = std::filesystem;
using mgcheck::test::fixture_dir;
using mgcheck::test::mgcheck_binary;
using mgcheck::test::read_text;
using mgcheck::test::run_process;
using mgcheck::test::run_python;
using mgcheck::test::TempDir;
using nlohmann::json;

namespace {

const char* kFixtures[] = {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"};

json run_json(const std::vector<std::string>& args, int expected_exit) {
  std::vector<std::string> argv = {mgcheck_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--json");
  argv.push_back("-");
  auto r = run_process(argv);
  EXPECT_EQ(r.exit_code, expected_exit) << r.err << r.out.substr(0, 2000);
  json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "stdout is not JSON: " << r.out.substr(0, 500);
  return j;
}

bool has_code(const json& report, const std::string& code) {
  for (const auto& f : report["findings"])
    if (f["code"] == code) return true;
  return false;
}

void expect_contract_fields(const json& j) {
  for (const char* k : {"tool", "tool_version", "command", "target", "verdict", "exit_code", "findings", "files",
                        "model", "cells", "reference", "limits", "environment"})
    EXPECT_TRUE(j.contains(k)) << "missing field " << k;
  EXPECT_EQ(j["tool"], "mgcheck");
  for (const auto& f : j["findings"])
    for (const char* k : {"code", "severity", "file", "offset", "name", "message", "hint"})
      EXPECT_TRUE(f.contains(k)) << "finding without " << k << ": " << f.dump();
  for (const auto& f : j["files"])
    for (const char* k : {"path", "bytes", "sha256", "format", "tensors"}) EXPECT_TRUE(f.contains(k)) << k;
  EXPECT_TRUE(j["limits"].contains("max_pickle_opcodes"));
}

}  // namespace

TEST(Cli, InspectEveryFixtureFilePasses) {
  for (const char* fx : kFixtures) {
    for (const auto& e : fs::directory_iterator(fixture_dir(fx))) {
      std::string name = e.path().filename().string();
      if (name == "case.json" || name == "training_checkpoint_lm.th") continue;
      json j = run_json({"inspect", e.path().string()}, 0);
      EXPECT_EQ(j["verdict"], "pass") << e.path();
      expect_contract_fields(j);
      ASSERT_EQ(j["files"].size(), 1u);
      EXPECT_EQ(j["files"][0]["format"], "zip");
      EXPECT_EQ(j["files"][0]["sha256"].get<std::string>().size(), 64u);
      EXPECT_TRUE(j["inspect"]["tensors"].is_array());
    }
  }
}

TEST(Cli, InspectNamesOmegaconfGlobalsOfTrainingCheckpointAndFails) {
  json j = run_json({"inspect", fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th"}, 1);
  EXPECT_EQ(j["verdict"], "fail");
  EXPECT_TRUE(has_code(j, "MG-SCHEMA-TRAINING-CHECKPOINT"));
  std::set<std::string> inert;
  for (const auto& g : j["inspect"]["globals"])
    if (g["class"] == "inert") inert.insert(g["name"]);
  EXPECT_TRUE(inert.count("omegaconf.dictconfig.DictConfig"));
  EXPECT_TRUE(inert.count("omegaconf.listconfig.ListConfig"));
  EXPECT_TRUE(inert.count("omegaconf.nodes.AnyNode"));
}

TEST(Cli, InspectTensorsAgreeWithPythonTorch) {
  // The tensor table printed by inspect equals what torch.load reports for the same file.
  std::string file = fixture_dir("a_small_like") + "/state_dict.bin";
  auto py = run_python(R"(
import sys, json, torch
sd = torch.load(sys.argv[1], map_location='cpu')['best_state']
print(json.dumps({k: {'dtype': str(v.dtype).replace('torch.', ''), 'shape': list(v.shape), 'strides': list(v.stride())} for k, v in sd.items()}))
)", {file});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  json expected = json::parse(py.out);
  json j = run_json({"inspect", file}, 0);
  ASSERT_EQ(j["inspect"]["tensors"].size(), expected.size());
  for (const auto& t : j["inspect"]["tensors"]) {
    std::string key = t["name"].get<std::string>().substr(std::string("best_state/").size());
    ASSERT_TRUE(expected.contains(key)) << key;
    EXPECT_EQ(t["dtype"], expected[key]["dtype"]) << key;
    EXPECT_EQ(t["shape"], expected[key]["shape"]) << key;
    EXPECT_EQ(t["strides"], expected[key]["strides"]) << key;
  }
}

TEST(Cli, QuickPassesOnEveryRunnableFixture) {
  for (const char* fx : {"a_small_like", "c_stereo_like", "e_encodec_reflect"}) {
    json j = run_json({"quick", fixture_dir(fx)}, 0);
    EXPECT_EQ(j["verdict"], "pass") << fx;
    expect_contract_fields(j);
    EXPECT_EQ(j["files"].size(), 2u);
    EXPECT_TRUE(j["model"].contains("lm")) << fx;
    EXPECT_TRUE(j["model"].contains("compression")) << fx;
  }
}

TEST(Cli, QuickWarnsWhereAudiocraftDefaultTopKExceedsCard) {
  json small = run_json({"quick", fixture_dir("a_small_like")}, 0);  // card 256 ≥ 250
  EXPECT_FALSE(has_code(small, "MG-CONFIG-TOPK-EXCEEDS-CARD"));
  json stereo = run_json({"quick", fixture_dir("c_stereo_like")}, 0);  // card 64 < 250
  EXPECT_TRUE(has_code(stereo, "MG-CONFIG-TOPK-EXCEEDS-CARD"));
  run_json({"quick", fixture_dir("c_stereo_like"), "--strict"}, 1);  // a warning fails under --strict
}

TEST(Cli, QuickFailsOnUnresolvablePretrainedReferenceOffline) {
  TempDir empty_cache("hf-empty");
  setenv("HF_HUB_CACHE", empty_cache.path().c_str(), 1);
  json j = run_json({"quick", fixture_dir("e_pretrained_ref")}, 1);
  unsetenv("HF_HUB_CACHE");
  EXPECT_TRUE(has_code(j, "MG-SCHEMA-PRETRAINED-UNRESOLVED"));
  for (const auto& f : j["findings"])
    if (f["code"] == "MG-SCHEMA-PRETRAINED-UNRESOLVED")
      EXPECT_NE(f["message"].get<std::string>().find("network"), std::string::npos);
}

TEST(Cli, QuickOnTrainingCheckpointSaysExportFirst) {
  TempDir dir("train");
  fs::copy_file(fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th", dir.file("state_dict.bin"));
  fs::copy_file(fixture_dir("e_encodec_reflect") + "/compression_state_dict.bin",
                dir.file("compression_state_dict.bin"));
  json j = run_json({"quick", dir.path()}, 1);
  ASSERT_TRUE(has_code(j, "MG-SCHEMA-TRAINING-CHECKPOINT"));
  for (const auto& f : j["findings"])
    if (f["code"] == "MG-SCHEMA-TRAINING-CHECKPOINT")
      EXPECT_NE(f["hint"].get<std::string>().find("mgcheck export lm"), std::string::npos) << f.dump();
}

TEST(Cli, MaliciousPickleIsUnsafeAndNothingRuns) {
  TempDir dir("evil");
  std::string marker = dir.file("pwned");
  // A zip-format torch file whose data.pkl calls os.system (GLOBAL + REDUCE) and builtins.eval.
  auto py = run_python(R"(
import sys, io, zipfile, torch
buf = io.BytesIO(); torch.save({'w': torch.ones(2)}, buf)
src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
marker = sys.argv[2]
evil = (b"\x80\x02cposix\nsystem\nq\x00X" + len('touch ' + marker).to_bytes(4, 'little') + ('touch ' + marker).encode()
        + b"\x85R" + b"cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R" + b"\x86.")
out = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED)
for n in src.namelist():
    out.writestr(n, evil if n.endswith('data.pkl') else src.read(n))
out.close()
)", {dir.file("evil.pt"), marker});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  json j = run_json({"inspect", dir.file("evil.pt")}, 2);
  EXPECT_EQ(j["verdict"], "unsafe");
  std::string all = j["findings"].dump();
  EXPECT_NE(all.find("posix.system"), std::string::npos) << all;
  EXPECT_NE(all.find("builtins.eval"), std::string::npos) << all;
  EXPECT_FALSE(fs::exists(marker)) << "the payload ran";
}

TEST(Cli, UsageErrorsExitThree) {
  EXPECT_EQ(run_process({mgcheck_binary(), "inspect", "/no/such/file.pt"}).exit_code, 3);
  EXPECT_EQ(run_process({mgcheck_binary(), "quick", "/no/such/dir"}).exit_code, 3);
  EXPECT_EQ(run_process({mgcheck_binary(), "quick", "https://example.invalid/model"}).exit_code, 3);
  EXPECT_EQ(run_process({mgcheck_binary(), "quick"}).exit_code, 3);
  EXPECT_EQ(run_process({mgcheck_binary(), "frobnicate"}).exit_code, 3);
  EXPECT_EQ(run_process({mgcheck_binary(), "quick", fixture_dir("a_small_like"), "--limit", "nonsense"}).exit_code, 3);
  // A usage error still yields a valid JSON report.
  json j = run_json({"quick", "/no/such/dir"}, 3);
  EXPECT_EQ(j["verdict"], "usage");
  EXPECT_EQ(j["exit_code"], 3);
}

TEST(Cli, HelpTeaches) {
  auto r = run_process({mgcheck_binary(), "quick", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"TARGET", "--json", "--junit", "--sarif", "--strict", "--limit", "Exit 0"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  auto l = run_process({mgcheck_binary(), "--help-limits"});
  EXPECT_EQ(l.exit_code, 0);
  EXPECT_NE(l.out.find("max_pickle_opcodes"), std::string::npos);
}

TEST(Cli, LimitsAreEchoedAndApplied) {
  // EnCodec's conv weights are rank 3: at max_rank=3 they pass, at 2 they are refused.
  json at = run_json({"quick", fixture_dir("a_small_like"), "--limit", "max_rank=3"}, 0);
  EXPECT_EQ(at["limits"]["max_rank"], 3);
  json past = run_json({"quick", fixture_dir("a_small_like"), "--limit", "max_rank=2"}, 1);
  EXPECT_EQ(past["limits"]["max_rank"], 2);
}

TEST(Cli, JunitAndSarifValidate) {
  TempDir dir("reports");
  std::string target = fixture_dir("e_pretrained_ref");  // has an error finding
  auto r = run_process({mgcheck_binary(), "quick", target, "--junit", dir.file("j.xml"), "--sarif",
                        dir.file("s.sarif"), "--json", dir.file("r.json")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto lint = run_process({"xmllint", "--noout", dir.file("j.xml")});
  EXPECT_EQ(lint.exit_code, 0) << lint.err;
  std::string xml = read_text(dir.file("j.xml"));
  json report = json::parse(read_text(dir.file("r.json")));
  std::regex tc("<testcase ");
  auto n = std::distance(std::sregex_iterator(xml.begin(), xml.end(), tc), std::sregex_iterator());
  EXPECT_GE(n, 8);  // one per check that ran (IO … WEIGHTS)
  EXPECT_NE(xml.find("MG-SCHEMA-PRETRAINED-UNRESOLVED"), std::string::npos);
  json sarif = json::parse(read_text(dir.file("s.sarif")));
  EXPECT_EQ(sarif["version"], "2.1.0");
  ASSERT_EQ(sarif["runs"].size(), 1u);
  EXPECT_EQ(sarif["runs"][0]["results"].size(), report["findings"].size());
  for (const auto& res : sarif["runs"][0]["results"]) EXPECT_TRUE(res["ruleId"].get<std::string>().rfind("MG-", 0) == 0);
}

TEST(Cli, ExportLmFromTrainingCheckpointThenQuickPasses) {
  TempDir out("export");
  std::string ckpt = fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th";
  auto r = run_process({mgcheck_binary(), "export", "lm", ckpt, out.path(), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // AudioCraft's own export of the same checkpoint is the fixture's state_dict.bin: same keys, same bytes.
  auto py = run_python(R"(
import sys, torch
a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)
assert a['xp.cfg'] == b['xp.cfg'], 'xp.cfg differs'
assert list(a['best_state']) == list(b['best_state']), 'keys differ'
for k in a['best_state']:
    x, y = a['best_state'][k], b['best_state'][k]
    assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y), k
assert a['exported'] is True and isinstance(a['version'], str)
)", {out.file("state_dict.bin"), fixture_dir("e_encodec_reflect") + "/state_dict.bin"});
  EXPECT_EQ(py.exit_code, 0) << py.err;
  fs::copy_file(fixture_dir("e_encodec_reflect") + "/compression_state_dict.bin",
                out.file("compression_state_dict.bin"));
  json j = run_json({"quick", out.path()}, 0);
  EXPECT_EQ(j["verdict"], "pass");
  // Never overwrites without --force.
  EXPECT_EQ(run_process({mgcheck_binary(), "export", "lm", ckpt, out.path(), "--quiet"}).exit_code, 1);
  EXPECT_EQ(run_process({mgcheck_binary(), "export", "lm", ckpt, out.path(), "--quiet", "--force"}).exit_code, 0);
}

TEST(Cli, StereoWeightsUnderMonoConfigAreNamed) {
  // A stereo LM (8 codebooks) whose xp.cfg was edited to a mono layout: emb.4-7 / linears.4-7 are unexpected.
  TempDir dir("stereo-mono");
  auto py = run_python(R"(
import sys, re, torch
d = torch.load(sys.argv[1], map_location='cpu')
cfg = d['xp.cfg']
cfg = re.sub(r'(?m)^(transformer_lm:\n(?:  .*\n)*?)  n_q: 8$', r'\1  n_q: 4', cfg)
cfg = re.sub(r'(?m)^(interleave_stereo_codebooks:\n)  use: true$', r'\1  use: false', cfg)
cfg = re.sub(r'(?m)^channels: 2$', 'channels: 1', cfg)
cfg = cfg.replace('- 0\n    - 0\n    - 1\n    - 1\n    - 2\n    - 2\n    - 3\n    - 3', '- 0\n    - 1\n    - 2\n    - 3')
assert cfg != d['xp.cfg']
d['xp.cfg'] = cfg
torch.save(d, sys.argv[2])
)", {fixture_dir("c_stereo_like") + "/state_dict.bin", dir.file("state_dict.bin")});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  fs::copy_file(fixture_dir("c_stereo_like") + "/compression_state_dict.bin", dir.file("compression_state_dict.bin"));
  json j = run_json({"quick", dir.path()}, 1);
  ASSERT_TRUE(has_code(j, "MG-SHAPE-UNEXPECTED")) << j["findings"].dump(1);
  bool named = false;
  for (const auto& f : j["findings"])
    if (f["code"] == "MG-SHAPE-UNEXPECTED" && f.dump().find("emb.{4-7}") != std::string::npos) named = true;
  EXPECT_TRUE(named) << j["findings"].dump(1);
}

TEST(Cli, CardMismatchBetweenFilesFails) {
  // The LM of a_small_like (card 256) next to the EnCodec of c_stereo_like (64 bins).
  TempDir dir("card");
  fs::copy_file(fixture_dir("a_small_like") + "/state_dict.bin", dir.file("state_dict.bin"));
  fs::copy_file(fixture_dir("c_stereo_like") + "/compression_state_dict.bin", dir.file("compression_state_dict.bin"));
  json j = run_json({"quick", dir.path()}, 1);
  EXPECT_TRUE(has_code(j, "MG-CONFIG-MISMATCH-CARD")) << j["findings"].dump(1);
}

TEST(Cli, MissingFilesFail) {
  TempDir lm_only("lm-only"), comp_only("comp-only");
  fs::copy_file(fixture_dir("a_small_like") + "/state_dict.bin", lm_only.file("state_dict.bin"));
  fs::copy_file(fixture_dir("a_small_like") + "/compression_state_dict.bin",
                comp_only.file("compression_state_dict.bin"));
  EXPECT_TRUE(has_code(run_json({"quick", lm_only.path()}, 1), "MG-SCHEMA-MISSING-FILE"));
  EXPECT_TRUE(has_code(run_json({"quick", comp_only.path()}, 1), "MG-SCHEMA-MISSING-FILE"));
}
