#include "mgcheck/format/finding.h"

namespace mgcheck::format {

const char* severity_name(Severity s) noexcept {
  switch (s) {
    case Severity::note: return "note";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
  }
  return "error";
}

static Finding make(std::string code, Severity s, Impact i, std::string message, std::string hint) {
  Finding f;
  f.code = std::move(code);
  f.severity = s;
  f.impact = i;
  f.message = std::move(message);
  f.hint = std::move(hint);
  return f;
}

Finding make_error(std::string code, std::string message, std::string hint) {
  return make(std::move(code), Severity::error, Impact::normal, std::move(message), std::move(hint));
}
Finding make_unsafe(std::string code, std::string message, std::string hint) {
  return make(std::move(code), Severity::error, Impact::unsafe, std::move(message), std::move(hint));
}
Finding make_warning(std::string code, std::string message, std::string hint) {
  return make(std::move(code), Severity::warning, Impact::normal, std::move(message), std::move(hint));
}
Finding make_note(std::string code, std::string message, std::string hint) {
  return make(std::move(code), Severity::note, Impact::normal, std::move(message), std::move(hint));
}

bool Findings::has_errors() const noexcept {
  for (const auto& f : items_)
    if (f.severity == Severity::error) return true;
  return false;
}
bool Findings::has_unsafe() const noexcept {
  for (const auto& f : items_)
    if (f.impact == Impact::unsafe) return true;
  return false;
}
bool Findings::has_warnings() const noexcept {
  for (const auto& f : items_)
    if (f.severity == Severity::warning) return true;
  return false;
}
bool Findings::has_code(const std::string& code) const noexcept {
  for (const auto& f : items_)
    if (f.code == code) return true;
  return false;
}

void Findings::push(Finding f) {
  if (items_.size() < cap_) {
    items_.push_back(std::move(f));
    return;
  }
  // Keep unsafe/error information visible even past the cap: the verdict must not be fooled by a flood.
  if (f.impact == Impact::unsafe && !has_unsafe()) {
    items_.push_back(std::move(f));
    return;
  }
  ++dropped_;
}

}  // namespace mgcheck::format
