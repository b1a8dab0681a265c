#include "mgcheck/format/limits.h"

#include <cctype>
#include <limits>

#include "mgcheck/format/checked.h"

namespace mgcheck::format {

const std::vector<Limits::Entry>& Limits::table() {
  static const std::vector<Entry> t = {
      {"max_file_bytes", &Limits::max_file_bytes, "largest input file accepted"},
      {"max_records", &Limits::max_records, "zip entries in one archive"},
      {"max_central_directory_bytes", &Limits::max_central_directory_bytes, "size of the zip central directory"},
      {"max_name_bytes", &Limits::max_name_bytes, "length of one record name"},
      {"max_pickle_bytes", &Limits::max_pickle_bytes, "size of data.pkl (or of one legacy pickle)"},
      {"max_pickle_opcodes", &Limits::max_pickle_opcodes, "opcodes executed by one pickle run"},
      {"max_memo_entries", &Limits::max_memo_entries, "pickle memo entries"},
      {"max_nesting_depth", &Limits::max_nesting_depth, "MARK frames open at once and container nesting depth"},
      {"max_string_bytes", &Limits::max_string_bytes, "one str or bytes value"},
      {"max_objects", &Limits::max_objects, "values built by one pickle run"},
      {"max_int_bytes", &Limits::max_int_bytes, "LONG1/LONG4 payload length"},
      {"max_pickle_memory_bytes", &Limits::max_pickle_memory_bytes,
       "working memory of one pickle run (values, strings, item lists, stack, memo)"},
      {"max_tensors", &Limits::max_tensors, "tensors in one file"},
      {"max_rank", &Limits::max_rank, "dimensions of one tensor"},
      {"max_tensor_elements", &Limits::max_tensor_elements, "elements of one tensor or storage"},
      {"max_total_storage_bytes", &Limits::max_total_storage_bytes, "sum of all storage bytes (never more than the file)"},
      {"max_config_bytes", &Limits::max_config_bytes, "size of the xp.cfg YAML text"},
      {"max_config_nodes", &Limits::max_config_nodes, "xp.cfg nodes after expanding YAML aliases"},
      {"max_config_depth", &Limits::max_config_depth, "xp.cfg mapping/sequence nesting"},
      {"max_config_interpolation_hops", &Limits::max_config_interpolation_hops,
       "chained ${...} references followed by one xp.cfg read"},
      {"max_config_string_bytes", &Limits::max_config_string_bytes, "one string built by xp.cfg string interpolation"},
      {"max_config_interpolation_steps", &Limits::max_config_interpolation_steps,
       "node resolutions by all reads of one xp.cfg together"},
      {"max_config_interpolation_bytes", &Limits::max_config_interpolation_bytes,
       "scalar bytes scanned plus string bytes built by all reads of one xp.cfg together"},
      {"max_findings", &Limits::max_findings, "findings kept in one report (the rest are counted)"},
  };
  return t;
}

Status Limits::set(const std::string& assignment) {
  auto bad = [&](const std::string& why) {
    return make_error("MG-IO-LIMIT", "bad --limit '" + assignment + "': " + why,
                      "use NAME=VALUE with a name from `mgcheck --help-limits`, e.g. max_rank=16");
  };
  auto eq = assignment.find('=');
  if (eq == std::string::npos) return bad("no '='");
  std::string name = assignment.substr(0, eq);
  std::string val = assignment.substr(eq + 1);
  const Entry* entry = nullptr;
  for (const auto& e : table())
    if (name == e.name) entry = &e;
  if (entry == nullptr) return bad("unknown limit name");
  if (val.empty()) return bad("empty value");
  uint64_t v = 0;
  size_t i = 0;
  for (; i < val.size() && std::isdigit(static_cast<unsigned char>(val[i])); ++i) {
    auto m = checked_mul(v, 10);
    if (!m) return bad("value too large");
    auto a = checked_add(*m, static_cast<uint64_t>(val[i] - '0'));
    if (!a) return bad("value too large");
    v = *a;
  }
  if (i == 0) return bad("value is not a number");
  if (i < val.size()) {
    if (i + 1 != val.size()) return bad("trailing characters");
    int shift = 0;
    switch (std::toupper(static_cast<unsigned char>(val[i]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return bad("unknown suffix (K, M, G or T)");
    }
    auto m = checked_mul(v, uint64_t{1} << shift);
    if (!m) return bad("value too large");
    v = *m;
  }
  this->*(entry->field) = v;
  return ok_status();
}

}  // namespace mgcheck::format
