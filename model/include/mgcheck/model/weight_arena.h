// Memory for weights converted at load time (fp16 file → fp32 or bf16 parameters). One bump allocator over
// 2 MiB-aligned anonymous mappings advised MADV_HUGEPAGE: the first touch of musicgen-small's 1.7 GB of fp32
// parameters then faults ~850 huge pages instead of ~420,000 small ones, which on a paravirtualised guest
// was most of the first model build (docs/performance.md). No libtorch in this header.
#pragma once
#include <cstddef>
#include <vector>

namespace mgcheck::model {

class WeightArena {
 public:
  WeightArena() = default;
  ~WeightArena();
  WeightArena(const WeightArena&) = delete;
  WeightArena& operator=(const WeightArena&) = delete;

  // `bytes` of zero-initialised memory, 64-byte aligned, valid until the arena is destroyed; nullptr when
  // the system refuses the mapping (the caller then allocates normally).
  void* allocate(size_t bytes) noexcept;
  size_t mapped_bytes() const noexcept;

 private:
  struct Chunk {
    void* base = nullptr;
    size_t size = 0;
    size_t used = 0;
  };
  std::vector<Chunk> chunks_;
};

}  // namespace mgcheck::model
