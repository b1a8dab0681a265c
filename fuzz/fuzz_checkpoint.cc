// Fuzz target: a whole file through read_checkpoint (sniff, zip or legacy, pickle, tensor table). Seeds are
// real torch.save files, so mutations reach the tensor checks.
#include <cstddef>
#include <cstdint>

#include "mgcheck/format/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mgcheck::format;
  MemorySource src(data, size, "fuzz.pt");
  Limits limits;
  limits.max_pickle_opcodes = 1000000;
  Findings findings;
  auto ck = read_checkpoint(src, limits, ReadOptions{}, findings);
  if (ck) {
    // Touch every checked view: an unchecked extent would be caught by ASan here.
    for (const auto& t : ck->tensors)
      if (t.numel > 0) {
        (void)element_as_double(t, 0);
        (void)element_as_double(t, t.numel - 1);
      }
  }
  return 0;
}
