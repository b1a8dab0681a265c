// Fuzz target: the pickle machine on raw bytes, with small limits so floods and nesting hit their bounds.
#include <cstddef>
#include <cstdint>

#include "mgcheck/format/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mgcheck::format;
  Limits limits;
  limits.max_pickle_opcodes = 100000;
  limits.max_objects = 100000;
  Findings findings;
  PickleOptions opts;
  opts.file = "fuzz.pkl";
  opts.record = "data.pkl";
  // Exercise both persistent-id layouts.
  opts.legacy_persistent_ids = size > 0 && (data[0] & 1);
  (void)run_pickle(std::span<const uint8_t>(data, size), opts, limits, findings);
  return 0;
}
