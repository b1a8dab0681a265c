// The one positional-read seam every parser goes through. Both adapters expose the whole input as one
// contiguous, immutable span, so tensors are views into it (never copies) and validation and loading
// read the very same bytes (no re-open by path: no TOCTOU, torch-save-format.md §9.1 item 3).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mgcheck/format/result.h"

namespace mgcheck::format {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const noexcept = 0;
  // The whole input. Valid for the lifetime of the source.
  virtual std::span<const uint8_t> bytes() const noexcept = 0;
  // A display name for findings (the path, or "<memory>").
  virtual const std::string& name() const noexcept = 0;

  // Checked positional read: an empty optional-like result when [off, off+len) is out of range.
  // Returns nullptr-data span on failure; callers test ok via the bool overload below.
  bool read_at(uint64_t off, uint64_t len, std::span<const uint8_t>& out) const noexcept;

  // Copies [off, off + out.size()) into `out`. False when the range is out of bounds or the read fails.
  // The default copies from bytes(); a file overrides it with pread(2) on its descriptor, which streams
  // large ranges without faulting in the mapping's page tables (a full pass over a mapped GB costs
  // ~0.6 s of page faults on a paravirtualised guest against ~0.2 s for read(2)).
  virtual bool copy_out(uint64_t off, std::span<uint8_t> out) const noexcept;
};

// Owns a copy of (or a reference to) bytes in memory. Used by tests and fuzzers.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::vector<uint8_t> bytes, std::string name = "<memory>");
  // Non-owning: `data` must outlive the source (fuzzers pass libFuzzer's buffer).
  MemorySource(const uint8_t* data, size_t size, std::string name = "<memory>");
  uint64_t size() const noexcept override { return view_.size(); }
  std::span<const uint8_t> bytes() const noexcept override { return view_; }
  const std::string& name() const noexcept override { return name_; }

 private:
  std::vector<uint8_t> owned_;
  std::span<const uint8_t> view_;
  std::string name_;
};

// A read-only private mapping of a regular file. The size is fixed at open time.
class MappedFile final : public ByteSource {
 public:
  // Errors: MG-IO-OPEN (cannot open / not a regular file), MG-IO-MMAP.
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile() override;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  uint64_t size() const noexcept override { return size_; }
  std::span<const uint8_t> bytes() const noexcept override {
    return {static_cast<const uint8_t*>(addr_), static_cast<size_t>(size_)};
  }
  const std::string& name() const noexcept override { return path_; }
  // pread(2) on the descriptor the mapping was made from (kept open: the same file, never re-opened by
  // path). A short read (the file shrank after open) is a failure, not a crash as it would be through
  // the mapping (SIGBUS).
  bool copy_out(uint64_t off, std::span<uint8_t> out) const noexcept override;

 private:
  MappedFile() = default;
  int fd_ = -1;
  void* addr_ = nullptr;
  uint64_t size_ = 0;
  std::string path_;
};

}  // namespace mgcheck::format
