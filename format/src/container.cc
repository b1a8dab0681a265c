// Container detection from the first bytes, the way torch.load dispatches (torch-save-format.md §1, §9.1).
#include <cstring>
#include <string_view>

#include "mgcheck/format/container.h"

namespace mgcheck::format {

namespace {

// The legacy format's first pickle as torch.save writes it: PROTO p (p = pickle_protocol, 2..5), from
// protocol 4 on a FRAME of the 13 bytes that follow, then LONG1 of the magic 0x1950A86A20F9469CFC6C, STOP.
constexpr uint8_t kLegacyMagicBody[] = {0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9,
                                        0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E};

bool is_legacy_magic_pickle(std::span<const uint8_t> head) {
  if (head.size() < 2 || head[0] != 0x80 || head[1] < 2 || head[1] > 5) return false;
  size_t at = 2;
  if (head.size() >= 11 && head[2] == 0x95) {  // FRAME, 8-byte little-endian length
    uint64_t len = 0;
    for (int b = 8; b >= 1; --b) len = (len << 8) | head[2 + static_cast<size_t>(b)];
    if (len != sizeof kLegacyMagicBody) return false;
    at = 11;
  }
  return head.size() >= at + sizeof kLegacyMagicBody &&
         std::memcmp(head.data() + at, kLegacyMagicBody, sizeof kLegacyMagicBody) == 0;
}

bool starts_with(std::span<const uint8_t> head, std::string_view prefix) {
  return head.size() >= prefix.size() && std::memcmp(head.data(), prefix.data(), prefix.size()) == 0;
}

// POSIX (“ustar\0”) and GNU (“ustar  \0”) tar headers both carry "ustar" at offset 257.
bool is_tar(std::span<const uint8_t> head) {
  return head.size() >= 262 && std::memcmp(head.data() + 257, "ustar", 5) == 0;
}

bool is_lfs_pointer(std::span<const uint8_t> head) {
  return starts_with(head, "version https://git-lfs");
}

// An HTML page (a download that returned an error or login page): "<" after optional BOM/whitespace.
bool is_html(std::span<const uint8_t> head) {
  size_t i = 0;
  if (head.size() >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF) i = 3;
  while (i < head.size() && i < 64 &&
         (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n'))
    ++i;
  return i < head.size() && head[i] == '<';
}

Finding at_file(Finding f, const std::string& file) {
  f.file = file;
  f.offset = 0;
  return f;
}

}  // namespace

const char* container_kind_name(ContainerKind k) noexcept {
  switch (k) {
    case ContainerKind::zip: return "zip";
    case ContainerKind::legacy: return "legacy";
    case ContainerKind::torchscript: return "torchscript";
    case ContainerKind::tar: return "tar";
    case ContainerKind::preview_pytorch1: return "pytorch1-preview";
    case ContainerKind::unknown: return "unknown";
  }
  return "unknown";
}

ContainerKind sniff_container(std::span<const uint8_t> head) noexcept {
  if (starts_with(head, std::string_view("PK\x03\x04", 4))) return ContainerKind::zip;
  if (starts_with(head, "PYTORCH1")) return ContainerKind::preview_pytorch1;
  if (is_tar(head)) return ContainerKind::tar;
  if (is_legacy_magic_pickle(head)) return ContainerKind::legacy;
  return ContainerKind::unknown;
}

Finding unsupported_container_finding(ContainerKind kind, std::span<const uint8_t> head,
                                      const std::string& file) {
  switch (kind) {
    case ContainerKind::torchscript:
      return at_file(make_unsafe("MG-ZIP-TORCHSCRIPT",
                                 "TorchScript archive (torch.jit.save) where a torch.save state dict belongs",
                                 "export the weights with torch.save(state_dict); never load TorchScript "
                                 "from an untrusted source"),
                     file);
    case ContainerKind::tar:
      return at_file(make_error("MG-IO-TAR", "tar archive (the torch <= 0.1 format) is not supported",
                                "re-save the checkpoint with a current torch.save"),
                     file);
    case ContainerKind::preview_pytorch1:
      return at_file(make_error("MG-IO-PYTORCH1", "PYTORCH1 preview format (2018) is not supported",
                                "re-save the checkpoint with a current torch.save"),
                     file);
    case ContainerKind::zip:
    case ContainerKind::legacy:
    case ContainerKind::unknown:
      break;
  }
  if (head.empty())
    return at_file(make_error("MG-IO-EMPTY", "the file is empty", "download the file again"), file);
  if (is_lfs_pointer(head))
    return at_file(make_error("MG-IO-LFS-POINTER",
                              "Git LFS pointer file, not the checkpoint itself",
                              "fetch the real file with `git lfs pull` (or download it directly)"),
                   file);
  if (is_html(head))
    return at_file(make_error("MG-IO-HTML", "an HTML page, not a checkpoint (a failed or redirected download?)",
                              "download the file again, checking the URL and any login requirement"),
                   file);
  if (head.size() >= 2 && head[0] == 0x80 && head[1] <= 5)
    return at_file(make_error("MG-IO-UNKNOWN-FORMAT",
                              "a bare pickle, not a torch.save file (no zip header, no legacy magic)",
                              "save the object with torch.save"),
                   file);
  return at_file(make_error("MG-IO-UNKNOWN-FORMAT",
                            "not a torch.save file: neither a zip (PK\\3\\4) nor the legacy pickle magic",
                            "check that the path names a torch.save checkpoint"),
                 file);
}

}  // namespace mgcheck::format
