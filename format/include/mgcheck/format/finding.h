// Findings: every problem mgcheck reports, with a stable code (contract §6). The library never prints
// and never throws on the parse path; stages push findings into one sink (`Findings`).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mgcheck::format {

enum class Severity { note, warning, error };
const char* severity_name(Severity s) noexcept;

// What a finding does to the verdict. `unsafe` findings are errors that make the verdict `unsafe`
// (exit 2) instead of `fail` (exit 1): foreign GLOBALs, code-executing opcodes, traversal names,
// TorchScript, bombs.
enum class Impact { normal, unsafe };

struct Finding {
  std::string code;                // MG-<LAYER>-<NAME>, never renamed (docs/error-codes.md)
  Severity severity = Severity::error;
  Impact impact = Impact::normal;
  std::string file;                // path (or display name) of the file concerned; may be empty
  std::optional<uint64_t> offset;  // byte offset in `file` where one applies
  std::string name;                // record or tensor name where one applies
  std::string message;             // one line: what is wrong
  std::string hint;                // one line: how to fix it
};

// Builder helpers keep call sites short and uniform.
Finding make_error(std::string code, std::string message, std::string hint);
Finding make_unsafe(std::string code, std::string message, std::string hint);
Finding make_warning(std::string code, std::string message, std::string hint);
Finding make_note(std::string code, std::string message, std::string hint);

class Findings {
 public:
  const std::vector<Finding>& items() const noexcept { return items_; }
  std::vector<Finding>& items() noexcept { return items_; }
  bool has_errors() const noexcept;
  bool has_unsafe() const noexcept;
  bool has_warnings() const noexcept;
  bool has_code(const std::string& code) const noexcept;
  size_t size() const noexcept { return items_.size(); }
  // Cap on stored findings so a hostile file cannot make the report itself a memory bomb.
  // Further findings are only counted (reports print "N further findings"), except that the first
  // unsafe finding is always kept so a flood cannot hide the verdict.
  void set_cap(size_t cap) noexcept { cap_ = cap; }
  // The one way to record a finding; honours the cap.
  void push(Finding f);
  size_t dropped() const noexcept { return dropped_; }

 private:
  std::vector<Finding> items_;
  size_t cap_ = 10000;
  size_t dropped_ = 0;
};

}  // namespace mgcheck::format
