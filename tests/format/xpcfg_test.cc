// xp.cfg parsing and OmegaConf-style interpolation (musicgen-model.md §2.1).
#include "mgcheck/format/xpcfg.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace mf = mgcheck::format;

namespace {

mf::XpCfg parse_ok(const std::string& text) {
  auto r = mf::XpCfg::parse(text, "test.bin");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return std::move(r).value();
}

bool has_code_named(const mf::Findings& f, const std::string& code, const std::string& name) {
  for (const auto& x : f.items())
    if (x.code == code && x.name == name) return true;
  return false;
}

}  // namespace

TEST(XpCfg, TypesScalarsLikeOmegaConf) {
  auto cfg = parse_ok(
      "a: 1\nb: true\nc: 0.0001\nd: 1.0e-08\ne: '1e-8'\nf: null\ng: hello\nh: 'true'\ni: 0x10\nj: yes\n"
      "k: 1e-8\nl: 1_000\nm: ~\nn: .5\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_int("a", f), 1);
  EXPECT_EQ(cfg.get_bool("b", f), true);
  EXPECT_DOUBLE_EQ(*cfg.get_double("c", f), 0.0001);
  EXPECT_DOUBLE_EQ(*cfg.get_double("d", f), 1e-8);
  EXPECT_EQ(cfg.get_string("e", f), "1e-8");  // quoted: a string, as PyYAML wrote it
  EXPECT_EQ(cfg.get("f", f).kind, mf::CfgValue::Kind::null);
  EXPECT_EQ(cfg.get_string("g", f), "hello");
  EXPECT_EQ(cfg.get_string("h", f), "true");
  EXPECT_EQ(cfg.get_int("i", f), 16);
  EXPECT_EQ(cfg.get_bool("j", f), true);  // YAML 1.1 boolean
  EXPECT_EQ(cfg.get("k", f).kind, mf::CfgValue::Kind::floating);  // OmegaConf's float pattern
  EXPECT_EQ(cfg.get_int("l", f), 1000);
  EXPECT_EQ(cfg.get("m", f).kind, mf::CfgValue::Kind::null);
  EXPECT_DOUBLE_EQ(*cfg.get_double("n", f), 0.5);
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(cfg.get("zzz", f).kind, mf::CfgValue::Kind::absent);
  EXPECT_FALSE(cfg.has("zzz"));
  EXPECT_TRUE(cfg.has("a"));
  EXPECT_EQ(f.size(), 0u);
}

TEST(XpCfg, WrongTypeIsAFinding) {
  auto cfg = parse_ok("a: hello\nb: 64.0\nc: 1\n");
  mf::Findings f;
  EXPECT_FALSE(cfg.get_int("a", f).has_value());
  EXPECT_TRUE(has_code_named(f, "MG-CONFIG-TYPE", "a"));
  EXPECT_FALSE(cfg.get_int("b", f).has_value());  // torch sizes refuse floats
  EXPECT_TRUE(has_code_named(f, "MG-CONFIG-TYPE", "b"));
  EXPECT_FALSE(cfg.get_bool("c", f).has_value());
  EXPECT_TRUE(has_code_named(f, "MG-CONFIG-TYPE", "c"));
}

TEST(XpCfg, SingleInterpolationKeepsTheReferencedType) {
  auto cfg = parse_ok(
      "sample_rate: 32000\nflag: false\nratio: 0.5\nlst: [1, 2, 3]\n"
      "encodec:\n  sample_rate: ${sample_rate}\n  causal: ${flag}\n  r: ${ratio}\n  l: ${lst}\n"
      "seanet:\n  causal: ${encodec.causal}\n  first: ${lst.0}\n");
  mf::Findings f;
  auto sr = cfg.get("encodec.sample_rate", f);
  EXPECT_EQ(sr.kind, mf::CfgValue::Kind::integer);
  EXPECT_EQ(sr.i, 32000);
  EXPECT_EQ(cfg.get_bool("encodec.causal", f), false);
  EXPECT_EQ(cfg.get_bool("seanet.causal", f), false);  // chained
  EXPECT_DOUBLE_EQ(*cfg.get_double("encodec.r", f), 0.5);
  auto l = cfg.get_int_list("encodec.l", f);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(*l, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(cfg.get_int("seanet.first", f), 1);
  EXPECT_EQ(f.size(), 0u);
}

TEST(XpCfg, StringInterpolationGivesAString) {
  auto cfg = parse_ok("n: 4\nr: 0.5\nb: true\nname: run\nx: a${n}b\ny: ${name}-${n}-${r}-${b}\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_string("x", f), "a4b");
  EXPECT_EQ(cfg.get_string("y", f), "run-4-0.5-True");
  EXPECT_EQ(f.size(), 0u);
}

TEST(XpCfg, PathThroughAnInterpolatedMapping) {
  auto cfg = parse_ok("base:\n  k: 7\nalias: ${base}\nuse: ${alias.k}\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_int("alias.k", f), 7);
  EXPECT_EQ(cfg.get_int("use", f), 7);
  EXPECT_EQ(f.size(), 0u);
}

TEST(XpCfg, RelativeInterpolation) {
  auto cfg = parse_ok("a:\n  x: 3\n  y: ${.x}\n  b:\n    z: ${..x}\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_int("a.y", f), 3);
  EXPECT_EQ(cfg.get_int("a.b.z", f), 3);
  EXPECT_EQ(f.size(), 0u);
}

TEST(XpCfg, OcEnvResolvedOnlyWhereRead) {
  ::setenv("MGCHECK_XPCFG_TEST_VAR", "alice", 1);
  ::unsetenv("MGCHECK_XPCFG_TEST_UNSET");
  auto cfg = parse_ok(
      "dora:\n  dir: /checkpoint/${oc.env:MGCHECK_XPCFG_TEST_UNSET}/experiments\n"
      "user: ${oc.env:MGCHECK_XPCFG_TEST_VAR}\n"
      "d: ${oc.env:MGCHECK_XPCFG_TEST_UNSET,fallback}\n"
      "n: ${oc.env:MGCHECK_XPCFG_TEST_UNSET,null}\n"
      "p: /x/${oc.env:MGCHECK_XPCFG_TEST_VAR}/y\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_string("user", f), "alice");
  EXPECT_EQ(cfg.get_string("d", f), "fallback");
  EXPECT_EQ(cfg.get("n", f).kind, mf::CfgValue::Kind::null);
  EXPECT_EQ(cfg.get_string("p", f), "/x/alice/y");
  EXPECT_EQ(f.size(), 0u);  // dora.dir was never read: no finding
  EXPECT_FALSE(cfg.get_string("dora.dir", f).has_value());
  EXPECT_TRUE(has_code_named(f, "MG-CONFIG-INTERPOLATION", "dora.dir"));
}

TEST(XpCfg, MandatoryMissingOnlyWhereRead) {
  auto cfg = parse_ok("datasource:\n  train: ???\nmodel:\n  dim: 4\n  n: ${datasource.train}\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_int("model.dim", f), 4);
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(cfg.get("datasource.train", f).kind, mf::CfgValue::Kind::error);
  EXPECT_TRUE(has_code_named(f, "MG-CONFIG-MISSING-VALUE", "datasource.train"));
  mf::Findings g;
  EXPECT_EQ(cfg.get("model.n", g).kind, mf::CfgValue::Kind::error);
  EXPECT_TRUE(has_code_named(g, "MG-CONFIG-MISSING-VALUE", "model.n"));
}

TEST(XpCfg, CyclesAreFindingsNamingTheField) {
  auto cfg = parse_ok("a: ${b}\nb: ${c}\nc: ${a}\nself: x${self}\nok: 1\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_int("ok", f), 1);
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(cfg.get("a", f).kind, mf::CfgValue::Kind::error);
  ASSERT_TRUE(has_code_named(f, "MG-CONFIG-CYCLE", "a"));
  EXPECT_NE(f.items()[0].message.find("a -> b -> c -> a"), std::string::npos) << f.items()[0].message;
  mf::Findings g;
  EXPECT_FALSE(cfg.get_string("self", g).has_value());
  EXPECT_TRUE(has_code_named(g, "MG-CONFIG-CYCLE", "self"));
}

TEST(XpCfg, UnresolvableOnlyWhereRead) {
  auto cfg = parse_ok("a: ${does.not.exist}\nb: 2\nc: ${oc.create:{}}\nd: ${b.x}\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_int("b", f), 2);
  EXPECT_EQ(f.size(), 0u);
  EXPECT_FALSE(cfg.get_int("a", f).has_value());
  EXPECT_TRUE(has_code_named(f, "MG-CONFIG-INTERPOLATION", "a"));
  mf::Findings g;
  EXPECT_EQ(cfg.get("c", g).kind, mf::CfgValue::Kind::error);
  EXPECT_TRUE(has_code_named(g, "MG-CONFIG-INTERPOLATION", "c"));
  mf::Findings h;
  EXPECT_EQ(cfg.get("d", h).kind, mf::CfgValue::Kind::error);
  EXPECT_TRUE(has_code_named(h, "MG-CONFIG-INTERPOLATION", "d"));
}

TEST(XpCfg, EscapedInterpolationIsLiteral) {
  auto cfg = parse_ok("a: '\\${x}'\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_string("a", f), "${x}");
  EXPECT_EQ(f.size(), 0u);
}

TEST(XpCfg, YamlSyntaxErrorHasLineAndColumn) {
  auto r = mf::XpCfg::parse("a: 1\nb: [1, 2\nc: 3\n", "bad.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "MG-CONFIG-YAML");
  EXPECT_NE(r.error().message.find("line "), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("column "), std::string::npos);
  EXPECT_EQ(r.error().file, "bad.bin");
}

TEST(XpCfg, RejectsNonMappingDuplicatesAndTags) {
  EXPECT_EQ(mf::XpCfg::parse("- 1\n- 2\n", "x").error().code, "MG-CONFIG-YAML");
  EXPECT_EQ(mf::XpCfg::parse("a: 1\na: 2\n", "x").error().code, "MG-CONFIG-YAML");
  EXPECT_EQ(mf::XpCfg::parse("a: !!python/object:os.system x\n", "x").error().code, "MG-CONFIG-YAML");
  EXPECT_TRUE(mf::XpCfg::parse("", "x").ok());  // OmegaConf.create("") is {}
}

TEST(XpCfg, BillionLaughsIsBounded) {
  std::string y = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i) {
    y += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) y += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
    y += "]\n";
  }
  auto r = mf::XpCfg::parse(y, "bomb.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "MG-CONFIG-TOO-LARGE");
  EXPECT_EQ(r.error().impact, mf::Impact::unsafe);
}

TEST(XpCfg, DeepNestingAndHugeTextAreBounded) {
  std::string deep(5000, '[');
  deep = "a: " + deep + std::string(5000, ']') + "\n";
  auto r = mf::XpCfg::parse(deep, "deep.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().code == "MG-CONFIG-YAML" || r.error().code == "MG-CONFIG-TOO-LARGE") << r.error().code;
  mf::Limits lim;
  lim.max_config_bytes = 16;
  auto big = mf::XpCfg::parse("a: 1234567890123456789\n", "big.bin", lim);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, "MG-CONFIG-TOO-LARGE");
}

TEST(XpCfg, StringInterpolationGrowthIsBounded) {
  // A 32 KiB seed reaches max_config_string_bytes (1 MiB) at s6, within the document's step budget (a
  // 32-byte seed would need 2^17 steps and stop at max_config_interpolation_steps first).
  std::string y = "s0: " + std::string(32 << 10, 'x') + "\n";
  for (int i = 1; i < 30; ++i)
    y += "s" + std::to_string(i) + ": ${s" + std::to_string(i - 1) + "}${s" + std::to_string(i - 1) + "}\n";
  auto cfg = parse_ok(y);
  mf::Findings f;
  EXPECT_FALSE(cfg.get_string("s29", f).has_value());
  EXPECT_TRUE(has_code_named(f, "MG-CONFIG-INTERPOLATION", "s29"));
}

TEST(XpCfg, LongChainsAreBounded) {
  std::string y = "v0: 1\n";
  for (int i = 1; i < 100; ++i) y += "v" + std::to_string(i) + ": ${v" + std::to_string(i - 1) + "}\n";
  auto cfg = parse_ok(y);
  mf::Findings f;
  EXPECT_EQ(cfg.get_int("v20", f), 1);
  EXPECT_FALSE(cfg.get_int("v99", f).has_value());
  EXPECT_TRUE(has_code_named(f, "MG-CONFIG-INTERPOLATION", "v99"));
}

// The fuzzer's xpcfg timeout (2026-12-06): every field referencing the top of a doubling chain cost the
// per-read step cap again, so a 4 KB file read from 300 fields took minutes. The budget is now per
// document: however many fields are read, the work stops at max_config_interpolation_steps, with one
// finding. (Each budget at and past its value: tests/format/limits_test.cc.)
TEST(XpCfg, InterpolationBombIsBoundedAcrossAllReads) {
  std::string y = "a0: x\n";
  for (int i = 1; i <= 20; ++i)
    y += "a" + std::to_string(i) + ": ${a" + std::to_string(i - 1) + "}${a" + std::to_string(i - 1) + "}\n";
  for (int k = 0; k < 300; ++k) y += "k" + std::to_string(k) + ": ${a20}\n";
  auto cfg = parse_ok(y);
  const mf::Limits lim;
  mf::Findings f;
  for (int k = 0; k < 300; ++k) EXPECT_FALSE(cfg.get_string("k" + std::to_string(k), f).has_value()) << k;
  size_t too_large = 0;
  for (const auto& x : f.items()) {
    if (x.code != "MG-CONFIG-TOO-LARGE") continue;
    ++too_large;
    EXPECT_EQ(x.impact, mf::Impact::unsafe);
    EXPECT_EQ(x.name, "k0");  // the read that ran out of budget
  }
  EXPECT_EQ(too_large, 1u);
  EXPECT_LE(cfg.interpolation_steps_spent(), lim.max_config_interpolation_steps + 1);
  // Once spent, cheap fields fail too: the document is refused, not half-read.
  EXPECT_FALSE(cfg.get_string("a1", f).has_value());
}

// Maps are looked up through a sorted index: many keys, in any order, each found; duplicates refused.
TEST(XpCfg, WideMappingsLookUpEveryKey) {
  std::string y = "m:\n";
  const int n = 5000;
  for (int i = 0; i < n; ++i) y += "  k" + std::to_string((i * 7919) % n) + ": " + std::to_string(i) + "\n";
  auto cfg = parse_ok(y);
  mf::Findings f;
  for (int i = 0; i < n; ++i) ASSERT_EQ(cfg.get_int("m.k" + std::to_string((i * 7919) % n), f), i) << i;
  EXPECT_FALSE(cfg.has("m.k" + std::to_string(n)));
  auto keys = cfg.keys("m", f);
  ASSERT_EQ(keys.size(), static_cast<size_t>(n));
  EXPECT_EQ(keys[1], "k2919");  // file order is kept (7919 mod 5000)
  EXPECT_TRUE(cfg.set_scalar("m.new", "1"));
  EXPECT_EQ(cfg.get_int("m.new", f), 1);
  EXPECT_TRUE(cfg.erase("m.k0"));
  EXPECT_FALSE(cfg.has("m.k0"));
  EXPECT_EQ(cfg.get_int("m.k2919", f), 1);
  EXPECT_EQ(cfg.get_int("m.new", f), 1);
  auto dup = mf::XpCfg::parse(y + "  k4999: 0\n", "dup.bin");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "MG-CONFIG-YAML");
  EXPECT_NE(dup.error().message.find("repeats the key 'k4999'"), std::string::npos) << dup.error().message;
}

// A long string in a type error is shortened, at a UTF-8 character boundary.
TEST(XpCfg, LongValuesAreShortenedInMessages) {
  auto cfg = parse_ok("dim: " + std::string(79, 'x') + "\u00e9" + std::string(200, 'y') + "\n");
  mf::Findings f;
  EXPECT_FALSE(cfg.get_int("dim", f).has_value());
  ASSERT_EQ(f.size(), 1u);
  const std::string& m = f.items()[0].message;
  EXPECT_NE(m.find("('" + std::string(79, 'x') + "... (281 bytes)')"), std::string::npos) << m;
}

TEST(XpCfg, LoaderEditsSetAndErase) {
  auto cfg = parse_ok("device: cuda\nt:\n  d: ${device}\nconditioners:\n  args:\n    drop_desc_p: 0.5\n");
  mf::Findings f;
  EXPECT_EQ(cfg.get_string("t.d", f), "cuda");
  EXPECT_TRUE(cfg.set_scalar("device", "cpu"));
  EXPECT_EQ(cfg.get_string("t.d", f), "cpu");
  EXPECT_TRUE(cfg.erase("conditioners.args.drop_desc_p"));
  EXPECT_FALSE(cfg.has("conditioners.args.drop_desc_p"));
  EXPECT_FALSE(cfg.erase("conditioners.args.nope"));
  EXPECT_EQ(cfg.keys("conditioners", f), (std::vector<std::string>{"args"}));
}

TEST(XpCfg, SplitPath) {
  EXPECT_EQ(mf::split_cfg_path("a.b[0].c"), (std::vector<std::string>{"a", "b", "0", "c"}));
}

// Mutated configs never crash, throw or hang: every byte flip parses or yields a finding, and reading
// the fields the builders read always returns.
TEST(XpCfg, MutatedInputsAreHandled) {
  const std::string base =
      "device: cuda\nsample_rate: 32000\nchannels: ${sample_rate}\ndora:\n  dir: /c/${oc.env:USER}/x\n"
      "encodec:\n  sample_rate: ${sample_rate}\n  causal: false\nseanet:\n  causal: ${encodec.causal}\n"
      "  ratios:\n  - 8\n  - 5\n  decoder:\n    trim_right_ratio: 1.0\n  encoder: {}\nrvq: {n_q: 4, bins: [1, 2]}\n";
  const char alphabet[] = "${}[]:.,-'\"&*!?|> \n\t#0a%@";
  uint32_t state = 12345;
  auto next = [&]() {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int iter = 0; iter < 3000; ++iter) {
    std::string t = base;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = next() % t.size();
      char c = alphabet[next() % (sizeof(alphabet) - 1)];
      if (next() % 3 == 0) t.insert(pos, 1, c);
      else t[pos] = c;
    }
    auto r = mf::XpCfg::parse(t, "fuzz.bin");
    if (!r.ok()) {
      EXPECT_TRUE(r.error().code.rfind("MG-CONFIG-", 0) == 0);
      continue;
    }
    mf::Findings f;
    for (const char* p : {"device", "channels", "encodec.sample_rate", "seanet.causal", "seanet.ratios", "rvq.bins",
                          "dora.dir", "seanet.decoder.trim_right_ratio"}) {
      (void)r->get(p, f);
      (void)r->get_list(p, f);
      (void)r->keys(p, f);
    }
  }
}
