// Fuzz target: the zip container layer alone (EOCD, ZIP64, central directory, local headers, names, CRCs).
#include <cstddef>
#include <cstdint>

#include "mgcheck/format/container.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mgcheck::format;
  MemorySource src(data, size, "fuzz.zip");
  Limits limits;
  Findings findings;
  (void)sniff_container(src.bytes());
  auto r = read_zip(src, limits, ZipOptions{}, findings);
  if (r) {
    for (const auto& rec : r->records) (void)r->find(rec.name);
  }
  return 0;
}
