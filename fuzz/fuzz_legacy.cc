// Fuzz target: the legacy stacked-pickle container (magic, protocol, sys_info, object, keys, storages).
#include <cstddef>
#include <cstdint>

#include "mgcheck/format/legacy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mgcheck::format;
  MemorySource src(data, size, "fuzz.legacy");
  Limits limits;
  Findings findings;
  (void)read_legacy(src, limits, findings);
  return 0;
}
