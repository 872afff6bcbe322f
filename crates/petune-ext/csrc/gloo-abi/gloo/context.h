// petune: see ../README.md. Declared, never defined here: the definition is libtorch_cpu's.
#pragma once
#include <chrono>

namespace gloo {
class Context {
 public:
  // Called by the inline ProcessGroupGloo::setTimeout.
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
