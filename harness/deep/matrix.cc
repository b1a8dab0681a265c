// Planning the deep matrix: option lists, cell order, precision-aware tolerances.
#include "mgcheck/harness/matrix.h"

#include <algorithm>
#include <sstream>

namespace mgcheck::harness {

bool parse_list(const std::string& text, const std::vector<std::string>& allowed, std::vector<std::string>& out,
                std::string& error) {
  out.clear();
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    if (item == "all") {
      for (const auto& a : allowed)
        if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), item) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      error = "unknown item '" + item + "' (expected: " + list + " or all)";
      return false;
    }
    if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
  }
  if (out.empty()) {
    error = "empty list";
    return false;
  }
  return true;
}

std::vector<CellSpec> plan_cells(const MatrixOptions& o) {
  std::vector<CellSpec> cells;
  // fp32 first on every device: it is the baseline the reduced precisions are compared with.
  std::vector<std::string> precisions;
  if (std::find(o.precisions.begin(), o.precisions.end(), "fp32") != o.precisions.end()) precisions.push_back("fp32");
  for (const auto& p : all_precisions())
    if (p != "fp32" && std::find(o.precisions.begin(), o.precisions.end(), p) != o.precisions.end())
      precisions.push_back(p);
  std::vector<std::string> configs;
  if (o.no_generate) {
    configs = {"forward"};
  } else {
    for (const auto& c : all_configs())
      if (std::find(o.configs.begin(), o.configs.end(), c) != o.configs.end()) configs.push_back(c);
  }
  for (const auto& d : o.devices)
    for (const auto& p : precisions)
      for (const auto& c : configs) cells.push_back({d, p, c});
  return cells;
}

PrecisionTolerance precision_tolerance(const std::string& precision) {
  // Relative to the fp32 result's largest magnitude. bf16 keeps 8 significant bits (eps 2^-8 ≈ 3.9e-3),
  // fp16 11 bits (eps 2^-11 ≈ 4.9e-4); a few dozen rounding steps through the layers (residual sums,
  // softmax, LSTM recurrences) amount to ~25 eps, so the limits are 25·eps rounded: 0.1 and 0.0125.
  // A model that exceeds them loses more than rounding explains (overflow, catastrophic cancellation).
  if (precision == "bf16") return {0.1, 0.1};
  if (precision == "fp16") return {0.0125, 0.0125};
  return {0.0, 0.0};
}

}  // namespace mgcheck::harness
