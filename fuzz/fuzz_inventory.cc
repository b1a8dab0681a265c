// Fuzz target: the inventory check. Input = YAML xp.cfg, separator, then the file's tensor list, one
// tensor a line as "name d0 d1 ..."; the typed configs derived from the YAML give the expected tensors,
// which are diffed against the list exactly as `quick` does.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mgcheck/format/configs.h"
#include "mgcheck/format/inventory.h"
#include "mgcheck/format/xpcfg.h"
#include "split_input.h"

namespace {

std::vector<mgcheck::format::FoundTensor> parse_found(std::string_view text) {
  std::vector<mgcheck::format::FoundTensor> out;
  while (!text.empty() && out.size() < 4096) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    mgcheck::format::FoundTensor t;
    size_t sp = line.find(' ');
    t.name = std::string(line.substr(0, sp));
    while (sp != std::string_view::npos && t.shape.size() < 16) {
      line = line.substr(sp + 1);
      sp = line.find(' ');
      std::string_view tok = line.substr(0, sp);
      int64_t v = 0;
      std::from_chars(tok.data(), tok.data() + tok.size(), v);
      t.shape.push_back(v);
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mgcheck::format;
  auto parts = mgcheck::fuzz::split_input(data, size, 2);
  auto cfg = XpCfg::parse(mgcheck::fuzz::as_text(parts[0]), "fuzz.yaml");
  if (!cfg) return 0;
  std::vector<FoundTensor> found = parse_found(parts.size() > 1 ? mgcheck::fuzz::as_text(parts[1]) : "");
  Findings findings;
  if (auto lm = lm_config_from_xpcfg(*cfg, findings)) {
    bool complete = true;
    auto expected = expected_lm_tensors(*lm, Limits{}.max_tensors, complete);
    (void)count_elements(expected);
    (void)compare_inventory(expected, found, "lm", findings, lm_inventory_rules(*lm));
  }
  if (auto comp = compression_config_from_xpcfg(*cfg, findings)) {
    bool complete = true;
    auto expected = expected_compression_tensors(*comp, Limits{}.max_tensors, complete);
    (void)compare_inventory(expected, found, "compression", findings);
  }
  return 0;
}
