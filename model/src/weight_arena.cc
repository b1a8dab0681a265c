#include "mgcheck/model/weight_arena.h"

#include <sys/mman.h>

#include <cstdint>

namespace mgcheck::model {
namespace {
constexpr size_t kHuge = size_t{2} << 20;    // x86-64 huge page
constexpr size_t kChunk = size_t{64} << 20;  // untouched pages cost nothing, so a tiny model wastes nothing
size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
}  // namespace

WeightArena::~WeightArena() {
  for (const auto& c : chunks_) ::munmap(c.base, c.size);
}

size_t WeightArena::mapped_bytes() const noexcept {
  size_t n = 0;
  for (const auto& c : chunks_) n += c.size;
  return n;
}

void* WeightArena::allocate(size_t bytes) noexcept {
  const size_t need = round_up(bytes == 0 ? 1 : bytes, 64);
  if (!chunks_.empty()) {
    Chunk& c = chunks_.back();
    if (c.size - c.used >= need) {
      void* p = static_cast<char*>(c.base) + c.used;
      c.used += need;
      return p;
    }
  }
  const size_t size = round_up(need > kChunk ? need : kChunk, kHuge);
  // Over-map by one huge page and trim, so the chunk starts on a 2 MiB boundary (THP needs aligned ranges).
  void* raw = ::mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto addr = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = round_up(addr, kHuge);
  if (aligned > addr) ::munmap(raw, aligned - addr);
  const uintptr_t end = addr + size + kHuge;
  if (end > aligned + size) ::munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
  void* base = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  (void)::madvise(base, size, MADV_HUGEPAGE);  // advice only: without THP this is a plain mapping
#endif
  chunks_.push_back({base, size, need});
  return base;
}

}  // namespace mgcheck::model
