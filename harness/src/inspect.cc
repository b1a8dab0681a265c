#include "mgcheck/harness/inspect.h"

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checked.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/schema.h"
#include "mgcheck/format/utf8.h"
#include "mgcheck/harness/file_info.h"
#include "mgcheck/harness/text.h"

namespace mgcheck::harness {

using format::ValueId;
using format::ValueKind;
using nlohmann::json;

namespace {

// A bounded, iterative-depth summary of the value tree: dicts and lists are described to `max_depth`
// levels; a dict whose values are all tensors is summarised as "N tensors". Budget-limited so that a
// hostile tree cannot make the report large.
json summarize(const format::Checkpoint& ck, ValueId id, int depth, size_t& budget) {
  const auto& arena = ck.pickle.arena;
  if (id == format::kNoValue || budget == 0) return "…";
  --budget;
  const auto& v = arena[id];
  switch (v.kind) {
    case ValueKind::none: return nullptr;
    case ValueKind::boolean: return v.i != 0;
    case ValueKind::integer: return v.i;
    case ValueKind::floating: return v.f;
    case ValueKind::string:
      if (v.s.size() > 80) return "str (" + std::to_string(v.s.size()) + " chars)";
      return v.s;
    case ValueKind::bytes: return "bytes (" + std::to_string(v.s.size()) + ")";
    case ValueKind::tensor: {
      const auto& t = ck.pickle.tensors.at(static_cast<size_t>(v.i));
      std::ostringstream s;
      s << "tensor " << format::dtype_name(t.dtype) << " [";
      for (size_t i = 0; i < t.sizes.size(); ++i) s << (i ? "," : "") << t.sizes[i];
      s << "]";
      return s.str();
    }
    case ValueKind::global: return "global " + v.s;
    case ValueKind::storage: return "storage";
    case ValueKind::object: return std::string("object") + (v.poisoned ? " (refused)" : "");
    case ValueKind::mark: return "mark";
    case ValueKind::list:
    case ValueKind::tuple:
    case ValueKind::set: {
      std::string kind = format::value_kind_name(v.kind);
      if (depth <= 0 || v.items.size() > 16) return kind + " of " + std::to_string(v.items.size());
      json a = json::array();
      for (ValueId c : v.items) a.push_back(summarize(ck, c, depth - 1, budget));
      return a;
    }
    case ValueKind::dict: {
      size_t n = v.items.size() / 2, tensors = 0;
      for (size_t i = 0; i < n; ++i)
        if (arena[v.items[2 * i + 1]].kind == ValueKind::tensor) ++tensors;
      std::string kind = v.ordered_dict ? "OrderedDict" : "dict";
      if (n > 0 && tensors == n) return kind + " of " + std::to_string(n) + " tensors";
      if (depth <= 0 || n > 64) return kind + " of " + std::to_string(n) + " items";
      json o = json::object();
      for (size_t i = 0; i < n; ++i) {
        const auto& k = arena[v.items[2 * i]];
        std::string key = k.kind == ValueKind::string ? k.s : std::string("<") + format::value_kind_name(k.kind) + ">";
        o[key] = summarize(ck, v.items[2 * i + 1], depth - 1, budget);
      }
      return o;
    }
  }
  return nullptr;
}

}  // namespace

namespace {

// A name as the JSON report holds it: `name`, plus `name_hex` (the exact bytes) when it is not valid
// UTF-8 (the report's `name` then shows the bad bytes as \xNN, see text.h).
void put_name(json& j, const std::string& name) {
  j["name"] = name;
  if (!format::valid_utf8(name)) j["name_hex"] = hex_bytes(name);
}

// Every GLOBAL referenced, with its class, how often and where first.
json globals_json(const format::PickleResult& p) {
  std::map<std::string, std::pair<std::string, size_t>> globals;
  std::map<std::string, uint64_t> first_offset;
  for (const auto& g : p.globals) {
    std::string name = g.module + "." + g.name;
    auto& e = globals[name];
    e.first = format::global_class_name(g.cls);
    if (e.second++ == 0) first_offset[name] = g.offset;
  }
  json a = json::array();
  for (const auto& [name, e] : globals) {
    json g = {{"class", e.first}, {"count", e.second}, {"first_offset", first_offset[name]}};
    put_name(g, name);
    a.push_back(std::move(g));
  }
  return a;
}

// The description of a checkpoint, complete or as far as it was read before a fatal finding.
json describe(const format::Checkpoint& c, bool complete) {
  json ins = json::object();
  ins["complete"] = complete;
  ins["format"] = format::container_kind_name(c.kind);
  ins["folder"] = c.folder;
  ins["pickle_protocol"] = c.pickle.protocol;
  ins["records"] = json::array();
  for (const auto& r : c.records) {
    json rj = {{"offset", r.data_offset}, {"bytes", r.size}, {"crc32", r.crc32}, {"crc_ok", r.crc_ok}};
    put_name(rj, r.name);
    ins["records"].push_back(std::move(rj));
  }
  size_t budget = 2000;
  ins["structure"] = c.pickle.root == format::kNoValue ? json(nullptr) : summarize(c, c.pickle.root, 3, budget);
  ins["tensors"] = json::array();
  if (complete) {
    for (const auto& n : c.named) {
      const auto& t = c.tensors.at(n.tensor);
      json tj = {{"dtype", format::dtype_name(t.dtype)},
                 {"shape", t.sizes},
                 {"strides", t.strides},
                 {"storage_offset", t.storage_offset},
                 {"storage", t.storage_key},
                 {"bytes", t.numel * format::itemsize(t.dtype)}};
      put_name(tj, n.path);
      ins["tensors"].push_back(std::move(tj));
    }
  } else {
    // The tree never completed, so tensors have no names yet: list those rebuilt so far, in order, with
    // the offset of the REDUCE that rebuilt each.
    for (const auto& t : c.pickle.tensors) {
      const auto* s = t.storage < c.pickle.storages.size() ? &c.pickle.storages[t.storage] : nullptr;
      uint64_t numel = 1;
      for (int64_t d : t.sizes) numel = format::checked_mul(numel, d < 0 ? 0 : static_cast<uint64_t>(d)).value_or(0);
      json tj = {{"name", ""},
                 {"dtype", format::dtype_name(t.dtype)},
                 {"shape", t.sizes},
                 {"strides", t.strides},
                 {"storage_offset", t.storage_offset},
                 {"storage", s != nullptr ? s->key : std::string()},
                 {"bytes", format::checked_mul(numel, format::itemsize(t.dtype)).value_or(0)},
                 {"offset", t.offset}};
      if (s != nullptr && !format::valid_utf8(s->key)) tj["storage_hex"] = hex_bytes(s->key);
      ins["tensors"].push_back(std::move(tj));
    }
  }
  ins["globals"] = globals_json(c.pickle);
  return ins;
}

}  // namespace

void run_inspect(const std::string& path, Report& report) {
  report.command = "inspect";
  report.target = path;
  report.checks_run = {"IO", "ZIP", "PICKLE", "TENSOR"};
  auto mapped = format::MappedFile::open(path);
  if (!mapped) {
    report.findings.push(mapped.error());
    return;
  }
  run_inspect(*mapped.value(), path, report);
}

void run_inspect(const format::ByteSource& src, const std::string& path, Report& report) {
  report.command = "inspect";
  report.target = path;
  report.checks_run = {"IO", "ZIP", "PICKLE", "TENSOR"};
  FileInfo info;
  info.path = path;
  info.bytes = src.size();
  info.sha256 = sha256_hex(src.bytes());
  format::Findings& findings = report.findings;
  findings.set_cap(static_cast<size_t>(report.limits.max_findings));
  format::Checkpoint partial;
  format::ReadOptions ro;
  ro.partial = &partial;
  auto ck = format::read_checkpoint(src, report.limits, ro, findings);
  if (!ck) {
    findings.push(ck.error());
    info.format = "";
    report.files.push_back(info);
    // What the file tried before it was refused: records, GLOBALs and tensors seen up to that point. A file
    // of unknown kind is described too when torch.load would have unpickled something from it.
    json ins = json::object();
    const auto& pk = partial.pickle;
    if (partial.kind != format::ContainerKind::unknown || !pk.globals.empty() || pk.root != format::kNoValue ||
        !pk.tensors.empty()) {
      ins = describe(partial, false);
      json stop = {{"code", ck.error().code},
                   {"offset", ck.error().offset ? json(*ck.error().offset) : json(nullptr)}};
      ins["stopped_at"] = std::move(stop);
    }
    report.extra["inspect"] = ins;
    return;
  }
  const auto& c = ck.value();
  info.format = format::container_kind_name(c.kind);
  info.tensors = c.named.size();
  report.files.push_back(info);
  report.extra["inspect"] = describe(c, true);
  // A raw training checkpoint is readable as inert data, but it is not something to load (AudioCraft's
  // loaders fail on it, and weights_only torch.load refuses its omegaconf globals): say so and fail.
  if (format::looks_like_training_checkpoint(c)) {
    std::set<std::string> inert;
    for (const auto& g : c.pickle.globals)
      if (g.cls == format::GlobalClass::inert) inert.insert(g.module + "." + g.name);
    std::string names;
    for (const auto& name : inert) names += (names.empty() ? "" : ", ") + name;
    format::Finding f = format::make_error(
        "MG-SCHEMA-TRAINING-CHECKPOINT",
        "raw AudioCraft training checkpoint, not an export" +
            (names.empty() ? std::string() : " (needs training-only globals: " + names + ")"),
        "export it first: `mgcheck export lm CKPT OUTDIR` (or `export encodec` for a compression model)");
    f.file = path;
    findings.push(f);
  }
}

void print_inspect(const Report& report, std::ostream& out) {
  if (!report.extra.contains("inspect")) return;
  const json& ins = report.extra["inspect"];
  if (ins.empty()) return;
  auto text = [](const json& v) { return console_text(v.is_string() ? v.get<std::string>() : v.dump()); };
  if (!ins.value("complete", true)) {
    const json& stop = ins.value("stopped_at", json::object());
    out << "refused";
    if (stop.contains("code")) out << " (" << text(stop["code"]);
    if (stop.contains("offset") && !stop["offset"].is_null()) out << " @" << stop["offset"].dump();
    if (stop.contains("code")) out << ")";
    out << ": what was read before the refusal\n";
  }
  out << "format: " << text(ins.value("format", json("?"))) << "   folder: " << text(ins.value("folder", json("")))
      << "   pickle protocol " << ins.value("pickle_protocol", 0) << "\n";
  const json& records = ins.value("records", json::array());
  out << "records (" << records.size() << "):\n";
  size_t shown = 0;
  for (const auto& r : records) {
    if (++shown > 40) {
      out << "  … " << records.size() - 40 << " more\n";
      break;
    }
    out << "  " << text(r["name"]) << "  @" << r["offset"] << "  " << r["bytes"] << " bytes"
        << (r["crc_ok"].get<bool>() ? "" : "  CRC MISMATCH") << "\n";
  }
  // dump() escapes C0 controls inside strings; console_text line by line catches DEL and C1 controls.
  std::string structure = json_safe(ins.value("structure", json(nullptr))).dump(2);
  out << "structure: ";
  for (size_t start = 0; start <= structure.size();) {
    size_t nl = structure.find('\n', start);
    if (nl == std::string::npos) nl = structure.size();
    out << console_text(std::string_view(structure).substr(start, nl - start)) << "\n";
    start = nl + 1;
  }
  const json& tensors = ins.value("tensors", json::array());
  out << "tensors (" << tensors.size() << "):\n";
  for (const auto& t : tensors) {
    out << "  " << (t["name"].get<std::string>().empty() ? std::string("(unnamed)") : text(t["name"])) << "  "
        << text(t["dtype"]) << " " << t["shape"].dump() << " strides " << t["strides"].dump() << " offset "
        << t["storage_offset"] << "  " << t["bytes"] << " bytes";
    if (t.contains("offset")) out << "  rebuilt @" << t["offset"];
    out << "\n";
  }
  const json& globals = ins.value("globals", json::array());
  out << "globals (" << globals.size() << "):\n";
  for (const auto& g : globals)
    out << "  " << text(g["name"]) << "  " << text(g["class"]) << "  x" << g["count"] << "  first @"
        << g["first_offset"] << "\n";
}

}  // namespace mgcheck::harness
