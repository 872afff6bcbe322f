// petune-ext's error convention, shared by its C++ files: every `extern "C"` entry point
// runs its body in `petune::guarded`, which turns any C++ exception into a message (nullptr
// on success) that the Rust side frees with `petune_ext_free_error`, so no exception ever
// unwinds into Rust.
#pragma once

#include <c10/util/Exception.h>

#include <cstring>
#include <exception>
#include <new>
#include <string>

namespace petune {

// Returned when the message itself cannot be allocated; never freed (C++17 inline
// variable: one object for every file that includes this header).
inline char oom_message[] = "out of memory while reporting a libtorch error";

// A message the Rust side owns until it calls petune_ext_free_error.
inline char* message(const std::string& what) {
  char* out = new (std::nothrow) char[what.size() + 1];
  if (out == nullptr) {
    return oom_message;
  }
  std::memcpy(out, what.c_str(), what.size() + 1);
  return out;
}

// Runs `body`, turning any exception into a message (never nullptr on failure).
template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error& e) {
    // what_without_backtrace: the check's text, not a C++ stack trace.
    return message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return message(e.what());
  } catch (...) {
    return message("unknown C++ exception");
  }
}

}  // namespace petune
